#include "cairn/edge/log_shipper.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "fake_mqtt_client.h"
#include "test_util.h"

namespace cairn::edge {
namespace {

using cairn::testing::FakeBroker;
using cairn::testing::FakeMqttClient;
using testutil::FakeClock;
using namespace std::chrono_literals;

class LogShipperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_shared<FakeBroker>();
    client_ = std::make_unique<FakeMqttClient>(broker_, "node:demo:n1", "node:demo:n1");
    ASSERT_TRUE(client_->Connect().ok());
    options_.workspace = "demo";
    options_.node = "n1";
  }

  std::unique_ptr<LogShipper> Make() {
    return std::make_unique<LogShipper>(
        options_, [this](const MqttMessage& m) { return client_->Publish(m); }, clock_);
  }

  // Every NodeLogs published so far, decoded (the test fails on anything else).
  std::vector<v1::NodeLogs> Sent() {
    std::vector<v1::NodeLogs> out;
    for (const auto& m : broker_->Published()) {
      EXPECT_EQ(m.topic, "cairn/v1/ws/demo/nodes/n1/logs");
      EXPECT_EQ(m.content_type, "cairn.v1.NodeLogs");
      EXPECT_FALSE(m.retained);
      EXPECT_EQ(m.qos, 1);
      v1::NodeLogs logs;
      EXPECT_TRUE(logs.ParseFromString(m.payload));
      out.push_back(logs);
    }
    return out;
  }

  FakeClock clock_{1'000'000};
  std::shared_ptr<FakeBroker> broker_;
  std::unique_ptr<FakeMqttClient> client_;
  LogShipperOptions options_;
};

TEST_F(LogShipperTest, SendsWaitingLinesAsOneBatchWithTheirFields) {
  auto shipper = Make();
  shipper->Add(v1::LogLine::WARN, "", "link is slow");
  clock_.Advance(5ms);
  shipper->Add(v1::LogLine::ERROR, "p1", "cannot open out/x\n");
  EXPECT_TRUE(broker_->Published().empty()) << "nothing is sent before a tick";
  ASSERT_TRUE(shipper->Tick());
  auto sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  const auto& b = sent[0];
  EXPECT_EQ(b.seq(), 1u);
  EXPECT_EQ(b.timestamp_ms(), 1'000'005);
  EXPECT_EQ(b.dropped(), 0u);
  ASSERT_EQ(b.lines_size(), 2);
  EXPECT_EQ(b.lines(0).level(), v1::LogLine::WARN);
  EXPECT_EQ(b.lines(0).pipeline(), "");
  EXPECT_EQ(b.lines(0).text(), "link is slow");
  EXPECT_EQ(b.lines(0).timestamp_ms(), 1'000'000);
  EXPECT_EQ(b.lines(1).pipeline(), "p1");
  EXPECT_EQ(b.lines(1).text(), "cannot open out/x") << "the trailing newline is not part of the line";
  EXPECT_FALSE(shipper->Tick()) << "nothing left to send";
}

TEST_F(LogShipperTest, SendsAtMostOneMessagePerInterval) {
  auto shipper = Make();
  shipper->Add(v1::LogLine::WARN, "", "one");
  ASSERT_TRUE(shipper->Tick());
  shipper->Add(v1::LogLine::WARN, "", "two");
  clock_.Advance(999ms);
  EXPECT_FALSE(shipper->Tick());
  EXPECT_EQ(broker_->Published().size(), 1u);
  clock_.Advance(1ms);
  EXPECT_TRUE(shipper->Tick());
  auto sent = Sent();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1].seq(), 2u);
  ASSERT_EQ(sent[1].lines_size(), 1);
  EXPECT_EQ(sent[1].lines(0).text(), "two");
}

TEST_F(LogShipperTest, DropsAndCountsLinesOverTheRateLimit) {
  options_.lines_per_second = 10;
  options_.line_burst = 5;
  auto shipper = Make();
  for (int i = 0; i < 8; ++i) shipper->Add(v1::LogLine::WARN, "", "line " + std::to_string(i));
  ASSERT_TRUE(shipper->Tick());
  auto sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].lines_size(), 5) << "the burst";
  EXPECT_EQ(sent[0].lines(4).text(), "line 4");
  EXPECT_EQ(sent[0].dropped(), 3u);
  EXPECT_EQ(sent[0].dropped_total(), 3u);
  EXPECT_EQ(shipper->stats().dropped_rate, 3u);

  // One second refills 10 tokens, capped at the burst of 5.
  clock_.Advance(1s);
  for (int i = 0; i < 7; ++i) shipper->Add(v1::LogLine::WARN, "", "again " + std::to_string(i));
  ASSERT_TRUE(shipper->Tick());
  sent = Sent();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1].lines_size(), 5);
  EXPECT_EQ(sent[1].dropped(), 2u) << "drops since the previous message only";
  EXPECT_EQ(sent[1].dropped_total(), 5u);

  // 100 ms refill one token.
  clock_.Advance(100ms);
  shipper->Add(v1::LogLine::WARN, "", "a");
  shipper->Add(v1::LogLine::WARN, "", "b");
  EXPECT_EQ(shipper->stats().lines_accepted, 11u);
  EXPECT_EQ(shipper->stats().dropped_rate, 6u);
}

