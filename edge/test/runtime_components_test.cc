// Unit tests of the runtime's pieces driven directly, with a fake clock: the
// record and its JSON, the registry, and each component kind.
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "cairn/edge/runtime/component.h"
#include "cairn/edge/runtime/record.h"
#include "cairn/edge/runtime/registry.h"
#include "test_util.h"

namespace cairn::edge::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testutil::FakeClock;

Record Line(std::string body) {
  Record r;
  r.body = std::move(body);
  return r;
}

std::vector<std::string> Texts(const std::vector<Record>& records) {
  std::vector<std::string> out;
  for (const Record& r : records) out.push_back(r.Text());
  return out;
}

class ComponentsTest : public ::testing::Test {
 protected:
  ComponentsTest() {
    env_.clock = &clock_;
    env_.node = "node-7";
    env_.labels = [this] { return labels_; };
  }

  std::unique_ptr<Processor> MakeProcessor(const v1::Processor& config) {
    auto p = BuiltinRegistry().MakeProcessor(config, "processors[0]", env_);
    EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
    return p.ok() ? std::move(*p) : nullptr;
  }

  // Runs `records` through `p` and returns what it emitted.
  std::vector<Record> Run(Processor* p, std::vector<Record> records, uint64_t* dropped = nullptr) {
    Emitter out;
    for (Record& r : records) EXPECT_TRUE(p->Process(std::move(r), &out).ok());
    if (dropped) *dropped = out.dropped();
    return std::move(out.records());
  }

  FakeClock clock_{1'000'000};
  Labels labels_{{"site", "lyon"}};
  Env env_;
};

// --- Record and JSON

TEST(RecordJson, ParsesAnObjectIntoTypedFieldsAndKeepsNestedValuesAsText) {
  Fields f;
  ASSERT_TRUE(ParseJsonObject(
                  R"( {"t": 21.5, "ok": true, "name": "a\"b\u00e9", "n": null, "tags": [1, {"x": 2}]} )",
                  &f)
                  .ok());
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(f.Find("t")->number, 21.5);
  EXPECT_TRUE(f.Find("ok")->boolean);
  EXPECT_EQ(f.Find("name")->text, "a\"b\xc3\xa9");
  EXPECT_EQ(f.Find("n")->kind, Value::Kind::kNull);
  EXPECT_EQ(f.Find("tags")->text, R"([1, {"x": 2}])");
  EXPECT_EQ(ToJson(f), R"({"t":21.5,"ok":true,"name":"a\"bé","n":null,"tags":[1, {"x": 2}]})");
}

TEST(RecordJson, RefusesWhatIsNotOneObject) {
  for (const char* text : {"", "[1]", "42", "{\"a\":1} trailing", "{\"a\":}", "{\"a\":1,}",
                           "{\"a\": [1, 2}", "{'a': 1}", "{\"a\": +1}", "{\"a\": \"x"}) {
    Fields f;
    EXPECT_FALSE(ParseJsonObject(text, &f).ok()) << text;
  }
}

TEST(RecordJson, TextIsTheBodyOrTheFieldsWithTheBodyAsMessage) {
  Record r = Line("disk full");
  EXPECT_EQ(r.Text(), "disk full");
  r.fields.Set("level", Value::String("error"));
  EXPECT_EQ(r.Text(), R"({"level":"error","message":"disk full"})");
  r.body.clear();
  r.fields.Set("count", Value::Number(3));
  EXPECT_EQ(r.Text(), R"({"level":"error","count":3})");
}

// --- Registry

TEST(ComponentRegistry, AnUnknownKindIsAnErrorNeverADefault) {
  ComponentRegistry empty;
  Env env;
  v1::Input input;
  input.mutable_generate();
  auto i = empty.MakeInput(input, env);
  ASSERT_FALSE(i.ok());
  EXPECT_EQ(i.error().message, "input.generate: kind not supported by this node");
  v1::Output none;  // a kind from a newer schema arrives as no kind at all
  auto o = BuiltinRegistry().MakeOutput(none, env);
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(o.error().message, HasSubstr("output: no kind set"));
}

