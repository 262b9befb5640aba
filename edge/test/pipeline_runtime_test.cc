#include "cairn/edge/pipeline_runtime.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace cairn::edge {
namespace {

namespace fs = std::filesystem;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using State = v1::PipelineHealth;

using testutil::ReadLines;
using testutil::WaitUntil;

void AppendText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::app | std::ios::binary);
  out << text;
}

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc | std::ios::binary);
  out << text;
}

v1::PipelineConfig GenerateConfig(const std::string& message, uint64_t count,
                                  uint32_t interval_ms = 10) {
  v1::PipelineConfig c;
  c.set_name("test-pipeline");
  c.set_workspace("demo");
  c.set_version(3);
  auto* g = c.mutable_spec()->mutable_input()->mutable_generate();
  g->set_message(message);
  g->set_count(count);
  g->set_interval_ms(interval_ms);
  return c;
}

v1::PipelineConfig FileTailConfig(const std::string& path, bool from_beginning = false) {
  v1::PipelineConfig c;
  c.set_name("tail");
  c.set_version(1);
  auto* f = c.mutable_spec()->mutable_input()->mutable_file();
  f->set_path(path);
  f->set_from_beginning(from_beginning);
  return c;
}

void AddFilter(v1::PipelineConfig* c, const std::string& contains, const std::string& regex = "",
               bool invert = false) {
  auto* f = c->mutable_spec()->add_processors()->mutable_filter();
  f->set_contains(contains);
  f->set_regex(regex);
  f->set_invert(invert);
}

void SetFileOutput(v1::PipelineConfig* c, const std::string& path) {
  c->mutable_spec()->mutable_output()->mutable_file()->set_path(path);
}

void SetMqttOutput(v1::PipelineConfig* c, const std::string& stream, uint32_t qos = 0) {
  auto* m = c->mutable_spec()->mutable_output()->mutable_mqtt();
  m->set_stream(stream);
  m->set_qos(qos);
}

class PipelineRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cairn-pipeline-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  PipelineContext Context() {
    PipelineContext ctx;
    ctx.workspace = "demo";
    ctx.node = "node-1";
    ctx.data_dir = dir_.string();
    return ctx;
  }

  std::unique_ptr<PipelineRunner> Make(const v1::PipelineConfig& config) {
    return Make(config, Context());
  }
  std::unique_ptr<PipelineRunner> Make(const v1::PipelineConfig& config, PipelineContext ctx) {
    auto runner = MakePipelineRunner(config, std::move(ctx));
    EXPECT_TRUE(runner.ok()) << (runner.ok() ? "" : runner.error().message);
    if (!runner.ok()) return nullptr;
    return std::move(runner).value();
  }

  fs::path dir_;
};

TEST_F(PipelineRuntimeTest, GenerateThroughFilterWritesMatchingRecordsToFile) {
  auto config = GenerateConfig("ERROR disk almost full", 5);
  AddFilter(&config, "ERROR", "disk .* full");
  SetFileOutput(&config, "out/errors.log");
  auto runner = Make(config);
  ASSERT_NE(runner, nullptr);
  runner->Start();

  const fs::path out = dir_ / "out/errors.log";
  ASSERT_TRUE(WaitUntil([&] { return ReadLines(out).size() == 5; }));
  EXPECT_THAT(ReadLines(out), Each(std::string("ERROR disk almost full")));
  auto h = runner->Health();
  EXPECT_EQ(h.name(), "test-pipeline");
  EXPECT_EQ(h.version(), 3u);
  EXPECT_EQ(h.state(), State::RUNNING);
  EXPECT_EQ(h.records_in(), 5u);
  EXPECT_EQ(h.records_out(), 5u);
  EXPECT_EQ(h.records_dropped(), 0u);
  EXPECT_EQ(h.errors(), 0u);
}

TEST_F(PipelineRuntimeTest, FilterDropsRecordsThatDoNotMatch) {
  auto config = GenerateConfig("INFO all good", 4);
  AddFilter(&config, "", "^ERROR");
  SetFileOutput(&config, "out.log");
  auto runner = Make(config);
  ASSERT_NE(runner, nullptr);
  runner->Start();

  ASSERT_TRUE(WaitUntil([&] { return runner->Health().records_dropped() == 4; }));
  EXPECT_EQ(runner->Health().records_out(), 0u);
  EXPECT_TRUE(fs::exists(dir_ / "out.log"));  // opened at start
  EXPECT_TRUE(ReadLines(dir_ / "out.log").empty());
}

