#include "cairn/edge/agent.h"

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/common/rpc.h"
#include "cairn/common/topics.h"
#include "cairn/edge/runtime/registry.h"
#include "fake_mqtt_client.h"

#include "test_util.h"

namespace cairn::edge {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::HasSubstr;
using cairn::testing::FakeBroker;
using cairn::testing::FakeMqttClient;
using State = v1::PipelineHealth;

constexpr char kWs[] = "ws";
constexpr char kNode[] = "n1";
constexpr uint64_t kBdSeq = 7;

using testutil::ReadLines;
using testutil::WaitUntil;

// Size of `path`, 0 if it does not exist.
uintmax_t FileSize(const fs::path& path) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

std::string Digest(const std::string& name, uint32_t version) {
  return "digest-" + name + "-v" + std::to_string(version);
}

// generate (every 10 ms, `message`) -> file out/{name}.log (relative: below the data dir).
v1::PipelineConfig GenerateToFile(const std::string& name, uint32_t version, const std::string& message) {
  v1::PipelineConfig c;
  c.set_name(name);
  c.set_workspace(kWs);
  c.set_version(version);
  c.set_digest(Digest(name, version));
  auto* g = c.mutable_spec()->mutable_input()->mutable_generate();
  g->set_interval_ms(10);
  g->set_message(message);
  c.mutable_spec()->mutable_output()->mutable_file()->set_path("out/" + name + ".log");
  return c;
}

v1::PipelineRef Ref(const std::string& name, uint32_t version) {
  v1::PipelineRef r;
  r.set_name(name);
  r.set_version(version);
  r.set_digest(Digest(name, version));
  return r;
}

v1::DesiredState Desired(uint64_t generation, const std::vector<v1::PipelineRef>& refs) {
  v1::DesiredState d;
  d.set_generation(generation);
  for (const auto& r : refs) *d.add_pipelines() = r;
  d.set_updated_ms(1000 + static_cast<int64_t>(generation));
  return d;
}

std::optional<v1::PipelineHealth> PipelineOf(const v1::NodeHealth& h, const std::string& name) {
  std::optional<v1::PipelineHealth> found;
  for (const auto& p : h.pipelines()) {
    if (p.name() != name) continue;
    EXPECT_FALSE(found.has_value()) << "pipeline " << name << " listed twice";
    found = p;
  }
  return found;
}

// A generate -> file pipeline run directly (not by the agent): a witness that
// real time passes and pipeline threads get scheduled, for checks that
// something else does NOT happen.
class Witness {
 public:
  explicit Witness(const std::string& dir) : path_(fs::path(dir) / "witness.log") {
    v1::PipelineConfig c = GenerateToFile("witness", 1, "tick");
    c.mutable_spec()->mutable_output()->mutable_file()->set_path(path_.string());
    PipelineContext ctx;
    ctx.data_dir = dir;
    auto r = MakePipelineRunner(c, std::move(ctx));
    EXPECT_TRUE(r.ok());
    if (r.ok()) {
      runner_ = std::move(*r);
      runner_->Start();
    }
  }
  ~Witness() {
    if (runner_) runner_->Stop();
  }
  // Waits until the witness has written `ticks` more records (>= ticks * 10 ms).
  bool WaitTicks(size_t ticks) {
    const size_t start = ReadLines(path_).size();
    return WaitUntil([&] { return ReadLines(path_).size() >= start + ticks; });
  }

 private:
  fs::path path_;
  std::unique_ptr<PipelineRunner> runner_;
};

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cairn-agent-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;

    broker_ = std::make_shared<FakeBroker>();
    node_ = std::make_unique<FakeMqttClient>(broker_, "node-n1", "node:ws:n1");
    scheduler_ = std::make_unique<FakeMqttClient>(broker_, "scheduler", "svc:scheduler");

    Identity& id = id_;
    id.data_dir = dir_;
    id.workspace = kWs;
    id.node = kNode;
    id.broker_url = "ssl://x:1";
    id.labels = {{"site", "lab"}};
    AgentOptions& opts = opts_;
    opts.health_interval = std::chrono::hours(1);  // only immediate reports happen
    opts.agent_version = "test-1.0";
    opts.bd_seq = kBdSeq;
    agent_ = std::make_unique<Agent>(id, opts, *node_, SystemClock::Instance());

