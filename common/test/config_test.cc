#include "cairn/common/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace cairn {
namespace {

using std::chrono::milliseconds;

// A fake environment for LoadEnv.
class FakeEnv {
 public:
  FakeEnv(std::initializer_list<std::pair<const std::string, std::string>> vars) : vars_(vars) {}
  std::function<const char*(const char*)> Fn() const {
    return [this](const char* name) -> const char* {
      auto it = vars_.find(name);
      return it == vars_.end() ? nullptr : it->second.c_str();
    };
  }

 private:
  std::map<std::string, std::string> vars_;
};

// A file in the test's temp dir, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(testing::TempDir()) /
            ("cairn_config_" + std::string(info->name()) + "_" + std::to_string(getpid()) + ".yaml");
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// The config of a made-up binary, with defaults.
struct TestConfig {
  std::string listen = "127.0.0.1:8080";
  int64_t workers = 4;
  bool verbose = false;
  milliseconds interval{10'000};
  std::map<std::string, std::string> labels = {{"default", "yes"}};
  std::vector<std::string> peers = {"default-peer"};

  ConfigSchema Schema() {
    ConfigSchema s;
    s.String("listen", &listen, "address to listen on");
    s.Int("workers", &workers, "number of worker threads");
    s.Bool("verbose", &verbose, "log more");
    s.Duration("health-interval", &interval, "time between health reports");
    s.Map("label", &labels, "a node label");
    s.List("peer", &peers, "a peer address");
    return s;
  }
};

TEST(ParseDuration, AcceptsNumbersWithUnits) {
  struct Case {
    std::string text;
    int64_t ms;
  };
  const std::vector<Case> cases = {
      {"250ms", 250}, {"10s", 10'000},   {"5m", 300'000}, {"2h", 7'200'000},
      {"1d", 86'400'000}, {"7", 7'000}, {"0", 0},         {"1.5s", 1'500},
      {"0.25m", 15'000},  {"0ms", 0},
  };
  for (const Case& c : cases) {
    auto d = ParseDuration(c.text);
    ASSERT_TRUE(d.ok()) << c.text << ": " << d.error().message;
    EXPECT_EQ(d->count(), c.ms) << c.text;
  }
}

TEST(ParseDuration, RejectsMalformedDurations) {
  for (const char* text : {"", "s", "ms", "-1s", "+1s", "1 s", " 1s", "1sec", "1.s", ".5s", "1.0005s",
                           "10w", "1h30m", "99999999999999999999s", "9223372036854775807d",
                           "1.1234567891s"}) {
    auto d = ParseDuration(text);
    ASSERT_FALSE(d.ok()) << text;
    EXPECT_EQ(d.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(d.error().message.rfind("invalid duration \"", 0), 0u) << d.error().message;
  }
}

TEST(ParseKeyValue, SplitsAtTheFirstEqualsSign) {
  auto kv = ParseKeyValue("env=a=b");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->first, "env");
  EXPECT_EQ(kv->second, "a=b");
  auto empty_value = ParseKeyValue("env=");
  ASSERT_TRUE(empty_value.ok());
  EXPECT_EQ(empty_value->second, "");
  EXPECT_FALSE(ParseKeyValue("env").ok());
  EXPECT_FALSE(ParseKeyValue("=prod").ok());
}

TEST(ConfigSchema, LoadsEveryKindFromYaml) {
  TestConfig c;
  ConfigSchema s = c.Schema();
  Status st = s.LoadYaml(R"(
listen: 0.0.0.0:9000
workers: 16
verbose: true
health-interval: 500ms
label: {env: prod, region: eu}
peer: [a, b]
)",
                         "test.yaml");
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(c.listen, "0.0.0.0:9000");
  EXPECT_EQ(c.workers, 16);
  EXPECT_TRUE(c.verbose);
  EXPECT_EQ(c.interval, milliseconds(500));
  EXPECT_EQ(c.labels, (std::map<std::string, std::string>{{"env", "prod"}, {"region", "eu"}}));
  EXPECT_EQ(c.peers, (std::vector<std::string>{"a", "b"}));
}

TEST(ConfigSchema, EmptyYamlChangesNothing) {
  TestConfig c;
  ConfigSchema s = c.Schema();
  ASSERT_TRUE(s.LoadYaml("", "empty.yaml").ok());
  ASSERT_TRUE(s.LoadYaml("# only a comment\n", "comment.yaml").ok());
  EXPECT_EQ(c.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.peers, std::vector<std::string>{"default-peer"});
}

TEST(ConfigSchema, RejectsBadYamlNamingKeyAndOrigin) {
  struct Case {
    std::string yaml;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"listen: x\nlisen: y\n", "edge.yaml:2: unknown key \"lisen\" (did you mean \"listen\"?)"},
      {"colour: blue\n", "edge.yaml:1: unknown key \"colour\""},
      {"workers: many\n", "edge.yaml:1: key \"workers\": invalid value \"many\": expected an integer"},
      {"verbose: maybe\n", "edge.yaml:1: key \"verbose\": invalid value \"maybe\": expected true or false"},
      {"health-interval: 10x\n", "edge.yaml:1: key \"health-interval\": invalid duration \"10x\""},
      {"listen: a\nlisten: b\n", "edge.yaml:2: key \"listen\" is given twice"},
      {"listen:\n", "edge.yaml:1: key \"listen\": has no value"},
      {"listen: [a]\n", "edge.yaml:1: key \"listen\": expected a single value"},
      {"peer: a\n", "edge.yaml:1: key \"peer\": expected a list"},
      {"label: [a]\n", "edge.yaml:1: key \"label\": expected a map"},
      {"label: {a: {b: c}}\n", "edge.yaml:1: key \"label\": expected a map of plain strings"},
      {"- a\n- b\n", "edge.yaml: expected a map of \"key: value\" at the top level"},
      {"listen: [a\n", "edge.yaml:2: invalid YAML"},
      {"listen: !secret x\n", "edge.yaml:1: key \"listen\": unexpected YAML tag \"!secret\""},
  };
  for (const Case& c : cases) {
    TestConfig config;
    ConfigSchema s = config.Schema();
    Status st = s.LoadYaml(c.yaml, "edge.yaml");
    ASSERT_FALSE(st.ok()) << c.yaml;
    EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(st.error().message.rfind(c.message, 0), 0u)
        << "yaml: " << c.yaml << "\nmessage: " << st.error().message;
  }
}

TEST(ConfigSchema, LoadFileReportsAMissingFile) {
  TestConfig c;
  ConfigSchema s = c.Schema();
  Status st = s.LoadFile("/nonexistent/cairn.yaml");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kNotFound);
  EXPECT_NE(st.error().message.find("/nonexistent/cairn.yaml"), std::string::npos);
}