TEST_F(PipelineRuntimeTest, FileInputThroughFilterKeepsOnlyMatchingLines) {
  const fs::path in = dir_ / "app.log";
  WriteText(in,
            "ERROR disk full\n"
            "INFO started\n"
            "ERROR net down\n"
            "WARN ERROR-ish\n"
            "ERROR disk slow\n");
  auto config = FileTailConfig("app.log", /*from_beginning=*/true);
  AddFilter(&config, "ERROR", "^ERROR (disk|net)");
  AddFilter(&config, "slow", "", /*invert=*/true);
  SetFileOutput(&config, "errors.log");
  auto runner = Make(config);
  ASSERT_NE(runner, nullptr);
  runner->Start();

  ASSERT_TRUE(WaitUntil([&] { return runner->Health().records_in() == 5; }));
  ASSERT_TRUE(WaitUntil([&] { return ReadLines(dir_ / "errors.log").size() == 2; }));
  EXPECT_THAT(ReadLines(dir_ / "errors.log"), ElementsAre("ERROR disk full", "ERROR net down"));
  EXPECT_EQ(runner->Health().records_dropped(), 3u);
}

TEST_F(PipelineRuntimeTest, InvertedFilterKeepsRecordsThatDoNotMatch) {
  auto keep_config = GenerateConfig("debug: cache warm", 3);
  AddFilter(&keep_config, "ERROR", "", /*invert=*/true);
  SetFileOutput(&keep_config, "kept.log");
  auto drop_config = GenerateConfig("debug: cache warm", 3);
  AddFilter(&drop_config, "", "^debug:", /*invert=*/true);
  SetFileOutput(&drop_config, "dropped.log");
  auto keep = Make(keep_config);
  auto drop = Make(drop_config);
  ASSERT_NE(keep, nullptr);
  ASSERT_NE(drop, nullptr);
  keep->Start();
  drop->Start();

  ASSERT_TRUE(WaitUntil([&] { return ReadLines(dir_ / "kept.log").size() == 3; }));
  ASSERT_TRUE(WaitUntil([&] { return drop->Health().records_dropped() == 3; }));
  EXPECT_EQ(drop->Health().records_out(), 0u);
  EXPECT_EQ(keep->Health().records_dropped(), 0u);
}

TEST_F(PipelineRuntimeTest, GenerateStopsEmittingAfterCountButKeepsRunning) {
  auto limited_config = GenerateConfig("tick", 3);
  SetFileOutput(&limited_config, "limited.log");
  // An unlimited pipeline at the same interval serves as the time yardstick.
  auto yardstick_config = GenerateConfig("tock", 0);
  SetFileOutput(&yardstick_config, "yardstick.log");
  auto limited = Make(limited_config);
  auto yardstick = Make(yardstick_config);
  ASSERT_NE(limited, nullptr);
  ASSERT_NE(yardstick, nullptr);
  limited->Start();
  yardstick->Start();

  ASSERT_TRUE(WaitUntil([&] { return limited->Health().records_out() == 3; }));
  const uint64_t base = yardstick->Health().records_in();
  // Ten more intervals pass...
  ASSERT_TRUE(WaitUntil([&] { return yardstick->Health().records_in() >= base + 10; }));
  // ...and the limited pipeline emitted nothing more.
  EXPECT_EQ(limited->Health().records_in(), 3u);
  EXPECT_EQ(ReadLines(dir_ / "limited.log").size(), 3u);
  EXPECT_EQ(limited->Health().state(), State::RUNNING);
}

TEST_F(PipelineRuntimeTest, FileInputTailsAppendedLinesFromTheEnd) {
  const fs::path in = dir_ / "app.log";
  WriteText(in, "before start\n");
  auto config = FileTailConfig(in.string());  // absolute path
  SetFileOutput(&config, "copy.log");
  auto runner = Make(config);
  ASSERT_NE(runner, nullptr);
  runner->Start();

  AppendText(in, "first\nsecond\nthird without newline");
  ASSERT_TRUE(WaitUntil([&] { return ReadLines(dir_ / "copy.log").size() == 2; }));
  EXPECT_THAT(ReadLines(dir_ / "copy.log"), ElementsAre("first", "second"));
  AppendText(in, ", finished\r\n");
  ASSERT_TRUE(WaitUntil([&] { return ReadLines(dir_ / "copy.log").size() == 3; }));
  EXPECT_EQ(ReadLines(dir_ / "copy.log").back(), "third without newline, finished");
}

