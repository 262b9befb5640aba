#include "cairn/common/pipeline_spec.h"
#include "cairn/common/text.h"

#include <gtest/gtest.h>

#include <google/protobuf/util/message_differencer.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace cairn {
namespace {

// The example from pipeline_spec.h.
constexpr char kExample[] = R"(
name: app-errors
workspace: demo
selector: {env: production, role: log-processor}   # or a string selector
pipeline:
  input: {generate: {interval: 1s, message: "ERROR disk almost full"}}
  processors:
    - filter: {contains: ERROR}
  output: {file: {path: out/app-errors.log}}
)";

// A file with only `pipeline:` varying.
std::string WithPipeline(const std::string& body) {
  return "name: p\nworkspace: demo\npipeline:\n" + body;
}

// Indents every line of `text` by two spaces.
std::string Indent(const std::string& text) {
  std::string out = "  ";
  for (char c : text) {
    out += c;
    if (c == '\n') out += "  ";
  }
  return out;
}

bool SameSpec(const v1::PipelineSpec& a, const v1::PipelineSpec& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

TEST(PipelineSpec, ParsesTheDocumentedExample) {
  auto p = ParsePipelineYaml(kExample, "default");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->name(), "app-errors");
  EXPECT_EQ(p->workspace(), "demo");
  EXPECT_EQ(p->selector(), "env=production,role=log-processor");
  ASSERT_TRUE(p->spec().input().has_generate());
  EXPECT_EQ(p->spec().input().generate().interval_ms(), 1000u);
  EXPECT_EQ(p->spec().input().generate().message(), "ERROR disk almost full");
  EXPECT_EQ(p->spec().input().generate().count(), 0u);
  ASSERT_EQ(p->spec().processors_size(), 1);
  EXPECT_EQ(p->spec().processors(0).filter().contains(), "ERROR");
  EXPECT_FALSE(p->spec().processors(0).filter().invert());
  ASSERT_TRUE(p->spec().output().has_file());
  EXPECT_EQ(p->spec().output().file().path(), "out/app-errors.log");
  EXPECT_EQ(p->digest(), PipelineDigest(p->spec()));
}

TEST(PipelineSpec, NormalisesMapAndStringSelectors) {
  struct Case {
    std::string selector_yaml;  // "" = no selector line
    std::string want;
  };
  const std::vector<Case> cases = {
      {"", ""},
      {"selector:", ""},
      {"selector: {}", ""},
      {"selector: \"\"", ""},
      {"selector: {role: db, env: prod}", "env=prod,role=db"},
      {"selector: {tier: 1}", "tier=1"},
      {"selector: env==prod", "env=prod"},
      {"selector: \"region in (us-east-1,eu-west-1),tier!=db,canary,!legacy\"",
       "canary,!legacy,region in (eu-west-1,us-east-1),tier!=db"},
      {"selector: '!legacy'", "!legacy"},
  };
  for (const Case& c : cases) {
    std::string yaml = "name: p\n" + c.selector_yaml + "\npipeline: {input: {generate: {}}, output: stdout}\n";
    auto p = ParsePipelineYaml(yaml, "demo");
    ASSERT_TRUE(p.ok()) << c.selector_yaml << ": " << p.error().message;
    EXPECT_EQ(p->selector(), c.want) << c.selector_yaml;
  }
}

TEST(PipelineSpec, RejectsTextThatIsNotUtf8WithItsPosition) {
  // Byte 0x81 inside a regex: proto3 string fields would refuse it on the
  // wire, so the file is refused where the user can fix it.
  auto p = ParsePipelineYaml("name: p\npipeline:\n  input: {generate: {interval: 1s, message: x}}\n"
                             "  processors: [{filter: {regex: \"a\x81" "b\"}}]\n  output: {stdout: {}}\n",
                             "demo");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().message, "pipeline file: line 4, column 35: not UTF-8 text");
}