    node_->SetMessageHandler([this](const MqttMessage& m) { agent_->OnMessage(m); });
    ASSERT_TRUE(node_->Connect().ok());
    ASSERT_TRUE(scheduler_->Connect().ok());
  }

  // Builds the agent again with `registry` (before StartAgent).
  void UseRegistry(const runtime::ComponentRegistry* registry) {
    agent_.reset();
    opts_.registry = registry;
    agent_ = std::make_unique<Agent>(id_, opts_, *node_, SystemClock::Instance());
  }

  void TearDown() override {
    if (started_ && !stopped_) agent_->Stop();
    agent_.reset();
    node_.reset();
    scheduler_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void StartAgent() {
    ASSERT_TRUE(agent_->Start().ok());
    started_ = true;
  }

  void StopAgent() {
    agent_->Stop();
    stopped_ = true;
  }

  void PublishAsScheduler(const std::string& topic, const std::string& payload,
                          const std::string& content_type) {
    MqttMessage m;
    m.topic = topic;
    m.payload = payload;
    m.qos = 1;
    m.retained = true;
    m.content_type = content_type;
    ASSERT_TRUE(scheduler_->Publish(m).ok());
  }

  void PublishConfig(const v1::PipelineConfig& c) {
    PublishAsScheduler(topics::PipelineConfig(kWs, c.name(), c.version()), c.SerializeAsString(),
                       "cairn.v1.PipelineConfig");
  }

  void PublishDesired(const v1::DesiredState& d) {
    PublishAsScheduler(topics::NodeDesired(kWs, kNode), d.SerializeAsString(), "cairn.v1.DesiredState");
  }

  fs::path Output(const std::string& name) const { return fs::path(dir_) / "out" / (name + ".log"); }

  // Waits until `name`'s output file has at least `more` lines beyond what it has now.
  bool OutputGrows(const std::string& name, size_t more = 3) {
    const size_t start = ReadLines(Output(name)).size();
    return WaitUntil([&] { return ReadLines(Output(name)).size() >= start + more; });
  }

  uint64_t RecordsIn(const std::string& name) {
    auto p = PipelineOf(agent_->Health(), name);
    return p ? p->records_in() : 0;
  }

  std::vector<v1::NodeHealth> PublishedHealth() const {
    std::vector<v1::NodeHealth> out;
    for (const auto& m : broker_->Published()) {
      if (m.topic != topics::NodeHealth(kWs, kNode)) continue;
      v1::NodeHealth h;
      EXPECT_TRUE(h.ParseFromString(m.payload));
      EXPECT_EQ(m.content_type, "cairn.v1.NodeHealth");
      out.push_back(h);
    }
    return out;
  }

  std::optional<v1::NodeStatus> RetainedStatus() const {
    auto retained = broker_->Retained();
    auto it = retained.find(topics::NodeStatus(kWs, kNode));
    if (it == retained.end()) return std::nullopt;
    EXPECT_TRUE(it->second.retained);
    EXPECT_EQ(it->second.content_type, "cairn.v1.NodeStatus");
    v1::NodeStatus s;
    EXPECT_TRUE(s.ParseFromString(it->second.payload));
    return s;
  }

  std::string dir_;
  std::shared_ptr<FakeBroker> broker_;
  std::unique_ptr<FakeMqttClient> node_;
  std::unique_ptr<FakeMqttClient> scheduler_;
  Identity id_;
  AgentOptions opts_;
  std::unique_ptr<Agent> agent_;
  bool started_ = false;
  bool stopped_ = false;
};

TEST_F(AgentTest, StartPublishesRetainedOnlineAndStopPublishesRetainedOffline) {
  StartAgent();
  auto online = RetainedStatus();
  ASSERT_TRUE(online.has_value());
  EXPECT_EQ(online->state(), v1::NodeStatus::ONLINE);
  EXPECT_EQ(online->bd_seq(), kBdSeq);
  EXPECT_EQ(online->agent_version(), "test-1.0");
  EXPECT_EQ(online->reason(), "");
  EXPECT_GT(online->timestamp_ms(), 0);

  StopAgent();
  auto offline = RetainedStatus();
  ASSERT_TRUE(offline.has_value());
  EXPECT_EQ(offline->state(), v1::NodeStatus::OFFLINE);
  EXPECT_EQ(offline->bd_seq(), kBdSeq);
  EXPECT_EQ(offline->reason(), "clean shutdown");
  EXPECT_FALSE(node_->IsConnected());
}

TEST_F(AgentTest, StopStopsRunningPipelines) {
  StartAgent();
  PublishConfig(GenerateToFile("p1", 1, "p1-v1"));
  PublishDesired(Desired(1, {Ref("p1", 1)}));
  ASSERT_TRUE(OutputGrows("p1"));

  StopAgent();
  const uintmax_t size = FileSize(Output("p1"));
  Witness witness(dir_);
  ASSERT_TRUE(witness.WaitTicks(5));
  EXPECT_EQ(FileSize(Output("p1")), size);
}