TEST(ComponentRegistry, RefusesKindsOutsideTheSchemaAndDuplicates) {
  ComponentRegistry r;
  auto factory = [](const google::protobuf::Message&, const std::string&,
                    const Env&) -> Result<std::unique_ptr<Output>> {
    return Error::Internal("unused");
  };
  EXPECT_FALSE(r.AddOutput("carrier-pigeon", factory).ok());
  EXPECT_TRUE(r.AddOutput("stdout", factory).ok());
  EXPECT_EQ(r.AddOutput("stdout", factory).error().code, ErrorCode::kAlreadyExists);
}

TEST(ComponentRegistry, EveryKindOfTheSchemaIsRegistered) {
  // A kind added to pipeline.proto without a component would be refused at
  // run time; catch it here.
  ComponentRegistry probe;
  RegisterBuiltinComponents(&probe);
  for (const auto* d : {v1::Input::descriptor(), v1::Processor::descriptor(),
                        v1::Output::descriptor()}) {
    const auto* oneof = d->FindOneofByName("kind");
    for (int i = 0; i < oneof->field_count(); ++i) {
      SCOPED_TRACE(oneof->field(i)->name());
      auto noop = [](const google::protobuf::Message&, const std::string&, const Env&)
          -> Result<std::unique_ptr<Input>> { return Error::Internal("unused"); };
      if (d == v1::Input::descriptor()) {
        EXPECT_EQ(probe.AddInput(oneof->field(i)->name(), noop).error().code,
                  ErrorCode::kAlreadyExists);
      } else if (d == v1::Processor::descriptor()) {
        auto p = [](const google::protobuf::Message&, const std::string&, const Env&)
            -> Result<std::unique_ptr<Processor>> { return Error::Internal("unused"); };
        EXPECT_EQ(probe.AddProcessor(oneof->field(i)->name(), p).error().code,
                  ErrorCode::kAlreadyExists);
      } else {
        auto o = [](const google::protobuf::Message&, const std::string&, const Env&)
            -> Result<std::unique_ptr<Output>> { return Error::Internal("unused"); };
        EXPECT_EQ(probe.AddOutput(oneof->field(i)->name(), o).error().code,
                  ErrorCode::kAlreadyExists);
      }
    }
  }
}

// --- generate

TEST_F(ComponentsTest, GenerateByIntervalEmitsOneRecordPerIntervalOfTheClock) {
  v1::Input c;
  c.mutable_generate()->set_message("tick");
  c.mutable_generate()->set_interval_ms(500);
  auto in = BuiltinRegistry().MakeInput(c, env_);
  ASSERT_TRUE(in.ok());
  std::vector<Record> out;
  EXPECT_EQ(*(*in)->Poll(&out), milliseconds(500));
  EXPECT_EQ(*(*in)->Poll(&out), milliseconds(500));  // clock has not moved
  clock_.Advance(milliseconds(499));
  EXPECT_EQ(*(*in)->Poll(&out), milliseconds(1));
  clock_.Advance(milliseconds(1));
  (void)(*in)->Poll(&out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].body, "tick");
  EXPECT_EQ(out[1].timestamp_ms, 1'000'500);
  EXPECT_EQ(out[1].position.source, "generate");
  EXPECT_EQ(out[1].position.offset, 1u);
}

