// cairn-registry: wires config, PostgreSQL, the broker and the registry
// service together.
//   cairn-registry [run] [--config FILE] [--key value ...]
//   cairn-registry pki-init --pki-dir DIR --out-dir DIR [--san NAME]...
//   cairn-registry migrate --database-url URL
#include <atomic>
#include <cstdio>
#include <thread>

#include "cairn/common/db.h"
#include "cairn/common/log.h"
#include "cairn/common/service_main.h"
#include "cairn/registry/migrations.h"
#include "cairn/registry/pki.h"
#include "cairn/registry/registry_service.h"

namespace {

using namespace cairn;

struct Config {
  DatabaseConfig database;
  BrokerConfig broker;
  std::string pki_dir = "/var/lib/cairn/pki";
  std::string bootstrap_broker_url;
  std::string node_broker_url;
  int64_t cert_days = 365;
  std::string broker_access_file;
  std::string admin_password_file;
  LogConfig log;
  // pki-init only
  std::string out_dir;
  std::vector<std::string> sans;

  void Bind(ConfigSchema& s) {
    database.Bind(s);
    broker.Bind(s, "svc:registry");
    s.String("pki-dir", &pki_dir, "directory of the control-plane CA (ca.crt, ca.key)");
    s.String("bootstrap-broker-url", &bootstrap_broker_url,
             "broker URL written into bootstrap tokens (password listener, as nodes reach it)");
    s.String("node-broker-url", &node_broker_url, "broker URL for nodes (mutual-TLS listener)");
    s.Int("cert-days", &cert_days, "validity of node certificates in days (default 365)");
    s.String("broker-access-file", &broker_access_file,
             "where to write the broker's access snapshot (users, roles, integrator credentials)");
    s.String("admin-password-file", &admin_password_file,
             "where to write the first admin's password when there is no user yet (0600)");
    log.Bind(s);
    s.String("out-dir", &out_dir, "pki-init: where to write broker.crt/broker.key/ca.crt");
    s.List("san", &sans, "pki-init: DNS name or IP of the broker");
  }
};

int Fail(const std::string& what) { return ExitWithError("cairn-registry", what); }

int Run(Config& cfg) {
  if (cfg.database.url.empty()) return Fail("database-url is not set");
  auto ca = registry::LoadOrCreateCa(cfg.pki_dir);
  if (!ca.ok()) return Fail(ca.error().message);
  Db db(cfg.database.url);
  if (auto st = db.Connect(cfg.database.WaitSeconds()); !st.ok()) return Fail(st.error().message);
  if (auto st = db.Migrate(SchemaMigrations()); !st.ok()) return Fail("migrations: " + st.error().message);

  auto opts = cfg.broker.ToOptions("registry");
  if (!opts.ok()) return Fail(opts.error().message);
  auto mqtt = MakePahoMqttClient(*opts);
  Metrics metrics;
  registry::RegistryOptions ropts;
  ropts.bootstrap_broker_url = cfg.bootstrap_broker_url;
  ropts.node_broker_url = cfg.node_broker_url;
  ropts.cert_days = static_cast<int>(cfg.cert_days);
  ropts.access_file = cfg.broker_access_file;
  ropts.admin_password_file = cfg.admin_password_file;
  registry::RegistryService service(db, *mqtt, *ca, ropts, SystemClock::Instance(), metrics);
  if (auto st = service.PrepareAccess(); !st.ok()) return Fail(st.error().message);
  mqtt->SetMessageHandler([&](const MqttMessage& m) { service.OnMessage(m); });
  // The first connection is set up below; the handler serves reconnects.
  std::atomic<int> connects{0};
  mqtt->SetConnectionHandler([&](bool up) {
    if (up && connects++ > 0) service.OnConnected();
  });
  if (auto st = mqtt->Connect(); !st.ok()) return Fail(st.error().message);
  if (auto st = service.Start(); !st.ok()) return Fail(st.error().message);
  service.OnConnected();
  spdlog::info("cairn-registry ready (broker {}, bootstrap URL {})", opts->uri, cfg.bootstrap_broker_url);
  int sig = WaitForStopSignal(std::chrono::seconds(2), [&] { service.Sweep(); });
  spdlog::info("cairn-registry stopping (signal {})", sig);
  mqtt->Disconnect();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  BlockStopSignals();
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string cmd = "run";
  if (!args.empty() && args[0].rfind("-", 0) != 0) {
    cmd = args[0];
    args.erase(args.begin());
  }
  Config cfg;
  ConfigSchema schema;
  cfg.Bind(schema);
  auto rest = LoadConfig(schema, "CAIRN_REGISTRY", args,
                         "usage: cairn-registry [run|pki-init|migrate] [--config FILE] [options]");
  if (!rest.ok()) return Fail(rest.error().message);
  if (!rest->empty()) return Fail("unexpected argument \"" + rest->front() + "\"");
  if (auto st = cfg.log.Init("registry"); !st.ok()) return Fail(st.error().message);

  if (cmd == "run") return Run(cfg);
  if (cmd == "pki-init") {
    if (cfg.out_dir.empty()) return Fail("pki-init needs --out-dir");
    auto ca = registry::LoadOrCreateCa(cfg.pki_dir);
    if (!ca.ok()) return Fail(ca.error().message);
    if (cfg.sans.empty()) cfg.sans = {"localhost", "127.0.0.1"};
    if (auto st = registry::EnsureBrokerCert(*ca, cfg.out_dir, cfg.sans); !st.ok()) {
      return Fail(st.error().message);
    }
    std::printf("CA: %s/ca.crt\nbroker certificate: %s/broker.crt\n", cfg.pki_dir.c_str(), cfg.out_dir.c_str());
    return 0;
  }
  if (cmd == "migrate") {
    Db db(cfg.database.url);
    if (auto st = db.Connect(cfg.database.WaitSeconds()); !st.ok()) return Fail(st.error().message);
    if (auto st = db.Migrate(SchemaMigrations()); !st.ok()) return Fail(st.error().message);
    return 0;
  }
  return Fail("unknown command \"" + cmd + "\" (run, pki-init, migrate)");
}