TEST(Text, FindsTheFirstByteThatIsNotUtf8) {
  EXPECT_EQ(FirstInvalidUtf8("plain ascii"), std::string_view::npos);
  EXPECT_EQ(FirstInvalidUtf8("gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac \xf0\x9f\x98\x80"), std::string_view::npos);
  EXPECT_EQ(FirstInvalidUtf8("ab\x81"), 2u);
  EXPECT_EQ(FirstInvalidUtf8("\xc0\xaf"), 0u);          // overlong '/'
  EXPECT_EQ(FirstInvalidUtf8("x\xed\xa0\x80"), 1u);     // a surrogate
  EXPECT_EQ(FirstInvalidUtf8("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(FirstInvalidUtf8("ok\xe2\x82"), 2u);         // cut short
}

TEST(PipelineSpec, FillsTheDefaultWorkspaceOnlyWhenMissing) {
  const std::string body = "pipeline: {input: {generate: {}}, output: stdout}\n";
  auto defaulted = ParsePipelineYaml("name: p\n" + body, "team-a");
  ASSERT_TRUE(defaulted.ok()) << defaulted.error().message;
  EXPECT_EQ(defaulted->workspace(), "team-a");

  auto explicit_ws = ParsePipelineYaml("name: p\nworkspace: team-b\n" + body, "team-a");
  ASSERT_TRUE(explicit_ws.ok());
  EXPECT_EQ(explicit_ws->workspace(), "team-b");

  auto none = ParsePipelineYaml("name: p\n" + body, "");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message, "workspace: missing (and no default workspace)");
}

TEST(PipelineSpec, AcceptsEveryInputAndOutputForm) {
  struct Case {
    std::string body;
    std::function<void(const v1::PipelineSpec&)> check;
  };
  const std::vector<Case> cases = {
      {"  input: {generate: {interval: 250ms, message: hi, count: 3}}\n  output: stdout\n",
       [](const v1::PipelineSpec& s) {
         EXPECT_EQ(s.input().generate().interval_ms(), 250u);
         EXPECT_EQ(s.input().generate().count(), 3u);
         EXPECT_TRUE(s.output().has_stdout());
       }},
      {"  input: {generate: }\n  output: {stdout: {}}\n",
       [](const v1::PipelineSpec& s) {
         EXPECT_EQ(s.input().generate().interval_ms(), 1000u);  // the default
         EXPECT_TRUE(s.output().has_stdout());
       }},
      {"  input: {exec: {command: [journalctl, -f, -o, json], restart: 5s}}\n  output: stdout\n",
       [](const v1::PipelineSpec& s) {
         ASSERT_EQ(s.input().exec().command_size(), 4);
         EXPECT_EQ(s.input().exec().command(0), "journalctl");
         EXPECT_EQ(s.input().exec().restart_ms(), 5000u);
       }},
      {"  input: {file: {path: /var/log/app.log, from_beginning: true}}\n  output: {stdout: }\n",
       [](const v1::PipelineSpec& s) {
         EXPECT_EQ(s.input().file().path(), "/var/log/app.log");
         EXPECT_TRUE(s.input().file().from_beginning());
         EXPECT_TRUE(s.output().has_stdout());
       }},
      {"  input: {generate: {}}\n  output: {mqtt: {stream: errors}}\n",
       [](const v1::PipelineSpec& s) {
         EXPECT_EQ(s.output().mqtt().stream(), "errors");
         EXPECT_EQ(s.output().mqtt().qos(), 1u);  // the default
       }},
      {"  input: {generate: {}}\n  output: {mqtt: {stream: errors, qos: 0}}\n",
       [](const v1::PipelineSpec& s) { EXPECT_EQ(s.output().mqtt().qos(), 0u); }},
      {"  input: {generate: {}}\n"
       "  processors:\n"
       "    - filter: {regex: '^ERROR\\s+\\d+', invert: true}\n"
       "    - filter: {contains: disk}\n"
       "  output: {file: {path: ./out/../out.log}}\n",
       [](const v1::PipelineSpec& s) {
         ASSERT_EQ(s.processors_size(), 2);
         EXPECT_EQ(s.processors(0).filter().regex(), "^ERROR\\s+\\d+");
         EXPECT_TRUE(s.processors(0).filter().invert());
         EXPECT_EQ(s.processors(1).filter().contains(), "disk");
         EXPECT_EQ(s.output().file().path(), "./out/../out.log");
       }},
  };
  for (const Case& c : cases) {
    auto p = ParsePipelineYaml(WithPipeline(c.body), "demo");
    ASSERT_TRUE(p.ok()) << c.body << ": " << p.error().message;
    c.check(p->spec());
  }
}

TEST(PipelineSpec, RejectsBadFilesWithTheDottedPathOfTheProblem) {
  struct Case {
    std::string yaml;
    std::string message;  // expected prefix of the error message
  };
  const std::string ok_body = "pipeline: {input: {generate: {}}, output: stdout}\n";
  const std::vector<Case> cases = {
      // Unknown keys, anywhere.
      {"name: p\ncolour: red\n" + ok_body, "colour: unknown key"},
      {WithPipeline("  input: {generate: {intervall: 1s}}\n  output: stdout\n"),
       "pipeline.input.generate.intervall: unknown key (expected interval, message, count or rate)"},
      {WithPipeline("  input: {generate: {}}\n  output: stdout\n  retries: 3\n"),
       "pipeline.retries: unknown key"},
      {WithPipeline("  input: {generate: {}}\n  processors: [{filter: {regx: a}}]\n  output: stdout\n"),
       "pipeline.processors[0].filter.regx: unknown key"},
      {WithPipeline("  input: {generate: {}}\n  processors: [{grep: {}}]\n  output: stdout\n"),
       "pipeline.processors[0].grep: unknown key"},
      {WithPipeline("  input: {generate: {}}\n  output: {mqtt: {stream: s, topic: t}}\n"),
       "pipeline.output.mqtt.topic: unknown key"},
      {WithPipeline("  input: {generate: {}}\n  output: {stdout: {color: true}}\n"),
       "pipeline.output.stdout.color: unknown key (no keys allowed here)"},
      {WithPipeline("  input: {exec: {}}\n  output: stdout\n"),
       "pipeline.input.exec.command: needs the program to run"},
      {WithPipeline("  input: {exec: {command: [tail, -F, x], shell: true}}\n  output: stdout\n"),
       "pipeline.input.exec.shell: unknown key (expected command or restart)"},
      // Structure.
      {"name: p\n", "pipeline: missing"},
      {"pipeline: {}\n", "name: missing"},
      {"- a\n", "pipeline file: expected a map at the top level"},
      {"", "pipeline file: expected a map at the top level"},
      {"name: [p]\n" + ok_body, "name: expected a string"},
      {WithPipeline("  output: stdout\n"), "pipeline.input: missing"},
      {WithPipeline("  input: {generate: {}}\n"), "pipeline.output: missing"},
      {WithPipeline("  input: {}\n  output: stdout\n"),
       "pipeline.input: expected exactly one input kind: generate, file, exec or mqtt"},
      {WithPipeline("  input: {generate: {}, file: {path: x}}\n  output: stdout\n"),
       "pipeline.input: expected exactly one input kind"},
      {WithPipeline("  input: {generate: {}}\n  output: stderr\n"),
       "pipeline.output: expected a map with keys file, mqtt, stdout or http"},
      {WithPipeline("  input: {generate: {}}\n  processors: {filter: {}}\n  output: stdout\n"),
       "pipeline.processors: expected a list of processors"},
      {"name: p\nname: q\n" + ok_body, "name: duplicate key"},
      {"name: p\npipeline: [\n", "invalid YAML at line"},
      // Values.
      {WithPipeline("  input: {generate: {interval: soon}}\n  output: stdout\n"),
       "pipeline.input.generate.interval: invalid duration \"soon\""},
      {WithPipeline("  input: {generate: {interval: 5ms}}\n  output: stdout\n"),
       "pipeline.input.generate.interval: must be at least 10ms"},
      {WithPipeline("  input: {generate: {count: -1}}\n  output: stdout\n"),
       "pipeline.input.generate.count: expected a non-negative integer, got \"-1\""},
      {WithPipeline("  input: {file: {path: x, from_beginning: maybe}}\n  output: stdout\n"),
       "pipeline.input.file.from_beginning: expected true or false"},
      {WithPipeline("  input: {file: {}}\n  output: stdout\n"),
       "pipeline.input.file.path: must not be empty"},
      {WithPipeline("  input: {generate: {}}\n  output: {file: {path: a/../../etc/passwd}}\n"),
       "pipeline.output.file.path: \"a/../../etc/passwd\" leaves the data directory"},
      {WithPipeline("  input: {generate: {}}\n  output: {file: {path: out/}}\n"),
       "pipeline.output.file.path: \"out/\" does not name a file"},
      {WithPipeline("  input: {generate: {}}\n  output: {mqtt: {stream: s, qos: 3}}\n"),
       "pipeline.output.mqtt.qos: must be 0, 1 or 2"},
      {WithPipeline("  input: {generate: {}}\n  processors: [{filter: {}}]\n  output: stdout\n"),
       "pipeline.processors[0].filter: needs one of contains, regex, field"},
      {WithPipeline("  input: {generate: {rate: 2000000}}\n  output: stdout\n"),
       "pipeline.input.generate.rate: must be at most 1000000 records per second"},
      {WithPipeline("  input: {generate: {}}\n  processors: [parse_json, {set: {}}]\n  output: stdout\n"),
       "pipeline.processors[1].set: needs one of fields, node_field, labels_field"},
      {WithPipeline("  input: {generate: {}}\n  processors: [{drop: {fields: []}}]\n  output: stdout\n"),
       "pipeline.processors[0].drop.fields: needs at least one field"},
      {WithPipeline("  input: {generate: {}}\n  processors: [{drop: {fields: a}}]\n  output: stdout\n"),
       "pipeline.processors[0].drop.fields: expected a list"},
      {WithPipeline("  input: {generate: {}}\n  processors: [{sample: {}}]\n  output: stdout\n"),
       "pipeline.processors[0].sample.one_in: must be at least 1"},
      {WithPipeline("  input: {generate: {}}\n  processors: [{batch: {format: xml}}]\n  output: stdout\n"),
       "pipeline.processors[0].batch.format: \"xml\" is not json or lines"},
      {WithPipeline("  input: {generate: {}}\n  processors: [{set: {fields: {a: [1]}}}]\n  output: stdout\n"),
       "pipeline.processors[0].set.fields.a: expected a string"},
      {WithPipeline("  input: {file: {path: a.log}}\n  output: {file: {path: ./x/../a.log}}\n"),
       "pipeline.output.file.path: \"./x/../a.log\" is also the input file"},
      {WithPipeline("  input: {generate: {}}\n  processors: [{aggregate: {window: 10ms}}]\n  output: stdout\n"),
       "pipeline.processors[0].aggregate.window: must be between 100ms and 1d"},
      {WithPipeline("  input: {generate: {}}\n  processors: [{aggregate: {functions: [count, median]}}]\n  output: stdout\n"),
       "pipeline.processors[0].aggregate.functions[1]: \"median\" is not count, sum, avg, min or max"},
      {WithPipeline("  input: {generate: {}}\n  processors: [{filter: {above: 3}}]\n  output: stdout\n"),
       "pipeline.processors[0].filter: needs one of contains, regex, field"},
      {WithPipeline("  input: {generate: {}}\n  processors: [{filter: {contains: a, below: 3}}]\n  output: stdout\n"),
       "pipeline.processors[0].filter.below: needs field"},
      {WithPipeline("  input: {generate: {}}\n  processors: [{filter: {field: t, above: warm}}]\n  output: stdout\n"),
       "pipeline.processors[0].filter.above: expected a number, got \"warm\""},
      {WithPipeline("  input: {generate: {}}\n  output: {file: {path: a.log, max_bytes: 10}}\n"),
       "pipeline.output.file.max_bytes: must be 0 (no rotation) or at least 4096"},
      {"name: p\nselector: !legacy\n" + ok_body,
       "selector: unexpected YAML tag \"!legacy\" (a value starting with '!' must be quoted)"},
      {"name: p\nselector: [a]\n" + ok_body, "selector: expected a map of labels or a selector string"},
      {"name: p\nselector: \"env in (a\"\n" + ok_body,
       "selector: invalid selector \"env in (a\": missing ')'"},
      {"name: p\nselector: {env: not ok}\n" + ok_body, "selector: invalid selector: invalid label value"},
  };
  for (const Case& c : cases) {
    auto p = ParsePipelineYaml(c.yaml, "demo");
    ASSERT_FALSE(p.ok()) << c.yaml;
    EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(p.error().message.rfind(c.message, 0), 0u)
        << "yaml:\n" << c.yaml << "\nmessage: " << p.error().message;
  }
}

TEST(PipelineSpec, RejectsRegexSyntaxRe2DoesNotHaveWithThePath) {
  // Backreferences and lookaround need backtracking: RE2 refuses them, and so
  // does apply, before any node sees the pipeline.
  for (const char* re : {"(a)\\1", "foo(?=bar)"}) {
    SCOPED_TRACE(re);
    auto p = ParsePipelineYaml(WithPipeline(std::string("  input: {generate: {}}\n  processors: [{filter: {regex: '") +
                                            re + "'}}]\n  output: stdout\n"),
                               "demo");
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().message.rfind("pipeline.processors[0].filter.regex: invalid regex ", 0), 0u)
        << p.error().message;
  }
}

