// The `mqtt` input with the node's StreamSubscriptions over a FakeMqttClient:
// plain payloads and a node's batch payloads become records, only the
// workspace's stream is read, the buffer is bounded with drops counted, and
// stopping unsubscribes.
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/common/pipeline_spec.h"
#include "fake_mqtt_client.h"
#include "cairn/edge/pipeline_runtime.h"
#include "cairn/edge/record_batch.h"
#include "cairn/edge/runtime/registry.h"
#include "cairn/edge/runtime/stream_subscriptions.h"
#include "cairn/edge/standalone.h"
#include "test_util.h"

namespace cairn::edge {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testutil::ReadLines;
using testutil::WaitUntil;

constexpr char kTopic[] = "cairn/v1/ws/demo/data/readings";

MqttMessage Plain(const std::string& topic, const std::string& payload) {
  MqttMessage m;
  m.topic = topic;
  m.payload = payload;
  m.content_type = "text/plain";
  return m;
}

MqttMessage Batch(const std::vector<std::pair<uint64_t, std::string>>& records) {
  MqttMessage m;
  m.topic = kTopic;
  for (const auto& [seq, r] : records) AppendToBatch(m.payload, seq, r);
  m.content_type = kRecordBatchContentType;
  return m;
}

class MqttInputTest : public ::testing::Test {
 protected:
  MqttInputTest() : client_(broker_, "node") {
    EXPECT_TRUE(client_.Connect().ok());
    client_.SetMessageHandler([this](const MqttMessage& m) { streams_.OnMessage(m); });
    std::string tmpl = (fs::temp_directory_path() / "cairn-mqtt-in-XXXXXX").string();
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  ~MqttInputTest() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Publish(const MqttMessage& m) { broker_->Publish(m, "node:demo/other"); }

  std::shared_ptr<cairn::testing::FakeBroker> broker_ = std::make_shared<cairn::testing::FakeBroker>();
  cairn::testing::FakeMqttClient client_;
  runtime::StreamSubscriptions streams_{client_, "demo"};
  fs::path dir_;
};

TEST_F(MqttInputTest, PlainPayloadsAreOneRecordAndBatchesAreSplitIntoTheirRecords) {
  v1::PipelineConfig c;
  c.set_name("from-stream");
  c.mutable_spec()->mutable_input()->mutable_mqtt()->set_stream("readings");
  c.mutable_spec()->mutable_output()->mutable_file()->set_path("out.log");
  PipelineContext ctx;
  ctx.workspace = "demo";
  ctx.data_dir = dir_.string();
  ctx.subscribe = streams_.Fn();
  auto runner = MakePipelineRunner(c, std::move(ctx));
  ASSERT_TRUE(runner.ok()) << runner.error().message;
  (*runner)->Start();
  ASSERT_TRUE(WaitUntil([&] { return client_.Wants(kTopic); }));
  Publish(Plain(kTopic, "one"));
  Publish(Batch({{7, "two"}, {8, "three\nwith a newline"}, {9, "four"}}));
  Publish(Plain("cairn/v1/ws/demo/data/other-stream", "not mine"));
  Publish(Plain("cairn/v1/ws/elsewhere/data/readings", "another workspace"));
  ASSERT_TRUE(WaitUntil([&] { return (*runner)->Health().records_out() == 4; }));
  (*runner)->Stop();
  EXPECT_THAT(ReadLines(dir_ / "out.log"), ElementsAre("one", "two", "three", "with a newline", "four"));
  EXPECT_FALSE(client_.Wants(kTopic)) << "stopping the pipeline unsubscribes";
  EXPECT_EQ((*runner)->Health().records_in(), 4u);
  EXPECT_EQ((*runner)->Health().records_dropped(), 0u);
}

TEST_F(MqttInputTest, AFullBufferDropsTheOldestRecordsAndCountsThem) {
  runtime::Env env;
  env.subscribe = streams_.Fn();
  v1::Input c;
  c.mutable_mqtt()->set_stream("readings");
  c.mutable_mqtt()->set_buffer(3);
  auto input = runtime::BuiltinRegistry().MakeInput(c, env);
  ASSERT_TRUE(input.ok()) << input.error().message;
  std::vector<runtime::Record> out;
  ASSERT_TRUE((*input)->Poll(&out).ok());  // subscribes
  EXPECT_TRUE(out.empty());
  for (int i = 1; i <= 5; ++i) Publish(Plain(kTopic, "r" + std::to_string(i)));
  ASSERT_TRUE((*input)->Poll(&out).ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].body, "r3");
  EXPECT_EQ(out[2].body, "r5");
  EXPECT_EQ(out[0].position.source, "mqtt:readings");
  EXPECT_EQ((*input)->TakeDropped(), 2u);
  EXPECT_EQ((*input)->TakeDropped(), 0u);
}

TEST_F(MqttInputTest, AnUnreadableBatchIsDroppedAndCounted) {
  runtime::Env env;
  env.subscribe = streams_.Fn();
  v1::Input c;
  c.mutable_mqtt()->set_stream("readings");
  auto input = runtime::BuiltinRegistry().MakeInput(c, env);
  ASSERT_TRUE(input.ok());
  std::vector<runtime::Record> out;
  ASSERT_TRUE((*input)->Poll(&out).ok());
  MqttMessage bad = Plain(kTopic, "12 999\nshort");
  bad.content_type = kRecordBatchContentType;
  Publish(bad);
  ASSERT_TRUE((*input)->Poll(&out).ok());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ((*input)->TakeDropped(), 1u);
}

TEST_F(MqttInputTest, TwoInputsOnOneStreamBothGetEveryRecordAndTheLastOneOutUnsubscribes) {
  runtime::Env env;
  env.subscribe = streams_.Fn();
  v1::Input c;
  c.mutable_mqtt()->set_stream("readings");
  auto a = runtime::BuiltinRegistry().MakeInput(c, env);
  auto b = runtime::BuiltinRegistry().MakeInput(c, env);
  std::vector<runtime::Record> out_a, out_b;
  ASSERT_TRUE((*a)->Poll(&out_a).ok());
  ASSERT_TRUE((*b)->Poll(&out_b).ok());
  Publish(Plain(kTopic, "x"));
  ASSERT_TRUE((*a)->Poll(&out_a).ok());
  ASSERT_TRUE((*b)->Poll(&out_b).ok());
  EXPECT_EQ(out_a.size(), 1u);
  EXPECT_EQ(out_b.size(), 1u);
  (*a)->End();
  EXPECT_TRUE(client_.Wants(kTopic));
  (*b)->End();
  EXPECT_FALSE(client_.Wants(kTopic));
}

TEST(MqttInputRules, ANodeWithoutABrokerLinkOrAStreamReadingItselfIsRefused) {
  runtime::Env env;  // no subscribe function
  v1::Input c;
  c.mutable_mqtt()->set_stream("readings");
  auto input = runtime::BuiltinRegistry().MakeInput(c, env);
  ASSERT_FALSE(input.ok());
  EXPECT_EQ(input.error().message, "input.mqtt: this node has no subscribe function (no broker)");

  v1::PipelineSpec spec;
  spec.mutable_input()->mutable_mqtt()->set_stream("readings");
  spec.mutable_output()->mutable_mqtt()->set_stream("readings");
  Status s = ValidatePipelineSpec(spec);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message,
            "input.mqtt.stream: \"readings\" is also the output stream (the pipeline would read its own records)");

  spec.mutable_output()->mutable_stdout();
  Status standalone = CheckStandaloneNeeds(spec, /*has_broker=*/false);
  ASSERT_FALSE(standalone.ok());
  EXPECT_THAT(standalone.error().message, HasSubstr("pipeline.input.mqtt: "));
  EXPECT_THAT(standalone.error().message, HasSubstr("add --broker-url URL"));
  EXPECT_TRUE(CheckStandaloneNeeds(spec, /*has_broker=*/true).ok());
}

}  // namespace
}  // namespace cairn::edge