TEST_F(ComponentsTest, GenerateByRateEmitsTenThousandRecordsPerSecondOfTheClock) {
  v1::Input c;
  c.mutable_generate()->set_rate(10'000);
  auto in = BuiltinRegistry().MakeInput(c, env_);
  ASSERT_TRUE(in.ok());
  std::vector<Record> out;
  int polls = 0;
  for (int64_t ms = 0; ms < 1000; ++polls) {
    auto wait = (*in)->Poll(&out);
    ASSERT_TRUE(wait.ok());
    EXPECT_EQ(*wait, milliseconds(10));  // due records come together, 100 wake-ups a second
    clock_.Advance(*wait);
    ms += wait->count();
  }
  (void)(*in)->Poll(&out);
  EXPECT_EQ(out.size(), 10'001u);  // t=0 .. t=1000 ms inclusive
  EXPECT_EQ(polls, 100);
}

TEST_F(ComponentsTest, GenerateAtALowRateWaitsForEachRecord) {
  v1::Input c;
  c.mutable_generate()->set_rate(20);
  auto in = BuiltinRegistry().MakeInput(c, env_);
  ASSERT_TRUE(in.ok());
  std::vector<Record> out;
  auto wait = (*in)->Poll(&out);
  ASSERT_TRUE(wait.ok());
  EXPECT_EQ(out.size(), 1u);
  EXPECT_EQ(*wait, milliseconds(50));
}

TEST_F(ComponentsTest, GenerateByRateDoesNotBurstAfterFallingBehind) {
  v1::Input c;
  c.mutable_generate()->set_rate(1000);
  auto in = BuiltinRegistry().MakeInput(c, env_);
  ASSERT_TRUE(in.ok());
  std::vector<Record> out;
  (void)(*in)->Poll(&out);
  clock_.Advance(std::chrono::seconds(60));  // the output blocked for a minute
  out.clear();
  (void)(*in)->Poll(&out);
  EXPECT_LE(out.size(), 1001u);
}

TEST_F(ComponentsTest, GenerateStopsAfterCount) {
  v1::Input c;
  c.mutable_generate()->set_rate(1000);
  c.mutable_generate()->set_count(5);
  auto in = BuiltinRegistry().MakeInput(c, env_);
  ASSERT_TRUE(in.ok());
  std::vector<Record> out;
  clock_.Advance(std::chrono::seconds(1));
  (void)(*in)->Poll(&out);
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_GT(*(*in)->Poll(&out), milliseconds(1000));
  EXPECT_EQ(out.size(), 5u);
}

// --- the components' log

TEST(ComponentLog, GoesToTheNodesLogWithThePipelineNameAndIsRateLimited) {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  sink->set_pattern("%l %v");
  auto logger = std::make_shared<spdlog::logger>("capture", sink);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  FakeClock clock(1000);
  ComponentLog log("app-errors", &clock, /*per_second=*/2, /*burst=*/3);
  for (int i = 0; i < 10; ++i) log(ComponentLog::Level::kWarn, "line " + std::to_string(i));
  EXPECT_EQ(log.suppressed(), 7u);
  clock.Advance(std::chrono::milliseconds(500));  // one more line's worth
  log(ComponentLog::Level::kError, "later");
  log(ComponentLog::Level::kError, "too soon");
  spdlog::set_default_logger(previous);
  EXPECT_EQ(captured.str(),
            "warning pipeline app-errors: line 0\n"
            "warning pipeline app-errors: line 1\n"
            "warning pipeline app-errors: line 2\n"
            "error pipeline app-errors: later (7 lines suppressed by the rate limit)\n");
  EXPECT_EQ(log.suppressed(), 8u);
}

// --- filter

TEST_F(ComponentsTest, FilterMatchesTheTextOfStructuredRecordsToo) {
  v1::Processor c;
  c.mutable_filter()->set_contains("\"level\":\"error\"");
  auto p = MakeProcessor(c);
  Record structured;
  structured.fields.Set("level", Value::String("error"));
  Record other;
  other.fields.Set("level", Value::String("info"));
  uint64_t dropped = 0;
  auto out = Run(p.get(), {std::move(structured), std::move(other)}, &dropped);
  EXPECT_THAT(Texts(out), ElementsAre(R"({"level":"error"})"));
  EXPECT_EQ(dropped, 1u);
}

TEST_F(ComponentsTest, FilterRegexUsesRe2SyntaxAndSeesTheWholeRecord) {
  v1::Processor c;
  c.mutable_filter()->set_regex(R"(ERROR\s+\d{3}$)");
  auto p = MakeProcessor(c);
  // The match sits at the end of a 1 MiB record: beyond std::regex's old
  // 4 KiB window, and reached in linear time.
  std::string long_line(1 << 20, 'x');
  long_line += " ERROR 503";
  uint64_t dropped = 0;
  auto out = Run(p.get(), {Line("ERROR   500"), Line("ERROR 5000"), Line("warn 200"), Line(long_line)},
                 &dropped);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].body, "ERROR   500");
  EXPECT_EQ(out[1].body.size(), long_line.size());
  EXPECT_EQ(dropped, 2u);
}