TEST(PipelineSpec, AcceptsRe2RegexesAndRefusesOverlongOnes) {
  v1::PipelineSpec spec;
  spec.mutable_input()->mutable_generate();
  spec.mutable_output()->mutable_stdout();
  spec.add_processors()->mutable_filter()->set_regex(R"(^\w+ (?i:error) \d{3}$)");
  EXPECT_TRUE(ValidatePipelineSpec(spec).ok());
  spec.mutable_processors(0)->mutable_filter()->set_regex(std::string(4097, 'a'));
  Status s = ValidatePipelineSpec(spec);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "processors[0].filter.regex: longer than 4096 characters");
}

TEST(PipelineSpec, HttpUrlsAreSplitForTheClient) {
  auto u = ParseHttpUrl("https://logs.example.com/v1/ingest?token=x");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "logs.example.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/v1/ingest?token=x");
  EXPECT_EQ(u->HostHeader(), "logs.example.com");
  u = ParseHttpUrl("http://[::1]:8080");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->HostHeader(), "[::1]:8080");
  for (const char* bad : {"ftp://x/", "http://", "http://a b/", "http://u:p@host/", "http://h:0/",
                          "http://h:99999/", "http://h/#frag", "http://h/\r\nX: y"}) {
    EXPECT_FALSE(ParseHttpUrl(bad).ok()) << bad;
  }
}

