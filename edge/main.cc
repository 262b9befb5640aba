// cairn-edge: the node daemon.
//   cairn-edge bootstrap [--bootstrap-token-file FILE] [--name NAME] [--label k=v]... [--data-dir DIR]
//   cairn-edge run [--data-dir DIR] [--bootstrap-token-file FILE] [--health-interval 10s]
// The bootstrap token comes preferably from a file or CAIRN_EDGE_BOOTSTRAP_TOKEN
// (see bootstrap_token.h); --token / --bootstrap-token still work but warn.
// `cairn-edge run` bootstraps first when the data dir holds no identity.
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "cairn/common/files.h"
#include "cairn/common/log.h"
#include "cairn/common/mqtt_paho.h"
#include "cairn/common/service_main.h"
#include "cairn/common/topics.h"
#include "cairn/edge/agent.h"
#include "cairn/edge/bootstrap_token.h"
#include "cairn/edge/identity.h"

namespace {

using namespace cairn;

constexpr char kVersion[] = "0.1.0";

struct Config {
  std::string data_dir = "/var/lib/cairn-edge";
  std::string token;                 // --token (visible in ps: prefer the file or env)
  std::string bootstrap_token;       // --bootstrap-token / CAIRN_EDGE_BOOTSTRAP_TOKEN
  std::string bootstrap_token_file;  // --bootstrap-token-file FILE
  std::string name;
  std::map<std::string, std::string> labels;
  std::chrono::milliseconds health_interval{10000};
  LogConfig log;

  void Bind(ConfigSchema& s) {
    s.String("data-dir", &data_dir, "identity and pipeline state (default /var/lib/cairn-edge)");
    s.String("bootstrap-token-file", &bootstrap_token_file,
             "file holding the bootstrap token (preferred; or env CAIRN_EDGE_BOOTSTRAP_TOKEN)");
    s.String("token", &token, "the bootstrap token on the command line (visible to other users via ps)");
    s.String("bootstrap-token", &bootstrap_token, "same as --token");
    s.String("name", &name, "node name at bootstrap (default: the host name)");
    s.Map("label", &labels, "label k=v requested at bootstrap");
    s.Duration("health-interval", &health_interval, "health report interval (default 10s)");
    log.Bind(s);
  }
};

int Fail(const std::string& what) { return ExitWithError("cairn-edge", what); }

constexpr char kUsage[] =
    "usage: cairn-edge bootstrap [--bootstrap-token-file FILE] [--name NAME] [--label k=v]... [--data-dir DIR]\n"
    "       cairn-edge run [--data-dir DIR] [--bootstrap-token-file FILE] [--health-interval 10s]\n"
    "\n"
    "The bootstrap token: give it in a file (--bootstrap-token-file FILE, mode 0600) or in the\n"
    "environment (CAIRN_EDGE_BOOTSTRAP_TOKEN=TOKEN). --token TOKEN / --bootstrap-token TOKEN still\n"
    "work but print a warning: the command line is visible to every user of the machine (ps).\n"
    "`run` bootstraps first when the data dir holds no identity.\n"
    "\n"
    "Exit codes: 0 stopped by a signal; 1 bad configuration or failed start;\n"
    "78 the identity is no longer usable (certificate revoked or expired): bootstrap again\n"
    "with a new token (see the log for the exact command).\n"
    "Options can also come from --config FILE (YAML) or env CAIRN_EDGE_<KEY>.\n";

// The bootstrap token by preference (file, env, argv, config file); logs the
// warnings (a token in argv is visible to other users).
Result<std::string> BootstrapToken(const Config& cfg, const std::vector<std::string>& args) {
  edge::TokenInputs in;
  in.file = cfg.bootstrap_token_file;
  for (const char* name : {"CAIRN_EDGE_BOOTSTRAP_TOKEN", "CAIRN_EDGE_TOKEN"}) {
    const char* v = std::getenv(name);
    if (in.env.empty() && v != nullptr) in.env = v;
  }
  in.argv = edge::TokenOnCommandLine(args);
  in.config = cfg.bootstrap_token.empty() ? cfg.token : cfg.bootstrap_token;
  auto chosen = edge::ChooseBootstrapToken(in);
  if (!chosen.ok()) return chosen.error();
  for (const auto& w : chosen->warnings) spdlog::warn("{}", w);
  return chosen->token;
}

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

int Run(const Config& cfg, const std::string& token) {
  if (cfg.health_interval < std::chrono::milliseconds(100)) return Fail("health-interval must be at least 100ms");
  if (!edge::HasIdentity(cfg.data_dir)) {
    if (token.empty()) {
      return Fail("no identity in " + cfg.data_dir +
                  "; bootstrap first (cairn-edge bootstrap --bootstrap-token-file FILE --data-dir " + cfg.data_dir +
                  ") or give run a token (CAIRN_EDGE_BOOTSTRAP_TOKEN or --bootstrap-token-file FILE)");
    }
    auto id = DoBootstrap(cfg, token);
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
    std::fputs(kUsage, stdout);
    return args.empty() ? 2 : 0;
  }
  std::string cmd = args[0];
  args.erase(args.begin());
  Config cfg;
  ConfigSchema schema;
  cfg.Bind(schema);
  auto rest = LoadConfig(schema, "CAIRN_EDGE", args, kUsage);
  if (!rest.ok()) return Fail(rest.error().message);
  if (!rest->empty()) return Fail("unexpected argument \"" + rest->front() + "\"");
  if (auto st = cfg.log.Init("edge"); !st.ok()) return Fail(st.error().message);

  auto token = BootstrapToken(cfg, args);
  if (!token.ok()) return Fail(token.error().message);
  if (cmd == "bootstrap") {
    if (token->empty()) {
      return Fail("bootstrap needs a token: --bootstrap-token-file FILE or CAIRN_EDGE_BOOTSTRAP_TOKEN=TOKEN");
    }
    auto id = DoBootstrap(cfg, *token);
    if (!id.ok()) return Fail("bootstrap failed: " + id.error().message);
    std::printf("bootstrapped node %s in workspace %s (data dir %s)\n", id->node.c_str(), id->workspace.c_str(),
                cfg.data_dir.c_str());
    return 0;
  }
  if (cmd == "run") return Run(cfg, *token);
  return Fail("unknown command \"" + cmd + "\" (bootstrap, run)");
}