TEST_F(PipelineRuntimeTest, FileInputSurvivesTruncationAndRotation) {
  const fs::path in = dir_ / "app.log";
  WriteText(in, "");
  auto config = FileTailConfig("app.log");
  SetFileOutput(&config, "copy.log");
  auto runner = Make(config);
  ASSERT_NE(runner, nullptr);
  runner->Start();
  const fs::path copy = dir_ / "copy.log";

  AppendText(in, "line one\nline two\n");
  ASSERT_TRUE(WaitUntil([&] { return ReadLines(copy).size() == 2; }));

  // Truncation (copytruncate): shorter than what was read, so it is noticed.
  WriteText(in, "t1\n");
  ASSERT_TRUE(WaitUntil([&] { return ReadLines(copy).size() == 3; }));
  EXPECT_EQ(ReadLines(copy).back(), "t1");

  // Rotation: rename, the writer finishes the old file, a new one appears.
  fs::rename(in, dir_ / "app.log.1");
  AppendText(dir_ / "app.log.1", "last of old\n");
  WriteText(in, "first of new\n");
  ASSERT_TRUE(WaitUntil([&] { return ReadLines(copy).size() == 5; }));
  EXPECT_THAT(ReadLines(copy),
              ElementsAre("line one", "line two", "t1", "last of old", "first of new"));
  AppendText(in, "second of new\n");
  ASSERT_TRUE(WaitUntil([&] { return ReadLines(copy).size() == 6; }));
  EXPECT_EQ(ReadLines(copy).back(), "second of new");
  EXPECT_EQ(runner->Health().state(), State::RUNNING);
  EXPECT_EQ(runner->Health().errors(), 0u);
}

TEST_F(PipelineRuntimeTest, MissingInputFileIsAwaitedWhileRunning) {
  auto config = FileTailConfig("later/app.log");
  SetFileOutput(&config, "copy.log");
  auto runner = Make(config);
  ASSERT_NE(runner, nullptr);
  runner->Start();

  ASSERT_TRUE(WaitUntil([&] { return !runner->Health().last_error().empty(); }));
  EXPECT_THAT(runner->Health().last_error(), HasSubstr("waiting for file"));
  EXPECT_EQ(runner->Health().state(), State::RUNNING);

  // A file that appears after Start() is new: it is read from its start.
  fs::create_directories(dir_ / "later");
  WriteText(dir_ / "later/app.log", "hello\n");
  ASSERT_TRUE(WaitUntil([&] { return ReadLines(dir_ / "copy.log").size() == 1; }));
  EXPECT_EQ(ReadLines(dir_ / "copy.log")[0], "hello");
  EXPECT_EQ(runner->Health().last_error(), "");
}

class Recorder {
 public:
  Status Publish(const std::string& stream, const std::string& payload, int qos) {
    std::lock_guard lock(mu_);
    calls_.emplace_back(stream, payload, qos);
    if (fail_) return Error::Unavailable("link down");
    return OkStatus();
  }
  std::vector<std::tuple<std::string, std::string, int>> Calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  void set_fail(bool fail) {
    std::lock_guard lock(mu_);
    fail_ = fail;
  }

 private:
  mutable std::mutex mu_;
  bool fail_ = false;
  std::vector<std::tuple<std::string, std::string, int>> calls_;
};

TEST_F(PipelineRuntimeTest, MqttOutputPublishesRecordsToTheStream) {
  Recorder recorder;
  auto ctx = Context();
  ctx.publish = [&](const std::string& s, const std::string& p, int q) {
    return recorder.Publish(s, p, q);
  };
  auto config = GenerateConfig("temp=21.5", 3);
  SetMqttOutput(&config, "sensors", 1);
  auto runner = Make(config, ctx);
  ASSERT_NE(runner, nullptr);
  runner->Start();

  ASSERT_TRUE(WaitUntil([&] { return runner->Health().records_out() == 3; }));
  using Call = std::tuple<std::string, std::string, int>;
  const Call expected{"sensors", "temp=21.5", 1};
  EXPECT_THAT(recorder.Calls(), ElementsAre(expected, expected, expected));
  EXPECT_EQ(runner->Health().errors(), 0u);
}