TEST(PipelineSpec, HttpOutputRulesNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{http: {}}", "pipeline.output.http.url: missing"},
      {"{http: {url: 'ftp://x/'}}", "pipeline.output.http.url: \"ftp://x/\" must start with http:// or https://"},
      {"{http: {url: 'http://h/', headers: {'Bad Name': x}}}", "pipeline.output.http.headers.Bad Name: is not a valid header name"},
      {"{http: {url: 'http://h/', headers: {Host: x}}}", "pipeline.output.http.headers.Host: is set by the node (not configurable)"},
      {"{http: {url: 'http://h/', headers: {X-A: \"a\\r\\nB: c\"}}}",
       "pipeline.output.http.headers.X-A: must not contain control characters or line breaks"},
      {"{http: {url: 'http://h/', format: xml}}", "pipeline.output.http.format: \"xml\" is not json or lines"},
      {"{http: {url: 'http://h/', timeout: 10ms}}", "pipeline.output.http.timeout: must be between 100ms and 5m"},
      {"{http: {url: 'http://h/', ca_file: '../x.pem'}}", "pipeline.output.http.ca_file: \"../x.pem\" leaves the data directory ('..')"},
  };
  for (const auto& [output, message] : cases) {
    auto p = ParsePipelineYaml(WithPipeline("  input: {generate: {}}\n  output: " + output + "\n"), "demo");
    ASSERT_FALSE(p.ok()) << output;
    EXPECT_EQ(p.error().message, message);
  }
  auto ok = ParsePipelineYaml(
      WithPipeline("  input: {generate: {}}\n  output: {http: {url: 'https://h:8443/in', headers: {Authorization: "
                   "'Bearer x'}, format: lines, max_records: 500, timeout: 5s, max_wait: 2s}}\n"),
      "demo");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->spec().output().http().timeout_ms(), 5000u);
}