TEST_F(AgentTest, AnMqttInputReadsItsWorkspacesStreamFromAnyPublisher) {
  StartAgent();
  v1::PipelineConfig c = GenerateToFile("reader", 1, "");
  c.mutable_spec()->mutable_input()->Clear();
  c.mutable_spec()->mutable_input()->mutable_mqtt()->set_stream("readings");
  PublishConfig(c);
  PublishDesired(Desired(1, {Ref("reader", 1)}));
  const std::string topic = topics::Data(kWs, "readings");
  ASSERT_TRUE(WaitUntil([&] { return node_->Wants(topic); }));
  // Data comes from other nodes, not from a service: it reaches the input.
  FakeMqttClient other(broker_, "node-n2", "node:ws:n2");
  ASSERT_TRUE(other.Connect().ok());
  MqttMessage m;
  m.topic = topic;
  m.payload = "21.5";
  ASSERT_TRUE(other.Publish(m).ok());
  ASSERT_TRUE(WaitUntil([&] { return ReadLines(Output("reader")).size() == 1; }));
  EXPECT_EQ(ReadLines(Output("reader"))[0], "21.5");
  PublishDesired(Desired(2, {}));
  EXPECT_TRUE(WaitUntil([&] { return !node_->Wants(topic); })) << "removing the pipeline unsubscribes";
}

TEST_F(AgentTest, WaitsForTheConfigThenRunsThePipelineAndReportsAtOnce) {
  StartAgent();
  PublishDesired(Desired(1, {Ref("p1", 1)}));

  // Listed but not runnable yet.
  v1::NodeHealth h = agent_->Health();
  EXPECT_EQ(h.applied_generation(), 0u);
  EXPECT_EQ(agent_->applied_generation(), 0u);
  auto p1 = PipelineOf(h, "p1");
  ASSERT_TRUE(p1.has_value());
  EXPECT_EQ(p1->state(), State::PENDING);
  EXPECT_EQ(p1->version(), 1u);
  EXPECT_THAT(p1->last_error(), HasSubstr("waiting for the pipeline config"));
  EXPECT_FALSE(fs::exists(Output("p1")));
  for (const auto& published : PublishedHealth()) EXPECT_EQ(published.applied_generation(), 0u);

  PublishConfig(GenerateToFile("p1", 1, "p1-v1"));
  EXPECT_EQ(agent_->applied_generation(), 1u);
  ASSERT_TRUE(OutputGrows("p1"));
  EXPECT_THAT(ReadLines(Output("p1")), Contains("p1-v1"));
  p1 = PipelineOf(agent_->Health(), "p1");
  ASSERT_TRUE(p1.has_value());
  EXPECT_EQ(p1->state(), State::RUNNING);

  // Reported without waiting for the (1 h) interval.
  std::optional<v1::NodeHealth> report;
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& published : PublishedHealth()) {
      if (published.applied_generation() == 1) report = published;
    }
    return report.has_value();
  }));
  auto reported = PipelineOf(*report, "p1");
  ASSERT_TRUE(reported.has_value());
  EXPECT_EQ(reported->state(), State::RUNNING);
  EXPECT_EQ(reported->version(), 1u);
}

TEST_F(AgentTest, RunsAPipelineAtOnceWhenItsConfigIsAlreadyThere) {
  StartAgent();
  PublishConfig(GenerateToFile("p1", 1, "p1-v1"));
  EXPECT_FALSE(fs::exists(Output("p1")));  // a config alone runs nothing
  EXPECT_FALSE(PipelineOf(agent_->Health(), "p1").has_value());

  PublishDesired(Desired(1, {Ref("p1", 1)}));
  EXPECT_EQ(agent_->applied_generation(), 1u);
  auto p1 = PipelineOf(agent_->Health(), "p1");
  ASSERT_TRUE(p1.has_value());
  EXPECT_EQ(p1->state(), State::RUNNING);
  ASSERT_TRUE(OutputGrows("p1"));
}

TEST_F(AgentTest, AppliesRetainedDesiredStateAndConfigsFoundAtStart) {
  PublishConfig(GenerateToFile("p1", 1, "p1-v1"));
  PublishDesired(Desired(1, {Ref("p1", 1)}));
  StartAgent();
  EXPECT_EQ(agent_->applied_generation(), 1u);
  ASSERT_TRUE(OutputGrows("p1"));
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& h : PublishedHealth()) {
      if (h.applied_generation() == 1) return true;
    }
    return false;
  }));
}

