// `cairn-edge run --pipeline FILE`: one pipeline file run locally with the
// node's runtime (standalone.h). The main thread parses, validates, builds
// the runner, then waits for a stop signal or the pipeline's failure; the
// runner, the MQTT client and the queue drainer have their own threads.
#include "cairn/edge/standalone.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>

#include <spdlog/spdlog.h>

#include "cairn/common/files.h"
#include "cairn/common/mqtt_paho.h"
#include "cairn/common/pipeline_spec.h"
#include "cairn/common/service_main.h"
#include "cairn/common/topics.h"
#include "cairn/edge/data_dir_lock.h"
#include "cairn/edge/file_roots.h"
#include "cairn/edge/outbound_queue.h"
#include "cairn/edge/pipeline_runtime.h"
#include "cairn/edge/queue_drainer.h"
#include "cairn/edge/runtime/stream_subscriptions.h"

namespace cairn::edge {
namespace {

constexpr char kDefaultWorkspace[] = "local";
constexpr char kPasswordEnv[] = "CAIRN_EDGE_BROKER_PASSWORD";

constexpr char kUsage[] =
    "usage: cairn-edge run --pipeline FILE.yaml [--data-dir DIR] [--allow-read DIR]... [--allow-write DIR]...\n"
    "                      [--allow-exec] [--check] [--broker-url URL [--username U] [--password-file F]\n"
    "                      [--ca-file F]] [--node NAME]\n"
    "\n"
    "Runs one pipeline file (the format of `cairnctl pipeline apply -f`) locally with the node's\n"
    "runtime, without a control plane, identity or broker. Ctrl-C stops it (flushing batch and\n"
    "aggregate). Relative paths read below DATA_DIR/in and write below DATA_DIR/out; the data dir\n"
    "is the current directory unless --data-dir is given. An mqtt output needs --broker-url; its\n"
    "records go through the queue in DATA_DIR/queue to cairn/v1/ws/{ws}/data/{stream}. The broker\n"
    "password comes from --password-file F or the environment (CAIRN_EDGE_BROKER_PASSWORD).\n"
    "--check only validates the file (exit 0 if valid; else the field path and exit 1).\n"
    "See docs/pipelines.md, \"Trying a pipeline locally\".\n";

struct Options {
  std::string pipeline;
  std::string data_dir = ".";
  std::vector<std::string> allow_read;
  std::vector<std::string> allow_write;
  bool allow_exec = false;
  bool check = false;
  std::string broker_url;
  std::string username;
  std::string password_file;
  std::string ca_file;
  std::string node;
  std::chrono::milliseconds drain_timeout{10'000};
  LogConfig log;

  void Bind(ConfigSchema& s) {
    s.String("pipeline", &pipeline, "the pipeline file to run (YAML, as for cairnctl pipeline apply -f)");
    s.String("data-dir", &data_dir, "root of the default file roots (DATA_DIR/in, DATA_DIR/out) and the queue (default .)");
    s.List("allow-read", &allow_read, "the pipeline may also read files below DIR (repeatable)");
    s.List("allow-write", &allow_write, "the pipeline may also write files below DIR (repeatable)");
    s.Bool("allow-exec", &allow_exec, "let an exec input run its command");
    s.Bool("check", &check, "validate the file and exit");
    s.String("broker-url", &broker_url, "MQTT broker for an mqtt output: tcp://HOST:PORT or ssl://HOST:PORT");
    s.String("username", &username, "broker username (optional)");
    s.String("password-file", &password_file, "file holding the broker password (or env CAIRN_EDGE_BROKER_PASSWORD)");
    s.String("ca-file", &ca_file, "CA bundle that verifies an ssl:// broker");
    s.String("node", &node, "node name for set.node_field and the cairn-node property (default: the host name)");
    s.Duration("drain-timeout", &drain_timeout, "on stop, wait this long for queued mqtt records to leave (default 10s)");
    log.Bind(s);
  }
};

int Fail(const std::string& what) { return ExitWithError("cairn-edge", what); }

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "local";
  return buf;
}

Result<std::string> BrokerPassword(const Options& o) {
  if (!o.password_file.empty()) {
    auto text = ReadFile(o.password_file);
    if (!text.ok()) return Error::InvalidArgument("--password-file: " + text.error().message);
    std::string p = *text;
    while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
    return p;
  }
  const char* env = std::getenv(kPasswordEnv);
  return std::string(env != nullptr ? env : "");
}

// The broker side of a run with an mqtt output: the client, the outbound
// queue in DATA_DIR/queue and its drainer (the node's own store-and-forward).
class StandaloneBroker {
 public:
  static Result<std::unique_ptr<StandaloneBroker>> Open(const Options& o, const std::string& node,
                                                         const std::string& workspace) {
    auto password = BrokerPassword(o);
    if (!password.ok()) return password.error();
    auto b = std::unique_ptr<StandaloneBroker>(new StandaloneBroker());
    SegmentedLogOptions qo;
    qo.dir = o.data_dir + "/queue";
    auto queue = OpenSegmentedLogQueue(qo);
    if (!queue.ok()) return Error{queue.error().code, "queue " + qo.dir + ": " + queue.error().message};
    b->queue_ = std::move(*queue);
    b->queue_max_bytes_ = qo.max_bytes;
    MqttOptions mo;
    mo.uri = o.broker_url;
    mo.client_id = RandomClientId("cairn-edge-run");
    mo.username = o.username;
    mo.password = *password;
    mo.ca_file = o.ca_file;
    b->mqtt_ = MakePahoMqttClient(mo);
    b->streams_ = std::make_unique<runtime::StreamSubscriptions>(*b->mqtt_, workspace);
    b->mqtt_->SetMessageHandler([streams = b->streams_.get()](const MqttMessage& m) { streams->OnMessage(m); });
    b->mqtt_->SetConnectionHandler([raw = b.get()](bool up) {
      if (up && raw->drainer_) raw->drainer_->Wake();
    });
    DrainerOptions dopt;
    dopt.node = node;
    auto* mqtt = b->mqtt_.get();
    b->drainer_ = std::make_unique<QueueDrainer>(
        *b->queue_, [mqtt](const MqttMessage& m) { return mqtt->PublishAndWait(m, std::chrono::seconds(10)); },
        [mqtt] { return mqtt->IsConnected(); }, dopt);
    return b;
  }