TEST_F(LogShipperTest, ReportsDropsEvenWhenNoLineIsLeft) {
  options_.line_burst = 1;
  options_.lines_per_second = 0.001;
  auto shipper = Make();
  shipper->Add(v1::LogLine::WARN, "", "kept");
  shipper->Add(v1::LogLine::WARN, "", "dropped");
  ASSERT_TRUE(shipper->Tick());
  clock_.Advance(1s);
  shipper->Add(v1::LogLine::WARN, "", "dropped too");
  ASSERT_TRUE(shipper->Tick());
  auto sent = Sent();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1].lines_size(), 0);
  EXPECT_EQ(sent[1].dropped(), 1u);
  EXPECT_EQ(sent[1].dropped_total(), 2u);
}

TEST_F(LogShipperTest, KeepsEveryMessageUnderTheBatchBound) {
  options_.max_batch_bytes = 8 * 1024;
  options_.max_line_bytes = 1000;
  options_.line_burst = 100;
  auto shipper = Make();
  for (int i = 0; i < 40; ++i) shipper->Add(v1::LogLine::ERROR, "p", std::string(1500, 'x'));
  size_t lines = 0;
  for (int i = 0; i < 10 && shipper->Tick(); ++i) clock_.Advance(1s);
  for (const auto& m : broker_->Published()) EXPECT_LE(m.payload.size(), 8u * 1024);
  for (const auto& b : Sent()) {
    for (const auto& l : b.lines()) {
      EXPECT_EQ(l.text().size(), 1000u);
      EXPECT_TRUE(l.truncated());
      ++lines;
    }
  }
  EXPECT_EQ(lines, 40u) << "what does not fit waits for the next message";
  EXPECT_GT(Sent().size(), 4u);
}

TEST_F(LogShipperTest, KeepsLinesWhileThePublishFailsAndSendsThemInOrderLater) {
  auto shipper = Make();
  shipper->Add(v1::LogLine::WARN, "", "first");
  client_->SetConnected(false);
  EXPECT_FALSE(shipper->Tick());
  EXPECT_EQ(shipper->stats().publish_failures, 1u);
  shipper->Add(v1::LogLine::WARN, "", "second");
  clock_.Advance(500ms);
  EXPECT_FALSE(shipper->Tick()) << "a failed attempt also counts for the interval";
  client_->SetConnected(true);
  clock_.Advance(500ms);
  ASSERT_TRUE(shipper->Tick());
  auto sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].seq(), 1u) << "a failed attempt uses no sequence number";
  ASSERT_EQ(sent[0].lines_size(), 2);
  EXPECT_EQ(sent[0].lines(0).text(), "first");
  EXPECT_EQ(sent[0].lines(1).text(), "second");
}

TEST_F(LogShipperTest, DropsTheOldestWhenTheBufferIsFull) {
  options_.max_batch_bytes = 4096;
  options_.max_buffered_bytes = 4096;
  options_.line_burst = 1000;
  auto shipper = Make();
  client_->SetConnected(false);
  for (int i = 0; i < 100; ++i) shipper->Add(v1::LogLine::WARN, "", "line " + std::to_string(i) + std::string(100, '.'));
  EXPECT_FALSE(shipper->Tick());
  auto st = shipper->stats();
  EXPECT_GT(st.dropped_buffer, 0u);
  EXPECT_EQ(st.buffered_lines + st.dropped_buffer, 100u);
  client_->SetConnected(true);
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(1s);
    if (!shipper->Tick()) break;
  }
  auto sent = Sent();
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent[0].dropped(), st.dropped_buffer);
  std::vector<std::string> got;
  for (const auto& b : sent) {
    for (const auto& l : b.lines()) got.push_back(l.text().substr(0, l.text().find('.')));
  }
  ASSERT_EQ(got.size(), st.buffered_lines);
  EXPECT_EQ(got.back(), "line 99") << "the newest are kept";
  EXPECT_EQ(got.front(), "line " + std::to_string(st.dropped_buffer)) << "the oldest are dropped";
}

