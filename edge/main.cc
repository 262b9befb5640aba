// cairn-edge: the node daemon.
//   cairn-edge bootstrap --token TOKEN [--name NAME] [--label k=v]... [--data-dir DIR]
//   cairn-edge run [--data-dir DIR] [--bootstrap-token TOKEN] [--health-interval 10s]
// The container form `cairn-edge run --bootstrap-token T` (or
// CAIRN_EDGE_BOOTSTRAP_TOKEN) bootstraps first when the data dir is empty.
#include <atomic>
#include <cstdio>

#include "cairn/common/files.h"
#include "cairn/common/log.h"
#include "cairn/common/mqtt_paho.h"
#include "cairn/common/service_main.h"
#include "cairn/common/topics.h"
#include "cairn/edge/agent.h"
#include "cairn/edge/identity.h"

namespace {

using namespace cairn;

constexpr char kVersion[] = "0.1.0";

struct Config {
  std::string data_dir = "/var/lib/cairn-edge";
  std::string token;            // bootstrap --token
  std::string bootstrap_token;  // run --bootstrap-token / CAIRN_EDGE_BOOTSTRAP_TOKEN
  std::string name;
  std::map<std::string, std::string> labels;
  std::chrono::milliseconds health_interval{10000};
  LogConfig log;