  ~StandaloneBroker() {
    if (drainer_) drainer_->Stop();
    if (mqtt_) mqtt_->Disconnect();
  }

  // Appends one stream record to the queue (sent at QoS 1 by the drainer);
  // the node's backpressure rule holds it back while the link is up and the
  // queue near its bound (the mqtt output then pauses the input).
  Status Publish(const std::string& workspace, const std::string& stream, const std::string& payload) {
    if (HoldBackStreamRecord(queue_->Stats().bytes, queue_max_bytes_, mqtt_->IsConnected())) {
      return Error::ResourceExhausted("queue at 3/4 of its bound with the link up: waiting for it to drain");
    }
    auto seq = queue_->Append(QueuedRecord::Kind::kStreamRecord, topics::Data(workspace, stream), "", payload);
    if (!seq.ok()) return seq.error();
    return OkStatus();
  }

  runtime::SubscribeFn Subscribe() { return streams_->Fn(); }

  void Start() {
    drainer_->Start();
    TryConnect();
  }

  // Connects if not yet connected, with back-off between attempts (Paho
  // reconnects by itself after the first success).
  void TryConnect() {
    if (connected_once_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_attempt_) return;
    Status s = mqtt_->Connect();
    if (s.ok()) {
      connected_once_ = true;
      spdlog::info("connected to the broker as {}", mqtt_->ClientId());
      drainer_->Wake();
      return;
    }
    spdlog::warn("broker not reachable ({}); records wait in the queue; retrying in {}s", s.error().message,
                 backoff_.count());
    next_attempt_ = now + backoff_;
    backoff_ = std::min(backoff_ * 2, std::chrono::seconds(30));
  }

  // Waits until the queue is empty or `timeout` passed; returns what is left.
  uint64_t Drain(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    drainer_->Wake();
    while (queue_->Stats().depth > 0 && std::chrono::steady_clock::now() < deadline) {
      if (!connected_once_) TryConnect();
      if (PollStopSignal(std::chrono::milliseconds(50)) != 0) break;  // a second Ctrl-C: stop now
    }
    return queue_->Stats().depth;
  }

 private:
  StandaloneBroker() = default;
  std::unique_ptr<OutboundQueue> queue_;
  uint64_t queue_max_bytes_ = 0;
  std::unique_ptr<MqttClient> mqtt_;
  std::unique_ptr<runtime::StreamSubscriptions> streams_;
  std::unique_ptr<QueueDrainer> drainer_;
  bool connected_once_ = false;  // main thread only
  std::chrono::steady_clock::time_point next_attempt_{};
  std::chrono::seconds backoff_{1};
};

std::string Summary(const v1::PipelineHealth& h) {
  return "pipeline " + h.name() + ": in " + std::to_string(h.records_in()) + ", out " +
         std::to_string(h.records_out()) + ", dropped " + std::to_string(h.records_dropped()) + ", errors " +
         std::to_string(h.errors());
}

}  // namespace

bool IsStandaloneRun(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(),
                     [](const std::string& a) { return a == "--pipeline" || a.rfind("--pipeline=", 0) == 0; });
}