TEST_F(AgentTest, RunsExactlyThePipelinesListedInDesiredState) {
  StartAgent();
  PublishConfig(GenerateToFile("p1", 1, "p1-v1"));
  PublishConfig(GenerateToFile("p2", 1, "p2-v1"));
  PublishConfig(GenerateToFile("p3", 1, "p3-v1"));  // never desired
  PublishDesired(Desired(1, {Ref("p1", 1), Ref("p2", 1)}));
  ASSERT_TRUE(OutputGrows("p1"));
  ASSERT_TRUE(WaitUntil([&] { return RecordsIn("p2") >= 20; }));
  EXPECT_FALSE(fs::exists(Output("p3")));

  const uint64_t p2_before = RecordsIn("p2");
  PublishDesired(Desired(2, {Ref("p2", 1)}));
  // Applied once p1's runner has stopped (outside the agent's lock).
  ASSERT_TRUE(WaitUntil([&] { return agent_->applied_generation() == 2u; }));
  EXPECT_EQ(agent_->retiring(), 0u);

  // p1 is gone: not listed, and its output no longer grows.
  v1::NodeHealth h = agent_->Health();
  EXPECT_EQ(h.applied_generation(), 2u);
  EXPECT_FALSE(PipelineOf(h, "p1").has_value());
  EXPECT_FALSE(PipelineOf(h, "p3").has_value());
  const uintmax_t p1_size = FileSize(Output("p1"));

  // p2 is the same runner: its counters carry on rather than restart from 0.
  auto p2 = PipelineOf(h, "p2");
  ASSERT_TRUE(p2.has_value());
  EXPECT_EQ(p2->state(), State::RUNNING);
  EXPECT_GE(p2->records_in(), p2_before);
  ASSERT_TRUE(WaitUntil([&] { return RecordsIn("p2") >= p2_before + 5; }));
  ASSERT_TRUE(OutputGrows("p2"));

  EXPECT_EQ(FileSize(Output("p1")), p1_size);
  EXPECT_FALSE(fs::exists(Output("p3")));
}

TEST_F(AgentTest, UpdatesAChangedVersionAndLeavesOtherPipelinesRunning) {
  StartAgent();
  PublishConfig(GenerateToFile("p1", 1, "p1-v1"));
  PublishConfig(GenerateToFile("p2", 1, "p2-v1"));
  PublishDesired(Desired(1, {Ref("p1", 1), Ref("p2", 1)}));
  ASSERT_TRUE(OutputGrows("p1"));
  ASSERT_TRUE(WaitUntil([&] { return RecordsIn("p2") >= 20; }));

  PublishConfig(GenerateToFile("p1", 2, "p1-v2"));
  const uint64_t p2_before = RecordsIn("p2");
  PublishDesired(Desired(2, {Ref("p1", 2), Ref("p2", 1)}));
  // v2 starts once v1 has stopped, which the retirer does outside the lock.
  ASSERT_TRUE(WaitUntil([&] { return agent_->applied_generation() == 2u; }));

  v1::NodeHealth h = agent_->Health();
  auto p1 = PipelineOf(h, "p1");
  ASSERT_TRUE(p1.has_value());
  EXPECT_EQ(p1->version(), 2u);
  EXPECT_EQ(p1->state(), State::RUNNING);
  auto p2 = PipelineOf(h, "p2");
  ASSERT_TRUE(p2.has_value());
  EXPECT_EQ(p2->version(), 1u);
  EXPECT_GE(p2->records_in(), p2_before);  // not restarted

  ASSERT_TRUE(WaitUntil([&] {
    auto lines = ReadLines(Output("p1"));
    return std::count(lines.begin(), lines.end(), "p1-v2") >= 3;
  }));
  // Once v2 writes, v1 has stopped: nothing of v1 follows the first v2 line.
  auto lines = ReadLines(Output("p1"));
  auto first_v2 = std::find(lines.begin(), lines.end(), "p1-v2");
  EXPECT_EQ(std::count(first_v2, lines.end(), "p1-v1"), 0);
  EXPECT_GE(RecordsIn("p2"), p2_before);
}

// An input whose End() (called by PipelineRunner::Stop) blocks until the
// test releases it: a pipeline that is slow to stop.
struct StopGate {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool released = false;
  void Enter() {
    std::unique_lock lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return released; });
  }
  void Release() {
    std::lock_guard lock(mu);
    released = true;
    cv.notify_all();
  }
  bool Entered() {
    std::lock_guard lock(mu);
    return entered;
  }
};

class SlowToStopInput final : public runtime::Input {
 public:
  explicit SlowToStopInput(StopGate* gate) : gate_(gate) {}
  Result<runtime::milliseconds> Poll(std::vector<runtime::Record>*) override { return runtime::milliseconds(10); }
  void End() override { gate_->Enter(); }

 private:
  StopGate* gate_;
};

class NullOutput final : public runtime::Output {
 public:
  runtime::WriteResult Write(const runtime::Record&) override { return {}; }
};

MqttMessage FromScheduler(const std::string& topic, const std::string& payload) {
  MqttMessage m;
  m.topic = topic;
  m.payload = payload;
  m.user_properties = {{kPrincipalProperty, "svc:scheduler"}};
  return m;
}

