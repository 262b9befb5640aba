// cairn-edge: the node daemon.
//   cairn-edge bootstrap [--bootstrap-token-file FILE] [--name NAME] [--label k=v]... [--data-dir DIR]
//   cairn-edge run [--data-dir DIR] [--bootstrap-token-file FILE] [--health-interval 10s]
//                  [--desired-wait 5s] [--queue-max-bytes N]
//   cairn-edge run --pipeline FILE.yaml [...]   (standalone: standalone.h)
// Both lock the data dir for the life of the process (data_dir_lock.h): a
// second process on the same dir is refused, naming the first one's pid.
// The bootstrap token comes preferably from a file or CAIRN_EDGE_BOOTSTRAP_TOKEN
// (see bootstrap_token.h); --token / --bootstrap-token still work but warn.
// `cairn-edge run` bootstraps first when the data dir holds no identity.
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "cairn/common/files.h"
#include "cairn/common/log.h"
#include "cairn/common/mqtt_paho.h"
#include "cairn/common/rpc.h"
#include "cairn/common/service_main.h"
#include "cairn/common/topics.h"
#include "cairn/edge/file_roots.h"
#include "cairn/edge/agent.h"
#include "cairn/edge/bootstrap_token.h"
#include "cairn/edge/certificate.h"
#include "cairn/edge/data_dir_lock.h"
#include "cairn/edge/identity.h"
#include "cairn/edge/identity_watch.h"
#include "cairn/edge/log_shipper.h"
#include "cairn/edge/renewer.h"
#include "cairn/edge/standalone.h"

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
  std::chrono::milliseconds desired_wait{5000};
  int64_t queue_max_bytes = 64ll << 20;
  int64_t cert_renew_percent = edge::kDefaultRenewPercent;
  std::string ship_log_level = "warn";
  int64_t ship_log_rate = 20;
  bool allow_exec = false;
  std::vector<std::string> allow_read;
  std::vector<std::string> allow_write;
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
    s.Duration("desired-wait", &desired_wait,
               "at start with the broker reachable, wait this long for the retained desired state before "
               "running the cached one (default 5s; docs/deploy-node.md)");
    s.Int("queue-max-bytes", &queue_max_bytes,
          "bound of the on-disk queue of stream records kept while offline; beyond it the oldest are "
          "dropped, counted and reported in health (default 67108864 = 64 MiB, at least 1024)");
    s.Int("cert-renew-percent", &cert_renew_percent,
          "renew the node certificate when this share of its life has passed (default 67; 0 = at once, for tests)");
    s.String("ship-log-level", &ship_log_level,
             "the node's own log lines at this level or above go to cairn/v1/ws/{ws}/nodes/{node}/logs "
             "(cairnctl node logs NODE): warn (default), error, info or off");
    s.Int("ship-log-rate", &ship_log_rate,
          "at most this many shipped log lines per second, in bursts of ten times as many; "
          "the rest are dropped and counted (default 20)");
    s.List("allow-read", &allow_read,
           "pipelines may also read files below DIR (repeatable; DATA_DIR/in always); docs/deploy-node.md");
    s.List("allow-write", &allow_write,
           "pipelines may also write files below DIR (repeatable; DATA_DIR/out always); docs/deploy-node.md");
    s.Bool("allow-exec", &allow_exec,
           "let pipelines run commands (exec inputs); a local choice of the node's owner, off by default");
    log.Bind(s);
  }
};

int Fail(const std::string& what) { return ExitWithError("cairn-edge", what); }

constexpr char kUsage[] =
    "usage: cairn-edge bootstrap [--bootstrap-token-file FILE] [--name NAME] [--label k=v]... [--data-dir DIR]\n"
    "       cairn-edge run [--data-dir DIR] [--bootstrap-token-file FILE] [--health-interval 10s]\n"
    "                      [--desired-wait 5s] [--queue-max-bytes 67108864]\n"
    "       cairn-edge run --pipeline FILE.yaml [--check] [--broker-url URL] ...  (one file, locally;\n"
    "                      no control plane: cairn-edge run --pipeline F --help)\n"
    "\n"
    "The bootstrap token: give it in a file (--bootstrap-token-file FILE, mode 0600) or in the\n"
    "environment (CAIRN_EDGE_BOOTSTRAP_TOKEN=TOKEN). --token TOKEN / --bootstrap-token TOKEN still\n"
    "work but print a warning: the command line is visible to every user of the machine (ps).\n"
    "`run` bootstraps first when the data dir holds no identity.\n"
    "\n"
    "One process per data dir: a second `run` or `bootstrap` on a data dir in use is refused\n"
    "(naming the pid that holds it). `run` with a token, --name or --label on a data dir that\n"
    "already holds an identity runs as that identity and says so (a warning when they differ).\n"
    "Warnings and errors also go, rate-limited and batched, to the node's logs topic\n"
    "(cairnctl node logs NODE -f; see --ship-log-level, --ship-log-rate).\n"
    "Offline, stream records, health and logs wait in on-disk queues below the data dir\n"
    "(--queue-max-bytes; the oldest are dropped when full). At start `run` waits up to\n"
    "--desired-wait for the broker's desired state before running the cached one.\n"
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

