// cairn-scheduler: wires config, PostgreSQL, the broker and the scheduler
// service together.
//   cairn-scheduler [--config FILE] [--key value ...]
#include <cstdio>

#include "cairn/common/db.h"
#include "cairn/common/log.h"
#include "cairn/common/service_main.h"
#include "cairn/registry/migrations.h"
#include "cairn/scheduler/scheduler_service.h"

namespace {

using namespace cairn;

struct Config {
  std::string database_url;
  std::chrono::milliseconds database_wait{30000};
  BrokerConfig broker;
  std::chrono::milliseconds reconcile_interval{30000};
  std::string log_level = "info";
  std::string log_file;

  void Bind(ConfigSchema& s) {
    s.String("database-url", &database_url, "PostgreSQL connection URL");
    s.Duration("database-wait", &database_wait, "how long to retry the first database connection (default 30s)");
    broker.Bind(s, "svc:scheduler");
    s.Duration("reconcile-interval", &reconcile_interval,
               "full re-evaluation of every workspace, a safety net for missed events (default 30s)");
    s.String("log-level", &log_level, "trace|debug|info|warn|error (default info)");
    s.String("log-file", &log_file, "log to this file instead of stderr");
  }
};

int Fail(const std::string& what) {
  std::fprintf(stderr, "cairn-scheduler: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  BlockStopSignals();
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "run") args.erase(args.begin());
  Config cfg;
  ConfigSchema schema;
  cfg.Bind(schema);
  auto rest = LoadConfig(schema, "CAIRN_SCHEDULER", args,
                         "usage: cairn-scheduler [run] [--config FILE] [options]");
  if (!rest.ok()) return Fail(rest.error().message);
  if (!rest->empty()) return Fail("unexpected argument \"" + rest->front() + "\"");
  if (auto st = InitLogging("scheduler", cfg.log_level, cfg.log_file); !st.ok()) return Fail(st.error().message);
  if (cfg.database_url.empty()) return Fail("database-url is not set");

  Db db(cfg.database_url);
  if (auto st = db.Connect(static_cast<int>(std::max<int64_t>(1, cfg.database_wait.count() / 1000))); !st.ok()) return Fail(st.error().message);
  if (auto st = db.Migrate(SchemaMigrations()); !st.ok()) return Fail("migrations: " + st.error().message);
  auto opts = cfg.broker.ToOptions("scheduler");
  if (!opts.ok()) return Fail(opts.error().message);
  auto mqtt = MakePahoMqttClient(*opts);
  Metrics metrics;
  scheduler::SchedulerService service(db, *mqtt, SystemClock::Instance(), metrics);
  bool started = false;
  mqtt->SetMessageHandler([&](const MqttMessage& m) { service.OnMessage(m); });
  mqtt->SetConnectionHandler([&](bool up) {
    if (up && started) service.OnConnected();
  });
  if (auto st = mqtt->Connect(); !st.ok()) return Fail(st.error().message);
  if (auto st = service.Start(); !st.ok()) return Fail(st.error().message);
  started = true;
  service.OnConnected();
  spdlog::info("cairn-scheduler ready (broker {})", opts->uri);
  auto last = std::chrono::steady_clock::now();
  int sig = WaitForStopSignal(std::chrono::seconds(1), [&] {
    if (std::chrono::steady_clock::now() - last >= cfg.reconcile_interval) {
      last = std::chrono::steady_clock::now();
      service.ReconcileAll();
    }
  });
  spdlog::info("cairn-scheduler stopping (signal {})", sig);
  mqtt->Disconnect();
  return 0;
}