TEST_F(AgentTest, AnswersMessagesAndHealthWhileARemovedPipelineIsStillStopping) {
  StopGate gate;
  runtime::ComponentRegistry registry;
  ASSERT_TRUE(registry
                  .AddInput("generate",
                            [&gate](const google::protobuf::Message&, const std::string&, const runtime::Env&)
                                -> Result<std::unique_ptr<runtime::Input>> {
                              return std::unique_ptr<runtime::Input>(std::make_unique<SlowToStopInput>(&gate));
                            })
                  .ok());
  ASSERT_TRUE(registry
                  .AddOutput("file",
                             [](const google::protobuf::Message&, const std::string&, const runtime::Env&)
                                 -> Result<std::unique_ptr<runtime::Output>> {
                               return std::unique_ptr<runtime::Output>(std::make_unique<NullOutput>());
                             })
                  .ok());
  UseRegistry(&registry);
  StartAgent();
  PublishConfig(GenerateToFile("p1", 1, "p1-v1"));
  PublishDesired(Desired(1, {Ref("p1", 1)}));
  ASSERT_TRUE(WaitUntil([&] {
    auto p1 = PipelineOf(agent_->Health(), "p1");
    return p1 && p1->state() == State::RUNNING;
  }));

  // Removing p1 starts its (blocking) stop; the MQTT callback must return
  // regardless, and so must a second message and a health report.
  auto removal = std::async(std::launch::async, [&] {
    agent_->OnMessage(FromScheduler(topics::NodeDesired(kWs, kNode), Desired(2, {}).SerializeAsString()));
  });
  ASSERT_TRUE(WaitUntil([&] { return gate.Entered(); }));
  const bool returned = removal.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  auto health = std::async(std::launch::async, [&] { return agent_->Health(); });
  const bool health_returned = health.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  // (Only asked when the lock is free: otherwise it would block too.)
  const size_t retiring_while_blocked = returned && health_returned ? agent_->retiring() : 0;
  gate.Release();  // whatever happened, let the threads finish
  EXPECT_TRUE(returned) << "OnMessage blocked on a pipeline's stop";
  EXPECT_TRUE(health_returned) << "Health blocked on a pipeline's stop";
  EXPECT_EQ(retiring_while_blocked, 1u);
  if (health_returned) EXPECT_FALSE(PipelineOf(health.get(), "p1").has_value());
  ASSERT_TRUE(WaitUntil([&] { return agent_->retiring() == 0 && agent_->applied_generation() == 2u; }));
}

TEST_F(AgentTest, KeepsTheOldVersionRunningUntilTheNewConfigArrives) {
  StartAgent();
  PublishConfig(GenerateToFile("p1", 1, "p1-v1"));
  PublishDesired(Desired(1, {Ref("p1", 1)}));
  ASSERT_TRUE(OutputGrows("p1"));

  PublishDesired(Desired(2, {Ref("p1", 2)}));
  EXPECT_EQ(agent_->applied_generation(), 1u);
  auto p1 = PipelineOf(agent_->Health(), "p1");
  ASSERT_TRUE(p1.has_value());
  EXPECT_EQ(p1->version(), 1u);
  EXPECT_EQ(p1->state(), State::RUNNING);
  ASSERT_TRUE(OutputGrows("p1"));

  PublishConfig(GenerateToFile("p1", 2, "p1-v2"));
  ASSERT_TRUE(WaitUntil([&] { return agent_->applied_generation() == 2u; }));
  ASSERT_TRUE(WaitUntil([&] {
    auto lines = ReadLines(Output("p1"));
    return std::count(lines.begin(), lines.end(), "p1-v2") >= 1;
  }));
}

TEST_F(AgentTest, ReportsAnInvalidConfigAsFailedAndRunsTheOthers) {
  StartAgent();
  v1::PipelineConfig bad = GenerateToFile("p1", 1, "p1-v1");
  bad.mutable_spec()->add_processors()->mutable_filter()->set_regex("(");
  PublishConfig(bad);
  PublishConfig(GenerateToFile("p2", 1, "p2-v1"));
  PublishDesired(Desired(1, {Ref("p1", 1), Ref("p2", 1)}));

  EXPECT_EQ(agent_->applied_generation(), 1u);
  v1::NodeHealth h = agent_->Health();
  EXPECT_EQ(h.applied_generation(), 1u);
  auto p1 = PipelineOf(h, "p1");
  ASSERT_TRUE(p1.has_value());
  EXPECT_EQ(p1->state(), State::FAILED);
  EXPECT_EQ(p1->version(), 1u);
  EXPECT_THAT(p1->last_error(), HasSubstr("regex"));
  EXPECT_THAT(h.recent_errors(), Contains(HasSubstr("pipeline p1")));
  auto p2 = PipelineOf(h, "p2");
  ASSERT_TRUE(p2.has_value());
  EXPECT_EQ(p2->state(), State::RUNNING);

  ASSERT_TRUE(OutputGrows("p2"));
  EXPECT_FALSE(fs::exists(Output("p1")));

  // The failure is in the prompt report too.
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& r : PublishedHealth()) {
      auto f = PipelineOf(r, "p1");
      if (r.applied_generation() == 1 && f && f->state() == State::FAILED) return true;
    }
    return false;
  }));
}