// Logs a finished identity (revoked or expired) and returns exit code 78.
int IdentityFinished(const Config& cfg, const edge::IdentityVerdict& verdict) {
  for (const auto& line : verdict.lines) spdlog::error("{}", line);
  // The log may go to a file; the service manager shows stderr.
  if (!cfg.log.file.empty()) {
    for (const auto& line : verdict.lines) std::fprintf(stderr, "cairn-edge: %s\n", line.c_str());
  }
  return edge::kExitIdentityFinished;
}

// Waits up to `d` for a stop signal (returns it) or a verdict (returns 0);
// the verdict is looked at once a second (an idle node wakes for little).
int WaitForSignalOrVerdict(std::chrono::milliseconds d, const edge::IdentityWatch& watch) {
  const auto deadline = std::chrono::steady_clock::now() + d;
  for (;;) {
    if (watch.verdict()) return 0;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return 0;
    if (int sig = PollStopSignal(std::min(left, std::chrono::milliseconds(1000))); sig != 0) return sig;
  }
}

// The one place the node's log batches leave: the agent's on-disk queue for
// the node's own messages (sent when the link is up, kept while it is
// down). Until the agent exists the shipper keeps its lines and tries again.
Status PublishNodeLogs(const std::atomic<edge::Agent*>& agent, const MqttMessage& batch) {
  edge::Agent* a = agent.load();
  if (a == nullptr) return Error::Unavailable("the agent is not up yet");
  return a->Enqueue(batch);
}

// The node's own log lines on their way to its logs topic (log_shipper.h),
// from construction until Stop() or the end of the scope.
class NodeLogShipping {
 public:
  NodeLogShipping(const Config& cfg, const edge::Identity& id, const std::atomic<edge::Agent*>& agent,
                  const Clock& clock) {
    if (cfg.ship_log_level == "off") return;
    edge::LogShipperOptions o;
    o.workspace = id.workspace;
    o.node = id.node;
    o.lines_per_second = static_cast<double>(cfg.ship_log_rate);
    o.line_burst = 10.0 * static_cast<double>(cfg.ship_log_rate);
    shipper_ = std::make_unique<edge::LogShipper>(
        o, [&agent](const MqttMessage& m) { return PublishNodeLogs(agent, m); }, clock);
    sink_ = std::make_shared<edge::LogShipperSink>(shipper_.get());
    sink_->set_level(spdlog::level::from_str(cfg.ship_log_level));
    // Before any thread of the node logs (pipelines start after this).
    spdlog::default_logger()->sinks().push_back(sink_);
    shipper_->Start();
  }
  ~NodeLogShipping() { Stop(); }
  NodeLogShipping(const NodeLogShipping&) = delete;
  NodeLogShipping& operator=(const NodeLogShipping&) = delete;

  // Detaches from spdlog and sends what is waiting (once). Idempotent.
  void Stop() {
    if (sink_) sink_->Detach();
    if (shipper_) shipper_->Stop();
  }

 private:
  std::unique_ptr<edge::LogShipper> shipper_;
  std::shared_ptr<edge::LogShipperSink> sink_;
};

Status CheckShipLogConfig(const Config& cfg) {
  const std::string& l = cfg.ship_log_level;
  if (l != "off" && l != "error" && l != "warn" && l != "info") {
    return Error::InvalidArgument("ship-log-level must be warn, error, info or off, not \"" + l + "\"");
  }
  if (cfg.ship_log_rate < 1 || cfg.ship_log_rate > 1000) {
    return Error::InvalidArgument("ship-log-rate must be 1..1000 lines per second");
  }
  return OkStatus();
}