TEST_F(PipelineRuntimeTest, MqttPublishFailuresAreCountedAndDoNotStopThePipeline) {
  Recorder recorder;
  recorder.set_fail(true);
  auto ctx = Context();
  ctx.publish = [&](const std::string& s, const std::string& p, int q) {
    return recorder.Publish(s, p, q);
  };
  auto config = GenerateConfig("temp=21.5", 0);
  SetMqttOutput(&config, "sensors");
  auto runner = Make(config, ctx);
  ASSERT_NE(runner, nullptr);
  runner->Start();

  ASSERT_TRUE(WaitUntil([&] { return runner->Health().errors() >= 3; }));
  auto h = runner->Health();
  EXPECT_EQ(h.state(), State::RUNNING);
  EXPECT_THAT(h.last_error(), HasSubstr("link down"));
  EXPECT_GE(h.records_dropped(), 3u);
  EXPECT_EQ(h.records_out(), 0u);

  // The link comes back: records flow again.
  recorder.set_fail(false);
  ASSERT_TRUE(WaitUntil([&] { return runner->Health().records_out() >= 2; }));
  runner->Stop();
  h = runner->Health();
  EXPECT_EQ(h.records_in(), h.records_out() + h.records_dropped());
  EXPECT_EQ(h.errors(), h.records_dropped());
}

TEST_F(PipelineRuntimeTest, StdoutOutputPrintsRecords) {
  auto config = GenerateConfig("to the console", 2);
  config.mutable_spec()->mutable_output()->mutable_stdout();
  auto runner = Make(config);
  ASSERT_NE(runner, nullptr);
  ::testing::internal::CaptureStdout();
  runner->Start();
  const bool done = WaitUntil([&] { return runner->Health().records_out() == 2; });
  runner->Stop();
  const std::string printed = ::testing::internal::GetCapturedStdout();
  ASSERT_TRUE(done);
  EXPECT_EQ(printed, "to the console\nto the console\n");
}

struct InvalidSpecCase {
  std::string name;
  std::function<void(v1::PipelineConfig*)> mutate;
  std::string expected_message;
};