TEST_F(AgentTest, IgnoresMalformedPayloadsAndKeepsThePreviousDesiredState) {
  StartAgent();
  PublishConfig(GenerateToFile("p1", 1, "p1-v1"));
  PublishDesired(Desired(1, {Ref("p1", 1)}));
  ASSERT_TRUE(OutputGrows("p1"));

  const std::string garbage("\xff\xff\xff\xff", 4);  // a truncated varint tag
  v1::DesiredState probe_desired;
  v1::PipelineConfig probe_config;
  ASSERT_FALSE(probe_desired.ParseFromString(garbage));
  ASSERT_FALSE(probe_config.ParseFromString(garbage));

  PublishAsScheduler(topics::NodeDesired(kWs, kNode), garbage, "cairn.v1.DesiredState");
  PublishAsScheduler(topics::PipelineConfig(kWs, "p3", 1), garbage, "cairn.v1.PipelineConfig");
  PublishAsScheduler(topics::PipelineConfig(kWs, "p1", 1), garbage, "cairn.v1.PipelineConfig");

  EXPECT_EQ(agent_->applied_generation(), 1u);
  v1::NodeHealth h = agent_->Health();
  EXPECT_EQ(h.applied_generation(), 1u);
  EXPECT_THAT(h.recent_errors(), Contains(HasSubstr("malformed desired state")));
  EXPECT_THAT(h.recent_errors(),
              Contains(HasSubstr("malformed pipeline config on " + topics::PipelineConfig(kWs, "p3", 1))));
  EXPECT_THAT(h.recent_errors(),
              Contains(HasSubstr("malformed pipeline config on " + topics::PipelineConfig(kWs, "p1", 1))));
  ASSERT_EQ(h.pipelines_size(), 1);
  EXPECT_EQ(h.pipelines(0).name(), "p1");
  EXPECT_EQ(h.pipelines(0).state(), State::RUNNING);
  ASSERT_TRUE(OutputGrows("p1"));

  // The agent still takes well-formed updates afterwards.
  PublishConfig(GenerateToFile("p2", 1, "p2-v1"));
  PublishDesired(Desired(2, {Ref("p1", 1), Ref("p2", 1)}));
  EXPECT_EQ(agent_->applied_generation(), 2u);
  ASSERT_TRUE(OutputGrows("p2"));
}

TEST_F(AgentTest, KeepsOnlyTheLastTenRecentErrors) {
  StartAgent();
  for (int i = 0; i < 15; ++i) {
    PublishAsScheduler(topics::PipelineConfig(kWs, "p" + std::to_string(i), 1), std::string("\xff", 1),
                       "cairn.v1.PipelineConfig");
  }
  v1::NodeHealth h = agent_->Health();
  ASSERT_EQ(h.recent_errors_size(), 10);
  EXPECT_THAT(h.recent_errors(0), HasSubstr(topics::PipelineConfig(kWs, "p5", 1)));
  EXPECT_THAT(h.recent_errors(9), HasSubstr(topics::PipelineConfig(kWs, "p14", 1)));
}

TEST_F(AgentTest, IgnoresAnOlderGenerationArrivingAfterANewerOne) {
  StartAgent();
  PublishConfig(GenerateToFile("p1", 1, "p1-v1"));
  PublishConfig(GenerateToFile("p2", 1, "p2-v1"));
  PublishDesired(Desired(2, {Ref("p2", 1)}));
  ASSERT_TRUE(WaitUntil([&] { return RecordsIn("p2") >= 20; }));
  const uint64_t p2_before = RecordsIn("p2");

  PublishDesired(Desired(1, {Ref("p1", 1)}));
  EXPECT_EQ(agent_->applied_generation(), 2u);
  v1::NodeHealth h = agent_->Health();
  EXPECT_EQ(h.applied_generation(), 2u);
  EXPECT_FALSE(PipelineOf(h, "p1").has_value());
  auto p2 = PipelineOf(h, "p2");
  ASSERT_TRUE(p2.has_value());
  EXPECT_EQ(p2->state(), State::RUNNING);
  EXPECT_GE(p2->records_in(), p2_before);
  ASSERT_TRUE(OutputGrows("p2"));
  EXPECT_FALSE(fs::exists(Output("p1")));
}