int Run(const Config& cfg, const std::string& token) {
  if (cfg.health_interval < std::chrono::milliseconds(100)) return Fail("health-interval must be at least 100ms");
  if (cfg.cert_renew_percent < 0 || cfg.cert_renew_percent > 99) return Fail("cert-renew-percent must be 0..99");
  if (cfg.desired_wait < std::chrono::milliseconds(0) || cfg.desired_wait > std::chrono::minutes(10)) {
    return Fail("desired-wait must be 0..10m");
  }
  if (cfg.queue_max_bytes < 1024) return Fail("queue-max-bytes must be at least 1024");
  if (auto st = CheckShipLogConfig(cfg); !st.ok()) return Fail(st.error().message);
  const bool had_identity = edge::HasIdentity(cfg.data_dir);
  if (!had_identity) {
    if (token.empty()) {
      return Fail("no identity in " + cfg.data_dir +
                  "; bootstrap first (cairn-edge bootstrap --bootstrap-token-file FILE --data-dir " + cfg.data_dir +
                  ") or give run a token (CAIRN_EDGE_BOOTSTRAP_TOKEN or --bootstrap-token-file FILE)");
    }
    auto id = DoBootstrap(cfg, token);
    if (!id.ok()) return Fail("bootstrap failed: " + id.error().message);
  }
  auto recovered = edge::RecoverRenewedIdentity(cfg.data_dir);
  if (!recovered.ok()) return Fail(recovered.error().message);
  if (!recovered->empty()) spdlog::warn("{}", *recovered);
  auto id = edge::LoadIdentity(cfg.data_dir);
  if (!id.ok()) return Fail(id.error().message);
  if (had_identity) {
    // A token, name or labels only matter to a bootstrap: say that they are
    // not used, and warn when they ask for another node than this one.
    auto notice = edge::IdentityRequestNotice({cfg.data_dir, id->workspace, id->node, id->labels},
                                              {!token.empty(), cfg.name, cfg.labels});
    if (notice && notice->warning) spdlog::warn("{}", notice->message);
    if (notice && !notice->warning) spdlog::info("{}", notice->message);
  }
  if (auto st = edge::CheckPrivateKeyMode(id->key_file()); !st.ok()) return Fail(st.error().message);
  for (const auto& f : edge::TightenIdentityFiles(*id)) spdlog::info("{}: made accessible to its owner only", f);
  auto cert_pem = ReadFile(id->cert_file());
  if (!cert_pem.ok()) return Fail(cert_pem.error().message);
  auto cert = edge::ReadCertificateInfo(*cert_pem);
  if (!cert.ok()) return Fail(id->cert_file() + ": " + cert.error().message + "; bootstrap again");
  Clock& clock = SystemClock::Instance();
  const int64_t now = clock.NowMs();
  if (edge::Expired(*cert, now)) return IdentityFinished(cfg, edge::ExpiredVerdict(*id, *cert, now));
  if (now < cert->not_before_ms) {
    spdlog::warn("the node certificate is valid only from {} but this machine's clock says {}; is the clock right?",
                 edge::FormatUtc(cert->not_before_ms), edge::FormatUtc(now));
  }
  spdlog::info("node certificate {} serial {} valid until {}; renewal due {}", cert->common_name, cert->serial_hex,
               edge::FormatUtc(cert->not_after_ms),
               edge::FormatUtc(edge::RenewalDueMs(*cert, static_cast<int>(cfg.cert_renew_percent))));

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
  // Every failed reconnect reports its CONNACK reason (revocation), and the
  // renewer can reconnect with a new certificate.
  mo.report_reconnect_failures = true;
  MqttMessage will;
  will.topic = topics::NodeStatus(id->workspace, id->node);
  will.payload = edge::Agent::MakeStatus(false, bd_seq, kVersion, "connection lost", clock.NowMs())
                     .SerializeAsString();
  will.qos = 1;
  will.retained = true;
  will.content_type = "cairn.v1.NodeStatus";
  mo.will = will;
  auto mqtt = MakePahoMqttClient(mo);
  std::atomic<edge::Agent*> agent_for_logs{nullptr};
  NodeLogShipping log_shipping(cfg, *id, agent_for_logs, clock);

  edge::AgentOptions ao;
  ao.health_interval = cfg.health_interval;
  ao.agent_version = kVersion;
  ao.bd_seq = bd_seq;
  ao.allow_exec = cfg.allow_exec;
  ao.queue_max_bytes = static_cast<uint64_t>(cfg.queue_max_bytes);
  {
    auto roots = edge::FileRoots::Make({cfg.data_dir, cfg.allow_read, cfg.allow_write});
    if (!roots.ok()) return Fail(roots.error().message);
    if (auto st = roots->EnsureDefaultRoots(); !st.ok()) return Fail(st.error().message);
    for (const auto& w : roots->CheckRoots()) spdlog::warn("{}", w);
    spdlog::info("{}", roots->Describe());
    ao.files = std::make_shared<const edge::FileRoots>(std::move(*roots));
  }
  edge::Agent agent(*id, ao, *mqtt, clock);
  agent_for_logs = &agent;
  // The shipper sends through the agent: on every way out it stops first.
  struct StopShippingFirst {
    NodeLogShipping& shipping;
    ~StopShippingFirst() { shipping.Stop(); }
  } stop_shipping_first{log_shipping};
  edge::IdentityWatch watch(*id, *cert, clock);
  RpcClient rpc(*mqtt);
  edge::RenewOptions ro;
  ro.renew_percent = static_cast<int>(cfg.cert_renew_percent);
  edge::CertificateRenewer renewer(*id, *cert, *mqtt, rpc, clock, ro);
  renewer.SetRenewedHandler([&](const edge::CertificateInfo& c) { watch.SetCertificate(c); });

  mqtt->SetMessageHandler([&](const MqttMessage& m) {
    if (!rpc.OnMessage(m)) agent.OnMessage(m);
  });
  mqtt->SetConnectFailureHandler([&](const ConnectFailure& f) { watch.OnConnectFailure(f); });
  // The agent starts after the first connection; the handler serves the
  // reconnects after it.
  std::atomic<int> connects{0};
  mqtt->SetConnectionHandler([&](bool up) {
    if (up) watch.OnConnected();
    if (!up || connects++ > 0) agent.OnConnection(up);
  });
  // What the node ran before a restart runs again, but never a pipeline
  // deleted or replaced while it was away: with the broker reachable, the
  // retained desired state decides (waited for up to --desired-wait, then
  // the cache); when the first connection fails, the cache at once
  // (docs/deploy-node.md).
  Status st = mqtt->Connect();
  if (!st.ok()) {
    spdlog::info("broker not reachable at start: running the cached desired state");
    agent.Restore();
  }
  // Until the first connection succeeds, retry with back-off (the link may be
  // down for hours). Refusals count towards the watch's verdict.
  auto backoff = std::chrono::seconds(1);
  while (!st.ok()) {
    if (int sig = WaitForSignalOrVerdict(std::chrono::milliseconds(200), watch); sig != 0) {
      spdlog::info("cairn-edge stopping (signal {}) before it ever connected", sig);
      agent.Stop();
      return 0;
    }
    if (auto v = watch.verdict()) {
      agent.Stop();
      return IdentityFinished(cfg, *v);
    }
    spdlog::warn("{}; retrying in {}s (pipelines keep running)", st.error().message, backoff.count());
    if (int sig = WaitForSignalOrVerdict(backoff, watch); sig != 0) {
      spdlog::info("cairn-edge stopping (signal {}) before it ever connected", sig);
      agent.Stop();
      return 0;
    }
    if (auto v = watch.verdict()) {
      agent.Stop();
      return IdentityFinished(cfg, *v);
    }
    backoff = std::min(backoff * 2, std::chrono::seconds(30));
    st = mqtt->Connect();
  }
  if (auto s = agent.Start(); !s.ok()) {
    agent.Stop();
    return Fail(s.error().message);
  }
  if (!agent.WaitForDesired(cfg.desired_wait) && agent.Restore()) {
    spdlog::info("no desired state from the broker within {} ms: running the cached one", cfg.desired_wait.count());
  }
  renewer.Start();
  int sig = 0;
  while (sig == 0 && !watch.verdict()) sig = WaitForSignalOrVerdict(std::chrono::seconds(1), watch);
  renewer.Stop();
  log_shipping.Stop();  // while the agent's connection is still up
  agent.Stop();
  if (sig == 0) return IdentityFinished(cfg, *watch.verdict());
  spdlog::info("cairn-edge stopping (signal {})", sig);
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
  if (cmd == "run" && edge::IsStandaloneRun(args)) return edge::StandaloneMain(args);
  Config cfg;
  ConfigSchema schema;
  cfg.Bind(schema);
  auto rest = LoadConfig(schema, "CAIRN_EDGE", args, kUsage);
  if (!rest.ok()) return Fail(rest.error().message);
  if (!rest->empty()) return Fail("unexpected argument \"" + rest->front() + "\"");
  if (auto st = cfg.log.Init("edge"); !st.ok()) return Fail(st.error().message);

  if (cmd != "bootstrap" && cmd != "run") return Fail("unknown command \"" + cmd + "\" (bootstrap, run)");
  // Held until the process ends, however it ends.
  auto lock = edge::AcquireDataDirLock(cfg.data_dir);
  if (!lock.ok()) return Fail(lock.error().message);
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
  return Run(cfg, *token);
}