TEST_F(PipelineRuntimeTest, InvalidSpecsAreRejected) {
  auto ctx = Context();
  ctx.publish = [](const std::string&, const std::string&, int) { return OkStatus(); };
  const std::vector<InvalidSpecCase> cases = {
      {"bad regex", [](auto* c) { AddFilter(c, "", "(unclosed"); }, "regex"},
      {"no input", [](auto* c) { c->mutable_spec()->clear_input(); }, "input"},
      {"empty input", [](auto* c) { c->mutable_spec()->mutable_input()->Clear(); }, "input"},
      {"no output", [](auto* c) { c->mutable_spec()->clear_output(); }, "output"},
      {"empty processor", [](auto* c) { c->mutable_spec()->add_processors(); }, "processors[0]"},
      {"interval too short",
       [](auto* c) { c->mutable_spec()->mutable_input()->mutable_generate()->set_interval_ms(5); },
       "interval"},
      {"dot-dot escape", [](auto* c) { SetFileOutput(c, "../outside.log"); }, "leaves the data directory"},
      {"hidden dot-dot escape", [](auto* c) { SetFileOutput(c, "out/../../outside.log"); },
       "leaves the data directory"},
      {"empty output path", [](auto* c) { SetFileOutput(c, ""); }, "empty"},
      {"output path names a directory", [](auto* c) { SetFileOutput(c, "out/.."); },
       "does not name a file"},
      {"input escape",
       [](auto* c) { c->mutable_spec()->mutable_input()->mutable_file()->set_path("../x.log"); },
       "leaves the data directory"},
      {"empty input path",
       [](auto* c) { c->mutable_spec()->mutable_input()->mutable_file()->set_path(""); }, "empty"},
      {"input is output",
       [](auto* c) {
         c->mutable_spec()->mutable_input()->mutable_file()->set_path("same.log");
         SetFileOutput(c, "./same.log");
       },
       "input file"},
      {"upper-case stream", [](auto* c) { SetMqttOutput(c, "Sensors"); }, "stream"},
      {"stream with slash", [](auto* c) { SetMqttOutput(c, "a/b"); }, "stream"},
      {"stream with wildcard", [](auto* c) { SetMqttOutput(c, "a+"); }, "stream"},
      {"empty stream", [](auto* c) { SetMqttOutput(c, ""); }, "stream"},
      {"stream too long", [](auto* c) { SetMqttOutput(c, std::string(64, 'a')); }, "stream"},
      {"stream with leading dash", [](auto* c) { SetMqttOutput(c, "-a"); }, "stream"},
      {"qos 3", [](auto* c) { SetMqttOutput(c, "ok", 3); }, "qos"},
      // The control plane and the node agree: one validator, same message.
      {"empty filter", [](auto* c) { AddFilter(c, ""); },
       "pipeline.processors[0].filter: needs one of contains, regex, field"},
      {"sample of none", [](auto* c) { c->mutable_spec()->add_processors()->mutable_sample(); },
       "pipeline.processors[0].sample.one_in: must be at least 1"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    auto config = GenerateConfig("x", 0);
    SetFileOutput(&config, "out.log");
    tc.mutate(&config);
    auto runner = MakePipelineRunner(config, ctx);
    ASSERT_FALSE(runner.ok());
    EXPECT_EQ(runner.error().code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(runner.error().message, HasSubstr(tc.expected_message));
    EXPECT_THAT(runner.error().message, HasSubstr("test-pipeline"));
  }
}

TEST_F(PipelineRuntimeTest, ValidEdgeCasesAreAccepted) {
  auto ctx = Context();
  ctx.publish = [](const std::string&, const std::string&, int) { return OkStatus(); };
  const std::vector<std::pair<std::string, std::function<void(v1::PipelineConfig*)>>> cases = {
      {"default interval",
       [](auto* c) { c->mutable_spec()->mutable_input()->mutable_generate()->set_interval_ms(0); }},
      {"minimum interval",
       [](auto* c) {
         c->mutable_spec()->mutable_input()->mutable_generate()->set_interval_ms(10);
       }},
      {"dot-dot that stays inside", [](auto* c) { SetFileOutput(c, "a/../b.log"); }},
      {"absolute path", [](auto* c) { SetFileOutput(c, "/var/log/cairn/out.log"); }},
      {"longest stream", [](auto* c) { SetMqttOutput(c, std::string(63, 'a'), 2); }},
      {"stream with dashes and digits", [](auto* c) { SetMqttOutput(c, "room-1-temp"); }},
  };
  for (const auto& [name, mutate] : cases) {
    SCOPED_TRACE(name);
    auto config = GenerateConfig("x", 0);
    SetFileOutput(&config, "out.log");
    mutate(&config);
    auto runner = MakePipelineRunner(config, ctx);
    EXPECT_TRUE(runner.ok()) << (runner.ok() ? "" : runner.error().message);
  }
}

TEST_F(PipelineRuntimeTest, MqttOutputWithoutPublishFunctionIsRejected) {
  auto config = GenerateConfig("x", 0);
  SetMqttOutput(&config, "sensors");
  auto runner = MakePipelineRunner(config, Context());
  ASSERT_FALSE(runner.ok());
  EXPECT_THAT(runner.error().message, HasSubstr("publish"));
}

TEST_F(PipelineRuntimeTest, OutputThatIsADirectoryFailsThePipeline) {
  fs::create_directories(dir_ / "a-directory");
  auto config = GenerateConfig("x", 0);
  SetFileOutput(&config, "a-directory");
  auto runner = Make(config);
  ASSERT_NE(runner, nullptr);
  runner->Start();

  ASSERT_TRUE(WaitUntil([&] { return runner->Health().state() == State::FAILED; }));
  auto h = runner->Health();
  EXPECT_THAT(h.last_error(), HasSubstr("a-directory"));
  EXPECT_EQ(h.records_out(), 0u);
  EXPECT_GE(h.errors(), 1u);
  runner->Stop();
  EXPECT_EQ(runner->Health().state(), State::FAILED);  // Stop() keeps the reason visible
}

TEST_F(PipelineRuntimeTest, StopIsPromptAndLeavesTheRunnerStopped) {
  // A generator with a long interval and a file tail: both are asleep when
  // Stop() comes.
  auto slow_config = GenerateConfig("slow", 0, 60'000);
  SetFileOutput(&slow_config, "slow.log");
  WriteText(dir_ / "in.log", "");
  auto tail_config = FileTailConfig("in.log");
  SetFileOutput(&tail_config, "tail.log");
  for (const auto& config : {slow_config, tail_config}) {
    SCOPED_TRACE(config.name());
    auto runner = Make(config);
    ASSERT_NE(runner, nullptr);
    EXPECT_EQ(runner->Health().state(), State::STOPPED);
    runner->Start();
    runner->Start();  // idempotent
    EXPECT_EQ(runner->Health().state(), State::RUNNING);
    if (config.spec().input().has_generate()) {
      ASSERT_TRUE(WaitUntil([&] { return runner->Health().records_out() == 1; }));
    }

    const auto begin = std::chrono::steady_clock::now();
    runner->Stop();
    const auto took = std::chrono::steady_clock::now() - begin;
    EXPECT_LT(took, std::chrono::milliseconds(500));
    EXPECT_EQ(runner->Health().state(), State::STOPPED);
    runner->Stop();  // idempotent
    EXPECT_EQ(runner->Health().state(), State::STOPPED);
  }
}

TEST_F(PipelineRuntimeTest, StoppedRunnerCanBeStartedAgain) {
  auto config = GenerateConfig("again", 4);
  SetFileOutput(&config, "again.log");
  auto runner = Make(config);
  ASSERT_NE(runner, nullptr);
  runner->Start();
  ASSERT_TRUE(WaitUntil([&] { return runner->Health().records_out() >= 1; }));
  runner->Stop();
  runner->Start();
  ASSERT_TRUE(WaitUntil([&] { return runner->Health().records_out() == 4; }));
  EXPECT_EQ(ReadLines(dir_ / "again.log").size(), 4u);
}

TEST_F(PipelineRuntimeTest, RunnersAreIndependent) {
  auto a_config = GenerateConfig("from a", 0);
  SetFileOutput(&a_config, "a.log");
  auto b_config = GenerateConfig("from b", 0);
  SetFileOutput(&b_config, "b.log");
  auto a = Make(a_config);
  auto b = Make(b_config);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  a->Start();
  b->Start();
  ASSERT_TRUE(WaitUntil([&] { return a->Health().records_out() >= 2; }));
  ASSERT_TRUE(WaitUntil([&] { return b->Health().records_out() >= 2; }));

  a->Stop();
  const uint64_t a_count = a->Health().records_out();
  const uint64_t b_count = b->Health().records_out();
  ASSERT_TRUE(WaitUntil([&] { return b->Health().records_out() >= b_count + 5; }));
  EXPECT_EQ(a->Health().records_out(), a_count);
  EXPECT_EQ(a->Health().state(), State::STOPPED);
  EXPECT_EQ(b->Health().state(), State::RUNNING);
  EXPECT_THAT(ReadLines(dir_ / "a.log"), Each(std::string("from a")));
  EXPECT_THAT(ReadLines(dir_ / "b.log"), Each(std::string("from b")));
}

TEST_F(PipelineRuntimeTest, DestroyingARunningRunnerStopsIt) {
  auto config = GenerateConfig("bye", 0);
  SetFileOutput(&config, "bye.log");
  auto runner = Make(config);
  ASSERT_NE(runner, nullptr);
  runner->Start();
  ASSERT_TRUE(WaitUntil([&] { return ReadLines(dir_ / "bye.log").size() >= 1; }));
  runner.reset();
  const size_t lines = ReadLines(dir_ / "bye.log").size();
  // Nothing writes after destruction; a second pipeline provides the time.
  auto yardstick_config = GenerateConfig("tock", 0);
  SetFileOutput(&yardstick_config, "yardstick.log");
  auto yardstick = Make(yardstick_config);
  ASSERT_NE(yardstick, nullptr);
  yardstick->Start();
  ASSERT_TRUE(WaitUntil([&] { return yardstick->Health().records_out() >= 5; }));
  EXPECT_EQ(ReadLines(dir_ / "bye.log").size(), lines);
}

TEST_F(PipelineRuntimeTest, GenerateByRateThroughBatchDeliversEveryRecord) {
  auto config = GenerateConfig("r", 20'000);
  auto* g = config.mutable_spec()->mutable_input()->mutable_generate();
  g->set_interval_ms(0);
  g->set_rate(20'000);
  auto* b = config.mutable_spec()->add_processors()->mutable_batch();
  b->set_max_records(1000);
  b->set_format("lines");
  SetFileOutput(&config, "rate.log");
  auto runner = Make(config);
  ASSERT_NE(runner, nullptr);
  runner->Start();
  ASSERT_TRUE(WaitUntil([&] { return runner->Health().records_out() == 20; },
                        std::chrono::seconds(30)));
  auto h = runner->Health();
  EXPECT_EQ(h.records_in(), 20'000u);
  EXPECT_EQ(h.records_dropped(), 0u);
  EXPECT_EQ(ReadLines(dir_ / "rate.log").size(), 20'000u);
}

TEST_F(PipelineRuntimeTest, StopFlushesAHeldBatchToTheOutput) {
  auto config = GenerateConfig("held", 3);
  auto* b = config.mutable_spec()->add_processors()->mutable_batch();
  b->set_max_wait_ms(3'600'000);
  SetFileOutput(&config, "held.log");
  auto runner = Make(config);
  ASSERT_NE(runner, nullptr);
  runner->Start();
  ASSERT_TRUE(WaitUntil([&] { return runner->Health().records_in() == 3; }));
  EXPECT_EQ(runner->Health().records_out(), 0u);
  runner->Stop();
  EXPECT_THAT(ReadLines(dir_ / "held.log"), ElementsAre(R"(["held","held","held"])"));
  EXPECT_EQ(runner->Health().records_out(), 1u);
}

TEST_F(PipelineRuntimeTest, StructuredRecordsGetFieldsAndCountParseErrors) {
  WriteText(dir_ / "in.json", "");
  auto config = FileTailConfig("in.json");
  auto* spec = config.mutable_spec();
  spec->add_processors()->mutable_parse_json();
  auto* set = spec->add_processors()->mutable_set();
  set->set_node_field("node");
  set->set_labels_field("labels");
  spec->add_processors()->mutable_drop()->add_fields("secret");
  SetFileOutput(&config, "out.json");
  auto ctx = Context();
  std::mutex mu;
  Labels labels{{"site", "lyon"}};
  ctx.current_labels = [&] {
    std::lock_guard lock(mu);
    return labels;
  };
  auto runner = Make(config, ctx);
  ASSERT_NE(runner, nullptr);
  runner->Start();
  AppendText(dir_ / "in.json", "{\"t\": 20, \"secret\": \"x\"}\nnot json\n");
  ASSERT_TRUE(WaitUntil([&] { return runner->Health().records_in() == 2; }));
  {
    std::lock_guard lock(mu);
    labels["site"] = "paris";
  }
  AppendText(dir_ / "in.json", "{\"t\": 21}\n");
  ASSERT_TRUE(WaitUntil([&] { return runner->Health().records_out() == 2; }));
  runner->Stop();
  EXPECT_THAT(ReadLines(dir_ / "out.json"),
              ElementsAre(R"({"t":20,"node":"node-1","labels":{"site":"lyon"}})",
                          R"({"t":21,"node":"node-1","labels":{"site":"paris"}})"));
  auto h = runner->Health();
  EXPECT_EQ(h.records_dropped(), 1u);
  EXPECT_EQ(h.errors(), 1u);
  EXPECT_THAT(h.last_error(), HasSubstr("parse_json: not JSON"));
}

// An output whose sink can be "down": it then refuses records (kRetry).
struct FlakySink {
  std::mutex mu;
  bool down = true;
  std::string why = "sink down";  // empty: busy (backpressure), not failing
  int refusals = 0;
  std::vector<uint64_t> accepted;  // the records' source offsets, in order
};

class FlakyOutput final : public runtime::Output {
 public:
  explicit FlakyOutput(std::shared_ptr<FlakySink> sink) : sink_(std::move(sink)) {}
  runtime::WriteResult Write(const runtime::Record& r) override {
    std::lock_guard lock(sink_->mu);
    if (sink_->down) {
      ++sink_->refusals;
      return {runtime::WriteResult::Kind::kRetry, sink_->why, std::chrono::milliseconds(5)};
    }
    sink_->accepted.push_back(r.position.offset);
    return {};
  }

 private:
  std::shared_ptr<FlakySink> sink_;
};

// Runs 50 generated records into a FlakyOutput that refuses them (with
// `why`) until released; `health` is the runner's at the end.
void RunThroughARefusingSink(PipelineContext context, const std::string& why, v1::PipelineHealth* health) {
  auto sink = std::make_shared<FlakySink>();
  sink->why = why;
  runtime::ComponentRegistry registry;
  ASSERT_TRUE(registry
                  .AddInput("generate",
                            [](const google::protobuf::Message& m, const std::string&,
                               const runtime::Env& env) {
                              v1::Input i;
                              i.mutable_generate()->CopyFrom(m);
                              return runtime::BuiltinRegistry().MakeInput(i, env);
                            })
                  .ok());
  ASSERT_TRUE(registry
                  .AddOutput("stdout",
                             [sink](const google::protobuf::Message&, const std::string&,
                                    const runtime::Env&) -> Result<std::unique_ptr<runtime::Output>> {
                               return std::unique_ptr<runtime::Output>(std::make_unique<FlakyOutput>(sink));
                             })
                  .ok());
  auto config = GenerateConfig("x", 50, 10);
  config.mutable_spec()->mutable_output()->mutable_stdout();
  auto made = MakePipelineRunner(config, std::move(context), registry);
  ASSERT_TRUE(made.ok()) << made.error().message;
  auto runner = std::move(*made);
  runner->Start();
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard lock(sink->mu);
    return sink->refusals >= 10;
  }));
  // Ten refusals (50 ms) later the input has not been read past the refused
  // record: the pipeline waits for its sink.
  EXPECT_EQ(runner->Health().records_in(), 1u);
  EXPECT_EQ(runner->Health().state(), State::RUNNING);
  EXPECT_EQ(runner->Health().last_error(), why);
  {
    std::lock_guard lock(sink->mu);
    sink->down = false;
  }
  ASSERT_TRUE(WaitUntil([&] { return runner->Health().records_out() == 50; }));
  runner->Stop();
  std::vector<uint64_t> expected;
  for (uint64_t i = 0; i < 50; ++i) expected.push_back(i);
  std::lock_guard lock(sink->mu);
  EXPECT_EQ(sink->accepted, expected);
  EXPECT_EQ(runner->Health().records_dropped(), 0u);
  *health = runner->Health();
}

TEST_F(PipelineRuntimeTest, AFailingOutputPausesTheInputAndLosesNothing) {
  v1::PipelineHealth h;
  RunThroughARefusingSink(Context(), "sink down", &h);
  EXPECT_GE(h.errors(), 10u);  // each refusal of a failing sink is an error
}

TEST_F(PipelineRuntimeTest, ABusyOutputPausesTheInputWithoutCountingErrors) {
  v1::PipelineHealth h;
  RunThroughARefusingSink(Context(), "", &h);
  EXPECT_EQ(h.errors(), 0u);
  EXPECT_EQ(h.last_error(), "");
}

TEST_F(PipelineRuntimeTest, AKindThisNodeDoesNotKnowIsRefusedWithItsPath) {
  runtime::ComponentRegistry without_file;  // a node built without the file output
  ASSERT_TRUE(without_file
                  .AddInput("generate",
                            [](const google::protobuf::Message& m, const std::string&,
                               const runtime::Env& env) {
                              v1::Input i;
                              i.mutable_generate()->CopyFrom(m);
                              return runtime::BuiltinRegistry().MakeInput(i, env);
                            })
                  .ok());
  auto config = GenerateConfig("x", 1);
  SetFileOutput(&config, "x.log");
  auto runner = MakePipelineRunner(config, Context(), without_file);
  ASSERT_FALSE(runner.ok());
  EXPECT_EQ(runner.error().message,
            "pipeline \"test-pipeline\": pipeline.output.file: kind not supported by this node");
}

}  // namespace
}  // namespace cairn::edge