Status CheckStandaloneNeeds(const v1::PipelineSpec& spec, bool has_broker) {
  if (spec.input().has_mqtt() && !has_broker) {
    return Error::FailedPrecondition(
        "pipeline.input.mqtt: a standalone run subscribes to a broker only when given one: "
        "add --broker-url URL (e.g. tcp://localhost:1883)");
  }
  if (spec.output().has_mqtt() && !has_broker) {
    return Error::FailedPrecondition(
        "pipeline.output.mqtt: a standalone run publishes to a broker only when given one: "
        "add --broker-url URL (e.g. tcp://localhost:1883), or use a file or stdout output to try it");
  }
  return OkStatus();
}

int StandaloneMain(const std::vector<std::string>& args) {
  Options o;
  ConfigSchema schema;
  o.Bind(schema);
  auto rest = LoadConfig(schema, "CAIRN_EDGE", args, kUsage);
  if (!rest.ok()) return Fail(rest.error().message);
  if (!rest->empty()) return Fail("unexpected argument \"" + rest->front() + "\"");
  if (auto st = o.log.Init("edge"); !st.ok()) return Fail(st.error().message);
  if (o.pipeline.empty()) return Fail("--pipeline needs a file");

  auto text = ReadFile(o.pipeline);
  if (!text.ok()) return Fail(o.pipeline + ": " + text.error().message);
  auto pipeline = ParsePipelineYaml(*text, kDefaultWorkspace);
  if (!pipeline.ok()) return Fail(o.pipeline + ": " + pipeline.error().message);
  if (o.check) {
    std::printf("%s: pipeline %s is valid\n", o.pipeline.c_str(), pipeline->name().c_str());
    return 0;
  }
  if (auto st = CheckStandaloneNeeds(pipeline->spec(), !o.broker_url.empty()); !st.ok()) {
    return Fail(o.pipeline + ": " + st.error().message);
  }
  const bool uses_broker = pipeline->spec().output().has_mqtt() || pipeline->spec().input().has_mqtt();
  if (!o.broker_url.empty() && !uses_broker) {
    spdlog::warn("--broker-url is not used: the pipeline has no mqtt input or output");
  }

  auto roots = FileRoots::Make({o.data_dir, o.allow_read, o.allow_write});
  if (!roots.ok()) return Fail(roots.error().message);
  if (auto st = roots->EnsureDefaultRoots(); !st.ok()) return Fail(st.error().message);
  for (const auto& w : roots->CheckRoots()) spdlog::warn("{}", w);
  spdlog::info("{}", roots->Describe());

  const std::string node = o.node.empty() ? HostName() : o.node;
  std::optional<DataDirLock> lock;
  std::unique_ptr<StandaloneBroker> broker;
  if (uses_broker) {
    // One run per queue: the data dir is locked while it runs.
    auto l = AcquireDataDirLock(roots->data_dir());
    if (!l.ok()) return Fail(l.error().message);
    lock.emplace(std::move(*l));
    auto b = StandaloneBroker::Open(o, node, pipeline->workspace());
    if (!b.ok()) return Fail(b.error().message);
    broker = std::move(*b);
  }

  v1::PipelineConfig config;
  config.set_name(pipeline->name());
  config.set_workspace(pipeline->workspace());
  config.set_version(1);
  config.set_digest(pipeline->digest());
  *config.mutable_spec() = pipeline->spec();
  PipelineContext ctx;
  ctx.workspace = pipeline->workspace();
  ctx.node = node;
  ctx.data_dir = roots->data_dir();
  ctx.allow_exec = o.allow_exec;
  ctx.files = std::make_shared<const FileRoots>(std::move(*roots));
  if (broker) {
    ctx.publish = [b = broker.get(), ws = pipeline->workspace()](const std::string& stream,
                                                               const std::string& payload, int) {
      return b->Publish(ws, stream, payload);
    };
    ctx.subscribe = broker->Subscribe();
  }
  auto runner = MakePipelineRunner(config, std::move(ctx));
  if (!runner.ok()) return Fail(o.pipeline + ": " + runner.error().message);

  if (broker) broker->Start();
  (*runner)->Start();
  spdlog::info("running pipeline {} from {} (Ctrl-C stops it)", config.name(), o.pipeline);
  int sig = 0;
  while (sig == 0) {
    if ((*runner)->Health().state() == v1::PipelineHealth::FAILED) break;
    if (broker) broker->TryConnect();
    sig = PollStopSignal(std::chrono::milliseconds(200));
  }
  (*runner)->Stop();  // flushes what batch and aggregate hold
  const v1::PipelineHealth h = (*runner)->Health();
  uint64_t left = 0;
  if (broker) left = broker->Drain(o.drain_timeout);
  std::fprintf(stderr, "cairn-edge: %s%s\n", Summary(h).c_str(),
               broker ? (", queued and not yet sent " + std::to_string(left) +
                         (left > 0 ? " (kept in " + o.data_dir + "/queue for the next run)" : ""))
                            .c_str()
                      : "");
  if (h.state() == v1::PipelineHealth::FAILED) {
    return Fail("pipeline " + config.name() + " failed: " + h.last_error());
  }
  return 0;
}

}  // namespace cairn::edge