TEST_F(AgentTest, IgnoresAConfigWhoseTopicDoesNotMatchItsPayload) {
  StartAgent();
  PublishDesired(Desired(1, {Ref("p1", 1)}));

  // Topic says version 1, payload says version 2.
  v1::PipelineConfig wrong_version = GenerateToFile("p1", 2, "p1-v2");
  PublishAsScheduler(topics::PipelineConfig(kWs, "p1", 1), wrong_version.SerializeAsString(),
                     "cairn.v1.PipelineConfig");
  // Topic says p1, payload says p9.
  v1::PipelineConfig wrong_name = GenerateToFile("p9", 1, "p9-v1");
  PublishAsScheduler(topics::PipelineConfig(kWs, "p1", 1), wrong_name.SerializeAsString(),
                     "cairn.v1.PipelineConfig");

  EXPECT_EQ(agent_->applied_generation(), 0u);
  v1::NodeHealth h = agent_->Health();
  auto p1 = PipelineOf(h, "p1");
  ASSERT_TRUE(p1.has_value());
  EXPECT_EQ(p1->state(), State::PENDING);
  EXPECT_THAT(h.recent_errors(),
              Contains(HasSubstr("malformed pipeline config on " + topics::PipelineConfig(kWs, "p1", 1))));
  EXPECT_FALSE(fs::exists(Output("p1")));
  EXPECT_FALSE(fs::exists(Output("p9")));

  // The right config still gets through.
  PublishConfig(GenerateToFile("p1", 1, "p1-v1"));
  EXPECT_EQ(agent_->applied_generation(), 1u);
  ASSERT_TRUE(OutputGrows("p1"));
  EXPECT_THAT(ReadLines(Output("p1")), ::testing::Each("p1-v1"));
}

TEST_F(AgentTest, IgnoresConfigsOfOtherWorkspaces) {
  StartAgent();
  PublishDesired(Desired(1, {Ref("p1", 1)}));
  v1::PipelineConfig other = GenerateToFile("p1", 1, "other-ws");
  PublishAsScheduler(topics::PipelineConfig("other", "p1", 1), other.SerializeAsString(),
                     "cairn.v1.PipelineConfig");
  EXPECT_EQ(agent_->applied_generation(), 0u);
  auto p1 = PipelineOf(agent_->Health(), "p1");
  ASSERT_TRUE(p1.has_value());
  EXPECT_EQ(p1->state(), State::PENDING);
}

TEST_F(AgentTest, StopsEverythingWhenTheDesiredStateIsCleared) {
  StartAgent();
  PublishConfig(GenerateToFile("p1", 1, "p1-v1"));
  PublishConfig(GenerateToFile("p2", 1, "p2-v1"));
  PublishDesired(Desired(3, {Ref("p1", 1), Ref("p2", 1)}));
  ASSERT_TRUE(OutputGrows("p1"));
  ASSERT_TRUE(OutputGrows("p2"));

  PublishAsScheduler(topics::NodeDesired(kWs, kNode), "", "");  // retained clear
  EXPECT_EQ(broker_->Retained().count(topics::NodeDesired(kWs, kNode)), 0u);
  ASSERT_TRUE(WaitUntil([&] { return agent_->retiring() == 0; }));  // stopped outside the lock
  v1::NodeHealth h = agent_->Health();
  EXPECT_EQ(h.pipelines_size(), 0);
  const uintmax_t p1_size = FileSize(Output("p1"));
  const uintmax_t p2_size = FileSize(Output("p2"));

  Witness witness(dir_);
  ASSERT_TRUE(witness.WaitTicks(5));
  EXPECT_EQ(FileSize(Output("p1")), p1_size);
  EXPECT_EQ(FileSize(Output("p2")), p2_size);
  EXPECT_EQ(agent_->Health().pipelines_size(), 0);

  // A later desired state (any generation) is applied again.
  PublishDesired(Desired(1, {Ref("p2", 1)}));
  EXPECT_EQ(agent_->applied_generation(), 1u);
  ASSERT_TRUE(OutputGrows("p2"));
}

// The agent caches at most 256 configs. A config evicted before the desired
// state that names it arrives must be fetched again from the broker (it is
// still retained there).
TEST_F(AgentTest, RunsAPipelineWhoseConfigArrivedAmongManyOthers) {
  for (int i = 0; i < 300; ++i) {
    char name[8];
    std::snprintf(name, sizeof(name), "p%03d", i);
    PublishConfig(GenerateToFile(name, 1, name));
  }
  StartAgent();
  PublishDesired(Desired(1, {Ref("p000", 1)}));
  EXPECT_EQ(agent_->applied_generation(), 1u);
  ASSERT_TRUE(OutputGrows("p000"));
}

}  // namespace
}  // namespace cairn::edge