TEST(PipelineSpec, RejectsAnInvalidRegex) {
  auto p = ParsePipelineYaml(
      WithPipeline("  input: {generate: {}}\n  processors: [{filter: {regex: '(unclosed'}}]\n"
                   "  output: stdout\n"),
      "demo");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().message.rfind("pipeline.processors[0].filter.regex: invalid regex \"(unclosed\": ", 0),
            0u)
      << p.error().message;
}

TEST(PipelineSpec, RejectsNamesThatAreNotDnsLabels) {
  struct Case {
    std::string yaml;
    std::string message;
  };
  const std::string body = "pipeline: {input: {generate: {}}, output: stdout}\n";
  const std::vector<Case> cases = {
      {"name: App_Errors\n" + body, "name: invalid pipeline name \"App_Errors\""},
      {"name: \"\"\n" + body, "name: invalid pipeline name \"\": must not be empty"},
      {"name: p\nworkspace: Demo\n" + body, "workspace: invalid workspace name \"Demo\""},
      {"name: p\nworkspace: \"#\"\n" + body, "workspace: invalid workspace name \"#\""},
      {WithPipeline("  input: {generate: {}}\n  output: {mqtt: {stream: a/b}}\n"),
       "pipeline.output.mqtt.stream: invalid stream name \"a/b\""},
      {WithPipeline("  input: {generate: {}}\n  output: {mqtt: {stream: '+'}}\n"),
       "pipeline.output.mqtt.stream: invalid stream name \"+\""},
      {WithPipeline("  input: {generate: {}}\n  output: {mqtt: {}}\n"),
       "pipeline.output.mqtt.stream: invalid stream name \"\""},
  };
  for (const Case& c : cases) {
    auto p = ParsePipelineYaml(c.yaml, "demo");
    ASSERT_FALSE(p.ok()) << c.yaml;
    EXPECT_EQ(p.error().message.rfind(c.message, 0), 0u) << p.error().message;
  }
}

