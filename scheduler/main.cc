// cairn-scheduler: wires config, PostgreSQL, the broker and the scheduler
// service together.
//   cairn-scheduler [--config FILE] [--key value ...]
#include <atomic>
#include <cstdio>

#include "cairn/common/db.h"
#include "cairn/common/log.h"
#include "cairn/common/service_main.h"
#include "cairn/registry/migrations.h"
#include "cairn/scheduler/scheduler_service.h"

namespace {

using namespace cairn;

struct Config {
  DatabaseConfig database;
  BrokerConfig broker;
  std::chrono::milliseconds reconcile_interval{30000};
  LogConfig log;

  void Bind(ConfigSchema& s) {
    database.Bind(s);
    broker.Bind(s, "svc:scheduler");
    s.Duration("reconcile-interval", &reconcile_interval,
               "full re-evaluation of every workspace, a safety net for missed events (default 30s)");
    log.Bind(s);
  }
};

int Fail(const std::string& what) { return ExitWithError("cairn-scheduler", what); }

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
  if (auto st = cfg.log.Init("scheduler"); !st.ok()) return Fail(st.error().message);
  if (cfg.database.url.empty()) return Fail("database-url is not set");

  Db db(cfg.database.url);
  if (auto st = db.Connect(cfg.database.WaitSeconds()); !st.ok()) return Fail(st.error().message);
  if (auto st = db.Migrate(SchemaMigrations()); !st.ok()) return Fail("migrations: " + st.error().message);
  auto opts = cfg.broker.ToOptions("scheduler");
  if (!opts.ok()) return Fail(opts.error().message);
  auto mqtt = MakePahoMqttClient(*opts);
  Metrics metrics;
  scheduler::SchedulerService service(db, *mqtt, SystemClock::Instance(), metrics);
  // The first connection is set up below; the handler serves reconnects.
  std::atomic<int> connects{0};
  mqtt->SetMessageHandler([&](const MqttMessage& m) { service.OnMessage(m); });
  mqtt->SetConnectionHandler([&](bool up) {
    if (up && connects++ > 0) service.OnConnected();
  });
  if (auto st = mqtt->Connect(); !st.ok()) return Fail(st.error().message);
  if (auto st = service.Start(); !st.ok()) return Fail(st.error().message);
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