TEST(ConfigSchema, LoadFileUsesThePathAsOrigin) {
  TempFile file("workers: 2\nbogus: 1\n");
  TestConfig c;
  ConfigSchema s = c.Schema();
  Status st = s.LoadFile(file.path());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, file.path() + ":2: unknown key \"bogus\"");
  EXPECT_EQ(c.workers, 2);
}

TEST(ConfigSchema, ReadsEnvironmentVariablesWithPrefix) {
  TestConfig c;
  ConfigSchema s = c.Schema();
  FakeEnv env({{"CAIRN_EDGE_LISTEN", ":1883"},
               {"CAIRN_EDGE_HEALTH_INTERVAL", "30s"},
               {"CAIRN_EDGE_VERBOSE", "true"},
               {"CAIRN_EDGE_LABEL", "env=prod, zone=a"},
               {"CAIRN_EDGE_PEER", "x,,y"},
               {"OTHER_WORKERS", "99"}});
  Status st = s.LoadEnv("CAIRN_EDGE", env.Fn());
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(c.listen, ":1883");
  EXPECT_EQ(c.interval, milliseconds(30'000));
  EXPECT_TRUE(c.verbose);
  EXPECT_EQ(c.workers, 4);
  EXPECT_EQ(c.labels, (std::map<std::string, std::string>{{"env", "prod"}, {"zone", "a"}}));
  EXPECT_EQ(c.peers, (std::vector<std::string>{"x", "y"}));
}

TEST(ConfigSchema, AcceptsAPrefixThatEndsInAnUnderscore) {
  TestConfig c;
  ConfigSchema s = c.Schema();
  FakeEnv env({{"CAIRN_WORKERS", "8"}});
  ASSERT_TRUE(s.LoadEnv("CAIRN_", env.Fn()).ok());
  EXPECT_EQ(c.workers, 8);
}

TEST(ConfigSchema, NamesTheVariableWhenAnEnvironmentValueIsBad) {
  TestConfig c;
  ConfigSchema s = c.Schema();
  FakeEnv env({{"CAIRN_HEALTH_INTERVAL", "soon"}});
  Status st = s.LoadEnv("CAIRN", env.Fn());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message.rfind("environment variable CAIRN_HEALTH_INTERVAL: invalid duration "
                                     "\"soon\"",
                                     0),
            0u)
      << st.error().message;
}

TEST(ConfigSchema, FlagsBeatEnvironmentWhichBeatsTheFile) {
  TempFile file(R"(
listen: file:1
workers: 1
health-interval: 1s
label: {from: file}
peer: [file-peer]
)");
  TestConfig c;
  ConfigSchema s = c.Schema();
  ASSERT_TRUE(s.LoadFile(file.path()).ok());
  EXPECT_EQ(c.labels, (std::map<std::string, std::string>{{"from", "file"}}));  // defaults replaced
  EXPECT_EQ(c.peers, std::vector<std::string>{"file-peer"});

  FakeEnv env({{"CAIRN_LISTEN", "env:2"},
               {"CAIRN_WORKERS", "2"},
               {"CAIRN_LABEL", "from=env,extra=1"}});
  ASSERT_TRUE(s.LoadEnv("CAIRN", env.Fn()).ok());

  auto positional = s.LoadFlags({"--listen", "flag:3", "--peer=p1", "--peer", "p2"});
  ASSERT_TRUE(positional.ok()) << positional.error().message;

  EXPECT_EQ(c.listen, "flag:3");                     // flag over env over file
  EXPECT_EQ(c.workers, 2);                           // env over file
  EXPECT_EQ(c.interval, milliseconds(1000));         // file only
  EXPECT_EQ(c.labels, (std::map<std::string, std::string>{{"extra", "1"}, {"from", "env"}}));
  EXPECT_EQ(c.peers, (std::vector<std::string>{"p1", "p2"}));  // flags replaced the file's list
}

TEST(ConfigSchema, RepeatedFlagsAppendToMapsAndLists) {
  TestConfig c;
  ConfigSchema s = c.Schema();
  auto r = s.LoadFlags({"--label", "env=prod", "--label=zone=a", "--label", "env=dev", "--peer", "a",
                        "--peer", "b", "--peer", "a"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(c.labels, (std::map<std::string, std::string>{{"env", "dev"}, {"zone", "a"}}));
  EXPECT_EQ(c.peers, (std::vector<std::string>{"a", "b", "a"}));
}

TEST(ConfigSchema, ReturnsPositionalArgumentsInOrder) {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> positional;
  };
  const std::vector<Case> cases = {
      {{}, {}},
      {{"apply", "--workers", "3", "file.yaml"}, {"apply", "file.yaml"}},
      {{"--verbose", "run"}, {"run"}},  // a bare bool flag does not take the next word
      {{"-", "-5"}, {"-", "-5"}},        // stdin and negative numbers are not flags
      {{"a", "--", "--workers", "-x"}, {"a", "--workers", "-x"}},  // "--" ends flags
  };
  for (const Case& c : cases) {
    TestConfig config;
    ConfigSchema s = config.Schema();
    auto r = s.LoadFlags(c.args);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, c.positional);
  }
}

TEST(ConfigSchema, ParsesBooleanAndSingleDashFlags) {
  TestConfig c;
  ConfigSchema s = c.Schema();
  ASSERT_TRUE(s.LoadFlags({"--verbose"}).ok());
  EXPECT_TRUE(c.verbose);
  ASSERT_TRUE(s.LoadFlags({"--verbose=false"}).ok());
  EXPECT_FALSE(c.verbose);
  ASSERT_TRUE(s.LoadFlags({"-workers", "7", "-listen=x"}).ok());
  EXPECT_EQ(c.workers, 7);
  EXPECT_EQ(c.listen, "x");
  ASSERT_TRUE(s.LoadFlags({"--workers=-3"}).ok());
  EXPECT_EQ(c.workers, -3);
}

TEST(ConfigSchema, RejectsBadFlags) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--wrokers", "3"}, "unknown flag \"--wrokers\" (did you mean --workers?)"},
      {{"--nope=1"}, "unknown flag \"--nope\""},
      {{"-x"}, "unknown flag \"-x\""},
      {{"--=x"}, "unknown flag \"--\""},
      {{"--workers"}, "flag --workers needs a value"},
      {{"--workers", "--verbose"}, "flag --workers needs a value"},
      {{"--workers", "lots"}, "flag --workers: invalid value \"lots\": expected an integer"},
      {{"--verbose=maybe"}, "flag --verbose: invalid value \"maybe\": expected true or false"},
      {{"--health-interval", "1y"}, "flag --health-interval: invalid duration \"1y\""},
      {{"--label", "novalue"}, "flag --label: expected key=value, got \"novalue\""},
  };
  for (const Case& c : cases) {
    TestConfig config;
    ConfigSchema s = config.Schema();
    auto r = s.LoadFlags(c.args);
    ASSERT_FALSE(r.ok()) << c.args.front();
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(r.error().message.rfind(c.message, 0), 0u) << r.error().message;
  }
}

TEST(ConfigSchema, UsageListsEveryKeyWithItsHelp) {
  TestConfig c;
  ConfigSchema s = c.Schema();
  EXPECT_TRUE(s.Has("workers"));
  EXPECT_FALSE(s.Has("threads"));
  const std::string usage = s.Usage();
  for (const char* line : {
           "  --health-interval DURATION   time between health reports\n",
           "  --label KEY=VALUE            a node label (repeatable)\n",
           "  --listen VALUE               address to listen on\n",
           "  --peer VALUE                 a peer address (repeatable)\n",
           "  --verbose                    log more\n",
           "  --workers N                  number of worker threads\n",
       }) {
    EXPECT_NE(usage.find(line), std::string::npos) << "missing: " << line << "in:\n" << usage;
  }
}

}  // namespace
}  // namespace cairn