TEST(PipelineSpec, ValidationRequiresAnInputAndAnOutput) {
  v1::PipelineSpec spec;
  Status s = ValidatePipelineSpec(spec);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "input: missing (expected generate, file, exec or mqtt)");
  spec.mutable_input()->mutable_generate()->set_interval_ms(1000);
  s = ValidatePipelineSpec(spec);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "output: missing (expected file, mqtt, stdout or http)");
  spec.mutable_output()->mutable_stdout();
  EXPECT_TRUE(ValidatePipelineSpec(spec).ok());
}

TEST(PipelineSpec, ParsesEveryProcessorKindFromItsSchema) {
  auto p = ParsePipelineYaml(WithPipeline(R"(
  input: {generate: {rate: 10000, message: '{"t": 1}'}}
  processors:
    - parse_json
    - parse_json: {keep_invalid: true}
    - filter: {field: temp, above: 0.1, below: -0}
    - set: {fields: {site: lyon, zone: b}, node_field: node, labels_field: labels}
    - drop: {fields: [secret, debug]}
    - sample: {one_in: 10}
    - aggregate: {window: 1m, group_by: [room], fields: [temp], functions: [avg, max]}
    - batch: {max_records: 500, max_bytes: 65536, max_wait: 2s, format: lines}
  output: {mqtt: {stream: readings}}
)"),
                             "demo");
  ASSERT_TRUE(p.ok()) << p.error().message;
  v1::PipelineSpec s = p->spec();
  const std::string rendered_all = PipelineSpecToYaml(s);
  auto all_again = ParsePipelineYaml("name: p\npipeline:\n" + Indent(rendered_all), "demo");
  ASSERT_TRUE(all_again.ok()) << rendered_all << ": " << all_again.error().message;
  EXPECT_TRUE(SameSpec(s, all_again->spec())) << "rendered:\n" << rendered_all;
  EXPECT_EQ(s.input().generate().rate(), 10000u);
  EXPECT_EQ(s.input().generate().interval_ms(), 0u);  // no interval default beside a rate
  ASSERT_EQ(s.processors_size(), 8);
  EXPECT_TRUE(s.processors(2).filter().has_below());
  EXPECT_EQ(s.processors(2).filter().above(), 0.1);
  s.mutable_processors()->erase(s.mutable_processors()->begin() + 2);
  EXPECT_TRUE(s.processors(0).has_parse_json());
  EXPECT_FALSE(s.processors(0).parse_json().keep_invalid());
  EXPECT_TRUE(s.processors(1).parse_json().keep_invalid());
  EXPECT_EQ(s.processors(2).set().fields().at("site"), "lyon");
  EXPECT_EQ(s.processors(2).set().node_field(), "node");
  EXPECT_EQ(s.processors(2).set().labels_field(), "labels");
  ASSERT_EQ(s.processors(3).drop().fields_size(), 2);
  EXPECT_EQ(s.processors(3).drop().fields(1), "debug");
  EXPECT_EQ(s.processors(4).sample().one_in(), 10u);
  EXPECT_EQ(s.processors(5).aggregate().window_ms(), 60'000u);
  EXPECT_EQ(s.processors(5).aggregate().group_by(0), "room");
  EXPECT_EQ(s.processors(5).aggregate().functions_size(), 2);
  EXPECT_EQ(s.processors(6).batch().max_records(), 500u);
  EXPECT_EQ(s.processors(6).batch().max_wait_ms(), 2000u);
  EXPECT_EQ(s.processors(6).batch().format(), "lines");

  const std::string rendered = PipelineSpecToYaml(s);
  auto again = ParsePipelineYaml("name: p\npipeline:\n" + Indent(rendered), "demo");
  ASSERT_TRUE(again.ok()) << rendered << ": " << again.error().message;
  EXPECT_TRUE(SameSpec(s, again->spec())) << "rendered:\n" << rendered;
}

TEST(PipelineSpec, AnEmptyFilterIsRejectedByTheOneValidator) {
  // cairnctl and the scheduler call ValidatePipelineSpec; so does the node
  // (edge/test/pipeline_runtime_test.cc checks the same message there).
  v1::PipelineSpec spec;
  spec.mutable_input()->mutable_generate();
  spec.add_processors()->mutable_filter();
  spec.mutable_output()->mutable_stdout();
  Status s = ValidatePipelineSpec(spec);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "processors[0].filter: needs one of contains, regex, field");
}