TEST_F(ComponentsTest, FilterRegexThatBacktrackingEnginesChokeOnRunsInLinearTime) {
  // (a+)+$ against "aaaa...b" is exponential for a backtracking engine; with
  // RE2 it is one linear pass. (No timing assertion: finishing is the test.)
  v1::Processor c;
  c.mutable_filter()->set_regex("^(a+)+$");
  auto p = MakeProcessor(c);
  uint64_t dropped = 0;
  auto out = Run(p.get(), {Line(std::string(100'000, 'a') + "b"), Line(std::string(50, 'a'))}, &dropped);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].body, std::string(50, 'a'));
  EXPECT_EQ(dropped, 1u);
}

TEST_F(ComponentsTest, FilterRefusesABadRegexWithItsFieldPath) {
  v1::Processor c;
  c.mutable_filter()->set_regex("(?<=lookbehind)x");  // not RE2 syntax
  auto p = BuiltinRegistry().MakeProcessor(c, "processors[2]", env_);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.error().message,
              ::testing::StartsWith("processors[2].filter.regex: invalid regex \"(?<=lookbehind)x\": "));
}

TEST_F(ComponentsTest, FilterComparesAFieldByTextOrAsANumber) {
  struct Case {
    std::function<void(v1::FilterProcessor*)> set;
    std::vector<std::string> kept;
  };
  const std::vector<Case> cases = {
      {[](auto* f) { f->set_field("room"); }, {"a:10", "b:25", "b:31"}},  // exists
      {[](auto* f) { f->set_field("room"); f->set_equals("b"); }, {"b:25", "b:31"}},
      {[](auto* f) { f->set_field("temp"); f->set_above(25); }, {"b:31"}},
      {[](auto* f) { f->set_field("temp"); f->set_above(0); f->set_below(30); }, {"a:10", "b:25"}},
      {[](auto* f) { f->set_field("temp"); f->set_equals("25"); }, {"b:25"}},
      {[](auto* f) { f->set_field("room"); f->set_equals("b"); f->set_invert(true); },
       {"a:10", "no-room"}},
      {[](auto* f) { f->set_field("temp"); f->set_below(100); f->set_contains("\"b\""); },
       {"b:25", "b:31"}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    v1::Processor c;
    cases[i].set(c.mutable_filter());
    auto p = MakeProcessor(c);
    std::vector<Record> in;
    for (auto [room, temp] : std::vector<std::pair<std::string, double>>{{"a", 10}, {"b", 25}, {"b", 31}}) {
      Record r;
      r.fields.Set("room", Value::String(room));
      r.fields.Set("temp", Value::Number(temp));
      in.push_back(std::move(r));
    }
    Record odd;
    odd.fields.Set("temp", Value::String("hot"));
    in.push_back(std::move(odd));
    std::vector<std::string> kept;
    for (const Record& r : Run(p.get(), std::move(in))) {
      const Value* room = r.fields.Find("room");
      kept.push_back(room ? room->text + ":" + r.fields.Find("temp")->AsText() : "no-room");
    }
    EXPECT_EQ(kept, cases[i].kept);
  }
}

// --- parse_json

TEST_F(ComponentsTest, ParseJsonTurnsTheBodyIntoFieldsAndDropsInvalidRecordsWithAnError) {
  v1::Processor c;
  c.mutable_parse_json();
  auto p = MakeProcessor(c);
  Emitter out;
  ASSERT_TRUE(p->Process(Line(R"({"temp": 21.5, "room": "b"})"), &out).ok());
  Status bad = p->Process(Line("not json"), &out);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("parse_json: not JSON"));
  EXPECT_EQ(out.dropped(), 1u);
  ASSERT_EQ(out.records().size(), 1u);
  EXPECT_EQ(out.records()[0].fields.Find("temp")->number, 21.5);
  EXPECT_EQ(out.records()[0].body, "");
  EXPECT_EQ(out.records()[0].Text(), R"({"temp":21.5,"room":"b"})");
}

TEST_F(ComponentsTest, ParseJsonWithKeepInvalidPassesOtherRecordsOn) {
  v1::Processor c;
  c.mutable_parse_json()->set_keep_invalid(true);
  auto p = MakeProcessor(c);
  uint64_t dropped = 0;
  auto out = Run(p.get(), {Line("plain text")}, &dropped);
  EXPECT_THAT(Texts(out), ElementsAre("plain text"));
  EXPECT_EQ(dropped, 0u);
}

// --- set

TEST_F(ComponentsTest, SetAddsConstantsTheNodeNameAndTheCurrentLabels) {
  v1::Processor c;
  (*c.mutable_set()->mutable_fields())["zone"] = "b";
  (*c.mutable_set()->mutable_fields())["app"] = "pump";
  c.mutable_set()->set_node_field("node");
  c.mutable_set()->set_labels_field("labels");
  auto p = MakeProcessor(c);
  auto out = Run(p.get(), {Line("hello")});
  EXPECT_THAT(Texts(out),
              ElementsAre(R"({"app":"pump","zone":"b","node":"node-7","labels":{"site":"lyon"},"message":"hello"})"));
  labels_ = {{"site", "paris"}};  // a relabel: no restart needed
  out = Run(p.get(), {Line("again")});
  EXPECT_EQ(out[0].fields.Find("labels")->text, R"({"site":"paris"})");
}

// --- drop

TEST_F(ComponentsTest, DropRemovesTheNamedFields) {
  v1::Processor c;
  c.mutable_drop()->add_fields("secret");
  c.mutable_drop()->add_fields("absent");
  auto p = MakeProcessor(c);
  Record r;
  r.fields.Set("user", Value::String("ann"));
  r.fields.Set("secret", Value::String("hunter2"));
  auto out = Run(p.get(), {std::move(r)});
  EXPECT_THAT(Texts(out), ElementsAre(R"({"user":"ann"})"));
}

// --- sample

TEST_F(ComponentsTest, SampleKeepsOneRecordInN) {
  v1::Processor c;
  c.mutable_sample()->set_one_in(3);
  auto p = MakeProcessor(c);
  std::vector<Record> in;
  for (int i = 0; i < 7; ++i) in.push_back(Line(std::to_string(i)));
  uint64_t dropped = 0;
  auto out = Run(p.get(), std::move(in), &dropped);
  EXPECT_THAT(Texts(out), ElementsAre("0", "3", "6"));
  EXPECT_EQ(dropped, 4u);
}

// --- batch

TEST_F(ComponentsTest, BatchEmitsAJsonArrayWhenFull) {
  v1::Processor c;
  c.mutable_batch()->set_max_records(3);
  auto p = MakeProcessor(c);
  Record obj;
  obj.fields.Set("t", Value::Number(1));
  std::vector<Record> in;
  in.push_back(Line("a \"quoted\" line"));
  in.push_back(std::move(obj));
  in.push_back(Line("c"));
  in.push_back(Line("d"));
  uint64_t dropped = 0;
  auto out = Run(p.get(), std::move(in), &dropped);
  EXPECT_THAT(Texts(out), ElementsAre(R"(["a \"quoted\" line",{"t":1},"c"])"));
  EXPECT_EQ(dropped, 0u);  // "d" is held, not dropped
  Emitter flushed;
  p->Flush(&flushed);
  EXPECT_THAT(Texts(flushed.records()), ElementsAre(R"(["d"])"));
}

TEST_F(ComponentsTest, BatchEmitsWhatItHoldsAfterMaxWaitOfTheClock) {
  v1::Processor c;
  c.mutable_batch()->set_max_wait_ms(2000);
  c.mutable_batch()->set_format("lines");
  auto p = MakeProcessor(c);
  EXPECT_TRUE(Run(p.get(), {Line("a"), Line("b")}).empty());
  Emitter out;
  EXPECT_EQ(p->Tick(clock_.NowMs(), &out), std::optional<int64_t>(1'002'000));
  clock_.Advance(milliseconds(2000));
  EXPECT_EQ(p->Tick(clock_.NowMs(), &out), std::nullopt);
  EXPECT_THAT(Texts(out.records()), ElementsAre("a\nb"));
  EXPECT_EQ(p->Tick(clock_.NowMs(), &out), std::nullopt);  // nothing held
}

TEST_F(ComponentsTest, BatchNeverExceedsMaxBytes) {
  v1::Processor c;
  c.mutable_batch()->set_max_bytes(20);
  c.mutable_batch()->set_max_records(1000);
  auto p = MakeProcessor(c);
  std::vector<Record> in;
  for (int i = 0; i < 10; ++i) in.push_back(Line("12345"));
  auto out = Run(p.get(), std::move(in));
  Emitter rest;
  p->Flush(&rest);
  for (auto& r : rest.records()) out.push_back(std::move(r));
  size_t items = 0;
  for (const Record& r : out) {
    EXPECT_LE(r.body.size(), 20u) << r.body;
    items += static_cast<size_t>(std::count(r.body.begin(), r.body.end(), ',')) + 1;
  }
  EXPECT_EQ(items, 10u);
}

// --- aggregate

Record Reading(const std::string& room, double temp) {
  Record r;
  r.fields.Set("room", Value::String(room));
  r.fields.Set("temp", Value::Number(temp));
  return r;
}

TEST_F(ComponentsTest, AggregateSummarisesEachGroupWhenTheWindowEnds) {
  v1::Processor c;
  c.mutable_aggregate()->set_window_ms(10'000);
  c.mutable_aggregate()->add_group_by("room");
  c.mutable_aggregate()->add_fields("temp");
  auto p = MakeProcessor(c);
  clock_.Set(1'000'003'000);  // window [1,000,000,000, 1,000,010,000)
  std::vector<Record> in;
  in.push_back(Reading("b", 20));
  in.push_back(Reading("a", 10));
  in.push_back(Reading("b", 22));
  Record no_temp;
  no_temp.fields.Set("room", Value::String("b"));
  in.push_back(std::move(no_temp));
  uint64_t dropped = 0;
  EXPECT_TRUE(Run(p.get(), std::move(in), &dropped).empty());
  EXPECT_EQ(dropped, 0u);
  Emitter out;
  EXPECT_EQ(p->Tick(clock_.NowMs(), &out), std::optional<int64_t>(1'000'010'000));
  EXPECT_TRUE(out.records().empty());
  clock_.Set(1'000'010'000);
  EXPECT_EQ(p->Tick(clock_.NowMs(), &out), std::nullopt);
  EXPECT_THAT(Texts(out.records()),
              ElementsAre(R"({"room":"a","window_start":1000000000,"window_end":1000010000,"count":1,"temp_sum":10,"temp_avg":10,"temp_min":10,"temp_max":10})",
                          R"({"room":"b","window_start":1000000000,"window_end":1000010000,"count":3,"temp_sum":42,"temp_avg":21,"temp_min":20,"temp_max":22})"));
}

TEST_F(ComponentsTest, AggregateTurnsAThousandReadingsIntoOneRecordWithTheAskedFunctions) {
  v1::Processor c;
  c.mutable_aggregate()->set_window_ms(1000);
  c.mutable_aggregate()->add_fields("temp");
  c.mutable_aggregate()->add_functions("count");
  c.mutable_aggregate()->add_functions("max");
  auto p = MakeProcessor(c);
  clock_.Set(5000);
  std::vector<Record> in;
  for (int i = 0; i < 1000; ++i) in.push_back(Reading("x", i));
  EXPECT_TRUE(Run(p.get(), std::move(in)).empty());
  // The next record, in the next window, closes the first.
  clock_.Set(6000);
  auto out = Run(p.get(), {Reading("x", 1)});
  EXPECT_THAT(Texts(out),
              ElementsAre(R"({"window_start":5000,"window_end":6000,"count":1000,"temp_max":999})"));
  Emitter rest;
  p->Flush(&rest);
  ASSERT_EQ(rest.records().size(), 1u);
  EXPECT_EQ(rest.records()[0].fields.Find("count")->number, 1);
}

// --- exec

// Polls `in` until `n` records came or an error is reported.
Status PollUntil(Input* in, std::vector<Record>* out, size_t n) {
  Status last = OkStatus();
  testutil::WaitUntil([&] {
    auto r = in->Poll(out);
    if (!r.ok()) last = r.error();
    return !r.ok() || out->size() >= n;
  });
  return last;
}

TEST_F(ComponentsTest, ExecIsRefusedUnlessTheNodesOwnerAllowsIt) {
  v1::Input c;
  c.mutable_exec()->add_command("true");
  auto in = BuiltinRegistry().MakeInput(c, env_);
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.error().code, ErrorCode::kPermissionDenied);
  EXPECT_THAT(in.error().message, HasSubstr("input.exec: running commands is not allowed"));
}

TEST_F(ComponentsTest, ExecReadsTheCommandsLinesAndRestartsItWithBackOff) {
  env_.allow_exec = true;
  v1::Input c;
  c.mutable_exec()->add_command("sh");
  c.mutable_exec()->add_command("-c");
  c.mutable_exec()->add_command("echo one; echo \"[$CAIRN_SECRET]\"; printf 'two'");
  c.mutable_exec()->set_restart_ms(1000);
  ::setenv("CAIRN_SECRET", "s3cret", 1);
  auto in = BuiltinRegistry().MakeInput(c, env_);
  ASSERT_TRUE(in.ok()) << in.error().message;
  std::vector<Record> out;
  Status exited = PollUntil(in->get(), &out, 100);
  ASSERT_FALSE(exited.ok());
  EXPECT_EQ(exited.error().message, "exec: sh exited with status 0; restarting in 1000 ms");
  // The last line needs no newline; the agent's environment is not passed on.
  EXPECT_THAT(Texts(out), ElementsAre("one", "[]", "two"));
  EXPECT_EQ(out[0].position.source, "sh");

  // Not before the back-off has passed on the clock.
  auto wait = (*in)->Poll(&out);
  ASSERT_TRUE(wait.ok());
  EXPECT_EQ(*wait, milliseconds(1000));
  clock_.Advance(milliseconds(1000));
  exited = PollUntil(in->get(), &out, 100);
  EXPECT_EQ(exited.error().message, "exec: sh exited with status 0; restarting in 2000 ms");
  EXPECT_THAT(Texts(out), ElementsAre("one", "[]", "two", "one", "[]", "two"));
  ::unsetenv("CAIRN_SECRET");
}

TEST_F(ComponentsTest, ExecOfAMissingProgramSaysSoAndRetriesLater) {
  env_.allow_exec = true;
  v1::Input c;
  c.mutable_exec()->add_command("cairn-no-such-program");
  auto in = BuiltinRegistry().MakeInput(c, env_);
  ASSERT_TRUE(in.ok());
  std::vector<Record> out;
  auto r = (*in)->Poll(&out);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "exec: cannot run cairn-no-such-program: No such file or directory");
  auto wait = (*in)->Poll(&out);
  ASSERT_TRUE(wait.ok());
  EXPECT_EQ(*wait, milliseconds(1000));
}

TEST_F(ComponentsTest, ExecEndKillsALongRunningCommand) {
  env_.allow_exec = true;
  v1::Input c;
  c.mutable_exec()->add_command("sh");
  c.mutable_exec()->add_command("-c");
  c.mutable_exec()->add_command("echo $$; exec sleep 60");
  auto in = BuiltinRegistry().MakeInput(c, env_);
  ASSERT_TRUE(in.ok());
  std::vector<Record> out;
  ASSERT_TRUE(PollUntil(in->get(), &out, 1).ok());
  ASSERT_EQ(out.size(), 1u);
  const pid_t pid = std::stoi(out[0].body);
  EXPECT_EQ(::kill(pid, 0), 0);
  (*in)->End();
  EXPECT_EQ(::kill(pid, 0), -1);  // gone and reaped
}

// --- file output

TEST_F(ComponentsTest, FileOutputRotatesBySizeAndKeepsTheNewestFiles) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "cairn-rotate-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::filesystem::path dir = tmpl;
  env_.data_dir = dir.string();
  v1::Output c;
  c.mutable_file()->set_path("out/r.log");
  c.mutable_file()->set_max_bytes(4096);
  c.mutable_file()->set_keep(2);
  auto out = BuiltinRegistry().MakeOutput(c, env_);
  ASSERT_TRUE(out.ok()) << out.error().message;
  ASSERT_TRUE((*out)->Open().ok());
  const std::string line(1023, 'x');  // 1 KiB with the newline: 4 per file
  for (int i = 0; i < 4 * 4; ++i) {
    Record r = Line(std::to_string(i % 10) + line.substr(1));
    ASSERT_EQ((*out)->Write(r).kind, WriteResult::Kind::kWritten);
  }
  auto size = [&](const char* name) { return std::filesystem::file_size(dir / "out" / name); };
  EXPECT_EQ(size("r.log"), 4096u);
  EXPECT_EQ(size("r.log.1"), 4096u);
  EXPECT_EQ(size("r.log.2"), 4096u);
  EXPECT_FALSE(std::filesystem::exists(dir / "out/r.log.3"));
  // The newest records are in r.log: records 12..15.
  EXPECT_EQ(testutil::ReadLines(dir / "out/r.log").front()[0], '2');
  EXPECT_EQ(testutil::ReadLines(dir / "out/r.log.1").front()[0], '8');
  std::filesystem::remove_all(dir);
}

// --- file input checkpoints

class FileInputTest : public ComponentsTest {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cairn-tail-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    env_.data_dir = dir_.string();
    env_.checkpoints = std::make_shared<FileCheckpoints>((dir_ / "state").string());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Append(const std::string& text) {
    std::ofstream(dir_ / "in.log", std::ios::app | std::ios::binary) << text;
  }

  std::unique_ptr<Input> Make() {
    v1::Input c;
    c.mutable_file()->set_path("in.log");
    auto in = BuiltinRegistry().MakeInput(c, env_);
    EXPECT_TRUE(in.ok());
    EXPECT_TRUE((*in)->Begin().ok());
    return std::move(*in);
  }

  std::filesystem::path dir_;
};

TEST_F(FileInputTest, ResumesAfterARestartAtTheLastCompleteLine) {
  Append("old\n");
  std::vector<Record> out;
  {
    auto in = Make();  // starts at the end: "old" is not read
    Append("c\nd\npart");
    ASSERT_TRUE(in->Poll(&out).ok());
    clock_.Advance(milliseconds(1000));
    ASSERT_TRUE(in->Poll(&out).ok());  // "c" and "d" went through: saved
    EXPECT_THAT(Texts(out), ElementsAre("c", "d"));
    EXPECT_EQ(out[1].position.offset, 6u);
  }
  Append("ial\ne\n");  // written while the node was down
  out.clear();
  auto again = Make();
  ASSERT_TRUE(again->Poll(&out).ok());
  EXPECT_THAT(Texts(out), ElementsAre("partial", "e"));
}

TEST_F(FileInputTest, AFileReplacedWhileStoppedIsReadFromItsStart) {
  Append("a\n");
  {
    auto in = Make();
    std::vector<Record> out;
    ASSERT_TRUE(in->Poll(&out).ok());
  }
  std::filesystem::rename(dir_ / "in.log", dir_ / "in.log.1");
  Append("new 1\nnew 2\n");
  auto again = Make();
  std::vector<Record> out;
  ASSERT_TRUE(again->Poll(&out).ok());
  EXPECT_THAT(Texts(out), ElementsAre("new 1", "new 2"));
}

}  // namespace
}  // namespace cairn::edge::runtime