namespace cairn::edge {
namespace {

// A restarted node runs what it ran before, from its data dir, without a
// broker: the desired state and the configs it names are cached on disk.
TEST_F(AgentTest, RestoresItsPipelinesFromTheDataDirWithoutABroker) {
  PublishConfig(GenerateToFile("p1", 1, "cached"));
  StartAgent();
  PublishDesired(Desired(4, {Ref("p1", 1)}));
  ASSERT_TRUE(OutputGrows("p1"));
  StopAgent();

  // A new agent on the same data dir, whose client never connects.
  auto offline_broker = std::make_shared<FakeBroker>();
  FakeMqttClient offline(offline_broker, "node-n1", "node:ws:n1");
  Identity id;
  id.data_dir = dir_;
  id.workspace = kWs;
  id.node = kNode;
  id.broker_url = "ssl://x:1";
  AgentOptions opts;
  opts.health_interval = std::chrono::hours(1);
  Agent restarted(id, opts, offline, SystemClock::Instance());
  ASSERT_TRUE(restarted.Restore());
  EXPECT_EQ(restarted.applied_generation(), 4u);
  ASSERT_TRUE(OutputGrows("p1"));
  auto p1 = PipelineOf(restarted.Health(), "p1");
  ASSERT_TRUE(p1.has_value());
  EXPECT_EQ(p1->state(), v1::PipelineHealth::RUNNING);
  restarted.Stop();
}

// Restarted with the broker reachable, the broker's desired state wins: the
// cache is not run, not even for a moment (cairn-edge run --desired-wait).
TEST_F(AgentTest, DoesNotRunTheCacheOnceTheBrokersDesiredStateArrived) {
  PublishConfig(GenerateToFile("p1", 1, "cached"));
  StartAgent();
  PublishDesired(Desired(4, {Ref("p1", 1)}));
  ASSERT_TRUE(OutputGrows("p1"));
  StopAgent();
  // While the node is away p1 is deleted: the retained state names p2.
  PublishConfig(GenerateToFile("p2", 1, "current"));
  PublishDesired(Desired(5, {Ref("p2", 1)}));
  const uintmax_t p1_size = FileSize(Output("p1"));

  auto broker_node = std::make_unique<FakeMqttClient>(broker_, "node-n1b", "node:ws:n1");
  Agent restarted(id_, opts_, *broker_node, SystemClock::Instance());
  broker_node->SetMessageHandler([&](const MqttMessage& m) { restarted.OnMessage(m); });
  ASSERT_TRUE(broker_node->Connect().ok());
  EXPECT_FALSE(restarted.WaitForDesired(std::chrono::milliseconds(0)));  // not subscribed yet
  ASSERT_TRUE(restarted.Start().ok());  // the retained state arrives on subscribing
  EXPECT_TRUE(restarted.WaitForDesired(std::chrono::seconds(5)));
  EXPECT_FALSE(restarted.Restore());  // the cache is not used
  ASSERT_TRUE(OutputGrows("p2"));
  EXPECT_EQ(restarted.applied_generation(), 5u);
  EXPECT_FALSE(PipelineOf(restarted.Health(), "p1").has_value());
  EXPECT_EQ(FileSize(Output("p1")), p1_size);
  restarted.Stop();
}

TEST_F(AgentTest, IgnoresADamagedCache) {
  fs::create_directories(fs::path(dir_) / "state");
  {
    std::ofstream out(fs::path(dir_) / "state" / "cache.pb");
    out << "\xff\xff not a cache";
  }
  EXPECT_FALSE(agent_->Restore());
  EXPECT_EQ(agent_->applied_generation(), 0u);
  auto h = agent_->Health();
  ASSERT_GT(h.recent_errors_size(), 0);
  EXPECT_NE(h.recent_errors(h.recent_errors_size() - 1).find("damaged"), std::string::npos);
}

TEST_F(AgentTest, HasNothingToRestoreOnAFreshDataDir) { EXPECT_FALSE(agent_->Restore()); }

}  // namespace
}  // namespace cairn::edge

namespace cairn::edge {
namespace {

TEST(HealthWaitingTest, SaysWhetherTheQueuedReportIsStillInTheQueue) {
  QueueStats qs;
  qs.next_seq = 11;  // seqs 1..10 appended
  qs.depth = 3;      // 8, 9, 10 still queued
  EXPECT_FALSE(HealthWaiting(0, qs));  // nothing queued yet
  EXPECT_FALSE(HealthWaiting(7, qs));  // acked or dropped
  EXPECT_TRUE(HealthWaiting(8, qs));
  EXPECT_TRUE(HealthWaiting(10, qs));
  qs.depth = 0;
  EXPECT_FALSE(HealthWaiting(10, qs));
}

}  // namespace
}  // namespace cairn::edge