TEST(PipelineSpec, AKindUnknownToThisSchemaIsAnErrorNotADefault) {
  // A newer control plane's kind arrives as an unknown field: no kind is set.
  v1::PipelineSpec spec;
  spec.mutable_input()->mutable_generate();
  spec.add_processors();
  spec.mutable_output()->mutable_stdout();
  Status s = ValidatePipelineSpec(spec);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message.rfind("processors[0]: missing (expected filter, parse_json", 0), 0u)
      << s.error().message;
}

TEST(PipelineSpec, EveryExampleInTheReferenceIsAValidPipeline) {
  // docs/pipelines.md promises a working example per component kind.
  // The source tree: above this file, or above the directory the test runs in.
  std::filesystem::path doc;
  for (std::filesystem::path dir :
       {std::filesystem::absolute(__FILE__).parent_path(), std::filesystem::current_path()}) {
    for (; !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
      if (std::filesystem::exists(dir / "docs/pipelines.md") &&
          std::filesystem::exists(dir / "schemas/cairn/v1/pipeline.proto")) {
        doc = dir / "docs/pipelines.md";
        break;
      }
    }
    if (!doc.empty()) break;
  }
  std::ifstream in(doc);
  ASSERT_TRUE(in) << doc;
  std::stringstream text;
  text << in.rdbuf();
  const std::string md = text.str();
  std::set<std::string> kinds_seen;
  size_t examples = 0;
  for (size_t at = md.find("```yaml\n"); at != std::string::npos;
       at = md.find("```yaml\n", at + 1)) {
    const size_t start = at + 8;
    const size_t end = md.find("```", start);
    ASSERT_NE(end, std::string::npos);
    const std::string yaml = md.substr(start, end - start);
    auto p = ParsePipelineYaml(yaml, "demo");
    ASSERT_TRUE(p.ok()) << yaml << "\n" << p.error().message;
    ++examples;
    auto kind = [](const google::protobuf::Message& m) {
      const auto* f = m.GetReflection()->GetOneofFieldDescriptor(
          m, m.GetDescriptor()->FindOneofByName("kind"));
      return std::string(m.GetDescriptor()->name()) + "." + f->name();
    };
    kinds_seen.insert(kind(p->spec().input()));
    for (const auto& proc : p->spec().processors()) kinds_seen.insert(kind(proc));
    kinds_seen.insert(kind(p->spec().output()));
  }
  EXPECT_GT(examples, 10u);
  for (const auto* d : {v1::Input::descriptor(), v1::Processor::descriptor(),
                        v1::Output::descriptor()}) {
    const auto* oneof = d->FindOneofByName("kind");
    for (int i = 0; i < oneof->field_count(); ++i) {
      const std::string k = d->name() + "." + oneof->field(i)->name();
      EXPECT_TRUE(kinds_seen.count(k)) << "no example in docs/pipelines.md uses " << k;
    }
  }
}