  void Bind(ConfigSchema& s) {
    s.String("data-dir", &data_dir, "identity and pipeline state (default /var/lib/cairn-edge)");
    s.String("token", &token, "bootstrap: the one-time bootstrap token");
    s.String("bootstrap-token", &bootstrap_token, "run: bootstrap with this token first if the data dir is empty");
    s.String("name", &name, "node name at bootstrap (default: the host name)");
    s.Map("label", &labels, "label k=v requested at bootstrap");
    s.Duration("health-interval", &health_interval, "health report interval (default 10s)");
    log.Bind(s);
  }
};

int Fail(const std::string& what) { return ExitWithError("cairn-edge", what); }

Result<edge::Identity> DoBootstrap(const Config& cfg, const std::string& token) {
  edge::BootstrapOptions o;
  o.token = token;
  o.name = cfg.name;
  o.labels = cfg.labels;
  o.data_dir = cfg.data_dir;
  o.agent_version = kVersion;
  return edge::Bootstrap(o);
}

// Next birth/death sequence, persisted so that it grows across restarts.
uint64_t NextBdSeq(const std::string& data_dir) {
  uint64_t seq = 0;
  auto cur = ReadFile(data_dir + "/bd_seq");
  if (cur.ok()) {
    try {
      seq = std::stoull(*cur);
    } catch (const std::exception&) {
      seq = 0;
    }
  }
  ++seq;
  (void)WriteFileAtomic(data_dir + "/bd_seq", std::to_string(seq) + "\n", 0600);
  return seq;
}

int Run(const Config& cfg) {
  if (cfg.health_interval < std::chrono::milliseconds(100)) return Fail("health-interval must be at least 100ms");
  if (!edge::HasIdentity(cfg.data_dir)) {
    if (cfg.bootstrap_token.empty()) {
      return Fail("no identity in " + cfg.data_dir +
                  "; run `cairn-edge bootstrap --token TOKEN` or pass --bootstrap-token");
    }
    auto id = DoBootstrap(cfg, cfg.bootstrap_token);
    if (!id.ok()) return Fail("bootstrap failed: " + id.error().message);
  }
  auto id = edge::LoadIdentity(cfg.data_dir);
  if (!id.ok()) return Fail(id.error().message);

  uint64_t bd_seq = NextBdSeq(cfg.data_dir);
  MqttOptions mo;
  mo.uri = id->broker_url;
  // The broker plugin accepts a certificate login only when the certificate's
  // CN, the username and the client id are all the node's principal.
  mo.client_id = topics::NodePrincipal(id->workspace, id->node);
  mo.username = mo.client_id;
  mo.ca_file = id->ca_file();
  mo.cert_file = id->cert_file();
  mo.key_file = id->key_file();
  mo.keepalive_s = 5;
  MqttMessage will;
  will.topic = topics::NodeStatus(id->workspace, id->node);
  will.payload = edge::Agent::MakeStatus(false, bd_seq, kVersion, "connection lost", SystemClock::Instance().NowMs())
                     .SerializeAsString();
  will.qos = 1;
  will.retained = true;
  will.content_type = "cairn.v1.NodeStatus";
  mo.will = will;
  auto mqtt = MakePahoMqttClient(mo);

  edge::AgentOptions ao;
  ao.health_interval = cfg.health_interval;
  ao.agent_version = kVersion;
  ao.bd_seq = bd_seq;
  edge::Agent agent(*id, ao, *mqtt, SystemClock::Instance());
  mqtt->SetMessageHandler([&](const MqttMessage& m) { agent.OnMessage(m); });
  // The agent starts after the first connection; the handler serves the
  // reconnects after it.
  std::atomic<int> connects{0};
  mqtt->SetConnectionHandler([&](bool up) {
    if (!up || connects++ > 0) agent.OnConnection(up);
  });
  // What the node ran before a restart runs again at once, link or not.
  agent.Restore();
  // Until the first connection succeeds, retry with back-off (the link may be
  // down for hours); later losses are handled by automatic reconnects. An
  // identity the broker refuses (revoked, wrong CA) ends the daemon.
  Status st = mqtt->Connect();
  auto backoff = std::chrono::seconds(1);
  while (!st.ok() && (st.error().code == ErrorCode::kUnavailable ||
                      st.error().code == ErrorCode::kDeadlineExceeded)) {
    spdlog::warn("{}; retrying in {}s (pipelines keep running)", st.error().message, backoff.count());
    if (int sig = PollStopSignal(backoff); sig != 0) {
      spdlog::info("cairn-edge stopping (signal {}) before it ever connected", sig);
      agent.Stop();
      return 0;
    }
    backoff = std::min(backoff * 2, std::chrono::seconds(30));
    st = mqtt->Connect();
  }
  if (!st.ok()) {
    agent.Stop();
    return Fail(st.error().message);
  }
  if (auto s = agent.Start(); !s.ok()) return Fail(s.error().message);
  int sig = WaitForStopSignal();
  spdlog::info("cairn-edge stopping (signal {})", sig);
  agent.Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  BlockStopSignals();
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::printf(
        "usage: cairn-edge bootstrap --token TOKEN [--name NAME] [--label k=v]... [--data-dir DIR]\n"
        "       cairn-edge run [--data-dir DIR] [--bootstrap-token TOKEN] [--health-interval 10s]\n"
        "Options can also come from --config FILE (YAML) or env CAIRN_EDGE_<KEY>.\n");
    return args.empty() ? 2 : 0;
  }
  std::string cmd = args[0];
  args.erase(args.begin());
  Config cfg;
  ConfigSchema schema;
  cfg.Bind(schema);
  auto rest = LoadConfig(schema, "CAIRN_EDGE", args, "usage: cairn-edge " + cmd + " [options]");
  if (!rest.ok()) return Fail(rest.error().message);
  if (!rest->empty()) return Fail("unexpected argument \"" + rest->front() + "\"");
  if (auto st = cfg.log.Init("edge"); !st.ok()) return Fail(st.error().message);

  if (cmd == "bootstrap") {
    if (cfg.token.empty()) return Fail("bootstrap needs --token TOKEN");
    auto id = DoBootstrap(cfg, cfg.token);
    if (!id.ok()) return Fail("bootstrap failed: " + id.error().message);
    std::printf("bootstrapped node %s in workspace %s (data dir %s)\n", id->node.c_str(), id->workspace.c_str(),
                cfg.data_dir.c_str());
    return 0;
  }
  if (cmd == "run") return Run(cfg);
  return Fail("unknown command \"" + cmd + "\" (bootstrap, run)");
}