TEST_F(LogShipperTest, DoesNotShipWhatIsLoggedWhilePublishing) {
  LogShipper* self = nullptr;
  int publishes = 0;
  LogShipper shipper(
      options_,
      [&](const MqttMessage& m) {
        ++publishes;
        // E.g. the MQTT client logging the failure of this very publish.
        self->Add(v1::LogLine::WARN, "", "publish failed");
        return client_->Publish(m);
      },
      clock_);
  self = &shipper;
  shipper.Add(v1::LogLine::WARN, "", "real");
  ASSERT_TRUE(shipper.Tick());
  clock_.Advance(1s);
  EXPECT_FALSE(shipper.Tick()) << "nothing was queued by the publish itself";
  EXPECT_EQ(publishes, 1);
  EXPECT_EQ(shipper.stats().lines_accepted, 1u);
}

TEST_F(LogShipperTest, TheSpdlogSinkShipsWarningsAndAttributesPipelineLines) {
  auto shipper = Make();
  auto sink = std::make_shared<LogShipperSink>(shipper.get());
  sink->set_level(spdlog::level::warn);
  spdlog::logger logger("test", sink);
  logger.set_level(spdlog::level::trace);
  logger.info("routine");
  logger.warn("pipeline p-2: input file missing");
  logger.error("broker refused: {}", "not authorized");
  ASSERT_TRUE(shipper->Tick());
  auto sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_EQ(sent[0].lines_size(), 2) << "info stays local";
  EXPECT_EQ(sent[0].lines(0).pipeline(), "p-2");
  EXPECT_EQ(sent[0].lines(0).level(), v1::LogLine::WARN);
  EXPECT_EQ(sent[0].lines(1).pipeline(), "");
  EXPECT_EQ(sent[0].lines(1).level(), v1::LogLine::ERROR);
  EXPECT_EQ(sent[0].lines(1).text(), "broker refused: not authorized");

  sink->Detach();
  logger.error("after detach");
  clock_.Advance(1s);
  EXPECT_FALSE(shipper->Tick());
}

TEST_F(LogShipperTest, StopSendsWhatIsWaitingAtOnce) {
  options_.tick_period = 1h;  // the thread would not tick by itself
  auto shipper = Make();
  shipper->Start();
  shipper->Add(v1::LogLine::ERROR, "", "last words");
  shipper->Stop();
  auto sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].lines(0).text(), "last words");
}

TEST_F(LogShipperTest, ItsIdleThreadWakesForANewLine) {
  options_.tick_period = 10ms;
  options_.idle_period = 1h;  // asleep until Add has news
  auto shipper = Make();
  shipper->Start();
  shipper->Add(v1::LogLine::ERROR, "", "soon");
  EXPECT_TRUE(testutil::WaitUntil([&] { return broker_->Published().size() == 1; }));
  shipper->Stop();
}

TEST_F(LogShipperTest, AccountsForEveryLineAddedFromManyThreads) {
  options_.tick_period = 1ms;
  options_.line_burst = 500;
  options_.lines_per_second = 0.001;
  auto shipper = Make();
  shipper->Start();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 250; ++i) {
        shipper->Add(v1::LogLine::WARN, "", "t" + std::to_string(t) + " " + std::to_string(i));
        if (i % 50 == 0) clock_.Advance(1s);
      }
    });
  }
  for (auto& th : threads) th.join();
  shipper->Stop();
  const auto st = shipper->stats();
  EXPECT_EQ(st.lines_accepted + st.dropped_rate, 1000u);
  uint64_t sent_lines = 0;
  for (const auto& b : Sent()) sent_lines += static_cast<uint64_t>(b.lines_size());
  EXPECT_EQ(sent_lines + st.buffered_lines, st.lines_accepted);
  EXPECT_EQ(sent_lines, st.lines_sent);
}

TEST(PipelineOfLogText, NamesThePipelineOnlyForAValidName) {
  EXPECT_EQ(PipelineOfLogText("pipeline web-1: x"), "web-1");
  EXPECT_EQ(PipelineOfLogText("pipeline web-1 v3 failed: x"), "web-1");
  EXPECT_EQ(PipelineOfLogText("pipeline Web: x"), "");
  EXPECT_EQ(PipelineOfLogText("pipelines are fine"), "");
  EXPECT_EQ(PipelineOfLogText("pipeline web"), "");
  EXPECT_EQ(PipelineOfLogText("the pipeline web: x"), "");
}

TEST(LogLineText, EscapesBytesThatAreNotUtf8AndCutsAtACharacterBoundary) {
  bool cut = true;
  EXPECT_EQ(LogLineText("ok \xff end", 100, &cut), "ok \\xFF end");
  EXPECT_FALSE(cut);
  EXPECT_EQ(LogLineText("h\xc3\xa9llo", 2, &cut), "h") << "é is not cut in half";
  EXPECT_TRUE(cut);
  EXPECT_EQ(LogLineText("abc\xff", 5, &cut), "abc");
  EXPECT_TRUE(cut);
  EXPECT_EQ(LogLineText("", 5, &cut), "");
  EXPECT_FALSE(cut);
}

}  // namespace
}  // namespace cairn::edge