TEST(PipelineDigest, IsStableAcrossFormattingAndIgnoresMetadata) {
  auto a = ParsePipelineYaml(kExample, "demo");
  auto b = ParsePipelineYaml(R"(
pipeline:
  output:
    file:
      path: "out/app-errors.log"
  processors: [{filter: {contains: "ERROR"}}]
  input:
    generate: {message: ERROR disk almost full, interval: 1000ms}
selector: "canary"
name: other-name
)",
                             "demo");
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(a->digest().size(), 64u);
  EXPECT_EQ(a->digest().find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(a->digest(), b->digest());
  EXPECT_EQ(PipelineDigest(a->spec()), PipelineDigest(a->spec()));
}

TEST(PipelineDigest, ChangesWhenTheSpecChanges) {
  auto base = ParsePipelineYaml(kExample, "demo");
  ASSERT_TRUE(base.ok());
  std::vector<v1::PipelineSpec> variants(4, base->spec());
  variants[0].mutable_input()->mutable_generate()->set_interval_ms(2000);
  variants[1].mutable_processors(0)->mutable_filter()->set_invert(true);
  variants[2].mutable_output()->mutable_file()->set_path("out/other.log");
  variants[3].clear_processors();
  for (size_t i = 0; i < variants.size(); ++i) {
    EXPECT_NE(PipelineDigest(variants[i]), base->digest()) << "variant " << i;
  }
  EXPECT_NE(PipelineDigest(variants[0]), PipelineDigest(variants[1]));
}

TEST(PipelineSpecToYaml, RendersASpecThatParsesBackUnchanged) {
  const std::vector<std::string> bodies = {
      "  input: {generate: {interval: 1s, message: \"ERROR disk almost full\"}}\n"
      "  processors: [{filter: {contains: ERROR}}]\n"
      "  output: {file: {path: out/app-errors.log}}\n",
      "  input: {generate: {interval: 1500ms, message: \"~\", count: 10}}\n"
      "  processors:\n"
      "    - filter: {regex: '^\"quoted\": \\d+$', invert: true}\n"
      "    - filter: {contains: 'yes', regex: 'x'}\n"
      "  output: {mqtt: {stream: errors, qos: 2}}\n",
      "  input: {file: {path: '/var/log/a b.log', from_beginning: true}}\n"
      "  output: stdout\n",
      "  input: {generate: {interval: 2h, message: \"multi\\nline: true\"}}\n"
      "  output: {mqtt: {stream: s, qos: 0}}\n",
  };
  for (const std::string& body : bodies) {
    auto p = ParsePipelineYaml(WithPipeline(body), "demo");
    ASSERT_TRUE(p.ok()) << body << ": " << p.error().message;
    const std::string rendered = PipelineSpecToYaml(p->spec());
    auto again = ParsePipelineYaml("name: p\npipeline:\n" + Indent(rendered), "demo");
    ASSERT_TRUE(again.ok()) << rendered << ": " << again.error().message;
    EXPECT_TRUE(SameSpec(p->spec(), again->spec())) << "rendered:\n" << rendered;
    EXPECT_EQ(again->digest(), p->digest());
  }
}

TEST(PipelineSpecToYaml, WritesIntervalsInTheLargestWholeUnit) {
  v1::PipelineSpec spec;
  spec.mutable_output()->mutable_stdout();
  struct Case {
    uint32_t ms;
    std::string text;
  };
  for (const Case& c : std::vector<Case>{{1000, "interval: 1s"}, {1500, "interval: 1500ms"},
                                         {120000, "interval: 2m"}, {86400000, "interval: 1d"}}) {
    spec.mutable_input()->mutable_generate()->set_interval_ms(c.ms);
    EXPECT_NE(PipelineSpecToYaml(spec).find(c.text), std::string::npos) << PipelineSpecToYaml(spec);
  }
}

}  // namespace
}  // namespace cairn
