// cairn-bench-edge-queue: measures the candidates for the node's outbound
// queue on this machine (docs/design/edge-queue.md):
//   paho-memory   Paho's own offline buffering (send_while_disconnected,
//                 max_buffered_messages), no persistence
//   paho-file     the same with Paho's file persistence (one file per message)
//   sqlite-wal    SQLite, WAL, synchronous=NORMAL, one transaction per record
//   segmented-log Cairn's OutboundQueue (edge/src/outbound_queue.cc)
// For each: write rate (records appended while offline), drain rate, CPU per
// record, peak RSS growth, and crash safety: a child appends until it is
// killed with SIGKILL at a random point, the queue is reopened and checked
// (records the child had been told were stored are all there, no damaged
// record is served, order kept). Drain for the Paho candidates goes to a
// throw-away Mosquitto (one MQTT message per record, as Paho sends them);
// for the stores it is read + ack, and once end to end through the
// QueueDrainer into Mosquitto with batched payloads.
// Usage: cairn-bench-edge-queue [--records N] [--size BYTES] [--crashes K]
//        [--paho-records N]
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mqtt/async_client.h>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cairn/edge/outbound_queue.h"
#include "cairn/edge/queue_drainer.h"
#include "cairn/edge/record_batch.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using cairn::edge::QueuedRecord;

namespace {

size_t g_records = 100000;
size_t g_paho_records = 20000;
size_t g_size = 200;
int g_crashes = 10;
int g_port = 0;
fs::path g_root;
pid_t g_broker = -1;

std::string Payload(uint64_t i) {
  std::string p = "rec-" + std::to_string(i) + " ";
  while (p.size() < g_size) p.push_back(static_cast<char>('a' + (i + p.size()) % 26));
  return p;
}
// The index a payload claims, or 0 if its bytes do not match Payload(index).
uint64_t CheckPayload(const std::string& p) {
  if (p.rfind("rec-", 0) != 0) return 0;
  uint64_t i = std::strtoull(p.c_str() + 4, nullptr, 10);
  return i != 0 && Payload(i) == p ? i : 0;
}

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
long StatusKib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) return std::strtol(line.c_str() + std::strlen(key) + 1, nullptr, 10);
  }
  return -1;
}

struct Figures {
  double write_rps = 0, write_us_cpu = 0, drain_rps = 0, drain_us_cpu = 0;
  long rss_growth_kib = 0;
  std::string note;
};

void Print(const char* name, const Figures& f) {
  if (f.write_rps == 0) {  // drain only
    std::printf("%-22s write         -                          | drain %9.0f rec/s %6.1f us-cpu/rec | RSS +%6ld KiB %s\n",
                name, f.drain_rps, f.drain_us_cpu, f.rss_growth_kib, f.note.c_str());
    return;
  }
  std::printf("%-22s write %9.0f rec/s %6.1f us-cpu/rec | drain %9.0f rec/s %6.1f us-cpu/rec | RSS +%6ld KiB %s\n",
              name, f.write_rps, f.write_us_cpu, f.drain_rps, f.drain_us_cpu, f.rss_growth_kib, f.note.c_str());
  std::fflush(stdout);
}

// Runs `fn` in a forked child, so that RSS and CPU are its own.
void InChild(const std::function<void()>& fn) {
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    g_broker = -1;  // the parent's
    try {
      fn();
    } catch (const std::exception& e) {
      std::printf("error: %s\n", e.what());
    }
    std::fflush(stdout);
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
}

// ---------------------------------------------------------------- broker

int FreePort() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

bool StartBroker() {
  g_port = FreePort();
  fs::path conf = g_root / "mosquitto.conf";
  std::ofstream(conf) << "listener " << g_port << " 127.0.0.1\nallow_anonymous true\npersistence false\n"
                      << "max_queued_messages 0\nmax_inflight_messages 0\nlog_dest none\n";
  g_broker = fork();
  if (g_broker == 0) {
    execl("/usr/sbin/mosquitto", "mosquitto", "-c", conf.c_str(), nullptr);
    _exit(127);
  }
  for (int i = 0; i < 200; ++i) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(g_port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(s);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::string Uri() { return "tcp://127.0.0.1:" + std::to_string(g_port); }

mqtt::connect_options ConnectOptions(bool clean) {
  return mqtt::connect_options_builder().mqtt_version(MQTTVERSION_5).clean_start(clean).finalize();
}

// Counts messages arriving on a topic filter, keeping their payloads.
class Subscriber : public mqtt::callback {
 public:
  explicit Subscriber(const std::string& filter)
      : client_(Uri(), "bench-sub-" + std::to_string(getpid()) + "-" + std::to_string(counter_++),
                mqtt::create_options(MQTTVERSION_5)) {
    client_.set_callback(*this);
    client_.connect(ConnectOptions(true))->wait();
    client_.subscribe(filter, 1)->wait();
  }
  ~Subscriber() override {
    try {
      client_.disconnect()->wait();
    } catch (...) {
    }
  }
  void message_arrived(mqtt::const_message_ptr m) override {
    std::lock_guard lock(mu_);
    payloads_.push_back(m->to_string());
    cv_.notify_all();
  }
  // Waits until `n` arrived, or nothing arrived for `idle`.
  std::vector<std::string> WaitFor(size_t n, std::chrono::milliseconds idle) {
    std::unique_lock lock(mu_);
    size_t seen = payloads_.size();
    while (payloads_.size() < n) {
      if (!cv_.wait_for(lock, idle, [&] { return payloads_.size() != seen; })) break;
      seen = payloads_.size();
    }
    return payloads_;
  }

 private:
  static inline int counter_ = 0;
  mqtt::async_client client_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> payloads_;
};

// ---------------------------------------------------------------- stores
// A store candidate: append while offline, then drain (read + ack).
class Store {
 public:
  virtual ~Store() = default;
  virtual bool Append(const std::string& payload) = 0;
  // Reads and acks up to `n` records in order; returns them.
  virtual std::vector<std::string> DrainSome(size_t n) = 0;
};

class LogStore : public Store {
 public:
  explicit LogStore(const fs::path& dir) {
    cairn::edge::SegmentedLogOptions o;
    o.dir = dir.string();
    o.max_bytes = 1ull << 30;
    auto q = cairn::edge::OpenSegmentedLogQueue(o);
    if (!q.ok()) {
      std::fprintf(stderr, "open: %s\n", q.error().message.c_str());
      std::exit(1);
    }
    q_ = std::move(*q);
  }
  bool Append(const std::string& p) override {
    return q_->Append(QueuedRecord::Kind::kStreamRecord, "cairn/v1/ws/bench/data/s", "", p).ok();
  }
  std::vector<std::string> DrainSome(size_t n) override {
    std::vector<std::string> out;
    auto r = q_->Peek(n, 512 * 1024);
    if (!r.ok() || r->empty()) return out;
    for (auto& rec : *r) out.push_back(std::move(rec.payload));
    (void)q_->Ack(r->back().seq);
    return out;
  }
  cairn::edge::OutboundQueue& queue() { return *q_; }

 private:
  std::unique_ptr<cairn::edge::OutboundQueue> q_;
};

class SqliteStore : public Store {
 public:
  explicit SqliteStore(const fs::path& dir) {
    fs::create_directories(dir);
    sqlite3_open((dir / "queue.db").c_str(), &db_);
    Exec("PRAGMA journal_mode=WAL");
    Exec("PRAGMA synchronous=NORMAL");
    Exec("CREATE TABLE IF NOT EXISTS q (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT, payload BLOB)");
    sqlite3_prepare_v2(db_, "INSERT INTO q (topic, payload) VALUES (?1, ?2)", -1, &ins_, nullptr);
    sqlite3_prepare_v2(db_, "SELECT seq, payload FROM q ORDER BY seq LIMIT ?1", -1, &sel_, nullptr);
    sqlite3_prepare_v2(db_, "DELETE FROM q WHERE seq <= ?1", -1, &del_, nullptr);
  }
  ~SqliteStore() override {
    sqlite3_finalize(ins_);
    sqlite3_finalize(sel_);
    sqlite3_finalize(del_);
    sqlite3_close(db_);
  }
  bool Append(const std::string& p) override {
    sqlite3_bind_text(ins_, 1, "cairn/v1/ws/bench/data/s", -1, SQLITE_STATIC);
    sqlite3_bind_blob(ins_, 2, p.data(), static_cast<int>(p.size()), SQLITE_STATIC);
    bool ok = sqlite3_step(ins_) == SQLITE_DONE;
    sqlite3_reset(ins_);
    return ok;
  }
  std::vector<std::string> DrainSome(size_t n) override {
    std::vector<std::string> out;
    sqlite3_bind_int64(sel_, 1, static_cast<sqlite3_int64>(n));
    sqlite3_int64 last = 0;
    while (sqlite3_step(sel_) == SQLITE_ROW) {
      last = sqlite3_column_int64(sel_, 0);
      out.emplace_back(static_cast<const char*>(sqlite3_column_blob(sel_, 1)), sqlite3_column_bytes(sel_, 1));
    }
    sqlite3_reset(sel_);
    if (last) {
      sqlite3_bind_int64(del_, 1, last);
      sqlite3_step(del_);
      sqlite3_reset(del_);
    }
    return out;
  }

 private:
  void Exec(const char* sql) { sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }
  sqlite3* db_ = nullptr;
  sqlite3_stmt* ins_ = nullptr;
  sqlite3_stmt* sel_ = nullptr;
  sqlite3_stmt* del_ = nullptr;
};

void BenchStore(const char* name, const std::function<std::unique_ptr<Store>(const fs::path&)>& make) {
  fs::path dir = g_root / name;
  fs::remove_all(dir);
  InChild([&] {
    Figures f;
    long base = StatusKib("VmRSS:");
    auto store = make(dir);
    double c0 = CpuSeconds();
    auto t0 = Clock::now();
    for (size_t i = 1; i <= g_records; ++i) {
      if (!store->Append(Payload(i))) {
        std::printf("%s: append %zu failed\n", name, i);
        return;
      }
    }
    auto t1 = Clock::now();
    double c1 = CpuSeconds();
    f.write_rps = g_records / Seconds(t0, t1);
    f.write_us_cpu = (c1 - c0) * 1e6 / g_records;
    size_t got = 0;
    uint64_t expect = 1;
    bool in_order = true;
    for (;;) {
      auto batch = store->DrainSome(2000);
      if (batch.empty()) break;
      for (auto& p : batch) in_order &= CheckPayload(p) == expect++;
      got += batch.size();
    }
    auto t2 = Clock::now();
    f.drain_rps = got / Seconds(t1, t2);
    f.drain_us_cpu = (CpuSeconds() - c1) * 1e6 / std::max<size_t>(got, 1);
    f.rss_growth_kib = StatusKib("VmHWM:") - base;
    uintmax_t bytes = 0;
    for (auto& e : fs::recursive_directory_iterator(dir)) {
      if (e.is_regular_file()) bytes += e.file_size();
    }
    f.note = "(read+ack; " + std::to_string(got) + " drained" + (in_order ? ", in order" : ", OUT OF ORDER") +
             "; disk after drain " + std::to_string(bytes / 1024) + " KiB)";
    Print(name, f);
  });
  fs::remove_all(dir);
}

// Segmented log drained end to end by the QueueDrainer into Mosquitto,
// each batch waiting for its PUBACK.
void BenchLogEndToEnd() {
  fs::path dir = g_root / "log-e2e";
  fs::remove_all(dir);
  InChild([&] {
    Figures f;
    long base = StatusKib("VmRSS:");
    LogStore store(dir);
    for (size_t i = 1; i <= g_records; ++i) store.Append(Payload(i));
    Subscriber sub("cairn/v1/ws/bench/data/#");
    mqtt::async_client client(Uri(), "bench-e2e-" + std::to_string(getpid()), mqtt::create_options(MQTTVERSION_5));
    client.connect(ConnectOptions(true))->wait();
    auto publish = [&](const cairn::MqttMessage& m) -> cairn::Status {
      auto msg = mqtt::make_message(m.topic, m.payload, m.qos, false);
      mqtt::properties props;
      for (auto& [k, v] : m.user_properties) props.add(mqtt::property(mqtt::property::USER_PROPERTY, k, v));
      msg->set_properties(props);
      try {
        client.publish(msg)->wait();
      } catch (const mqtt::exception& e) {
        return cairn::Error::Unavailable(e.what());
      }
      return cairn::OkStatus();
    };
    cairn::edge::DrainerOptions o;
    o.node = "bench";
    cairn::edge::QueueDrainer drainer(store.queue(), publish, [] { return true; }, o);
    double c0 = CpuSeconds();
    auto t0 = Clock::now();
    drainer.Start();
    while (store.queue().Stats().depth > 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    auto t1 = Clock::now();
    double c1 = CpuSeconds();
    drainer.Stop();
    size_t got = 0;
    uint64_t expect = 1;
    bool ok = true;
    for (auto& p : sub.WaitFor(drainer.Stats().messages_sent, std::chrono::seconds(2))) {
      auto d = cairn::edge::DecodeBatch(p);
      if (!d.ok()) {
        ok = false;
        continue;
      }
      for (auto& e : *d) ok &= e.seq == expect++ && CheckPayload(e.record) == e.seq;
      got += d->size();
    }
    f.drain_rps = g_records / Seconds(t0, t1);
    f.drain_us_cpu = (c1 - c0) * 1e6 / g_records;
    f.rss_growth_kib = StatusKib("VmHWM:") - base;
    f.note = "(QueueDrainer -> mosquitto, " + std::to_string(drainer.Stats().messages_sent) + " batches; " +
             std::to_string(got) + " records received" + (ok ? ", in order" : ", DAMAGED/OUT OF ORDER") +
             "; rate limit 40 msg/s)";
    Print("segmented-log e2e", f);
  });
  fs::remove_all(dir);
}

void BenchPaho(const char* name, bool file) {
  fs::path dir = g_root / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  InChild([&] {
    Figures f;
    long base = StatusKib("VmRSS:");
    size_t n = g_paho_records;
    Subscriber sub("bench/paho/#");
    mqtt::create_options co(MQTTVERSION_5, static_cast<int>(n));
    co.set_send_while_disconnected(true, true);
    std::string id = std::string("bench-") + name + "-" + std::to_string(getpid());
    std::unique_ptr<mqtt::async_client> client;
    if (file) {
      client = std::make_unique<mqtt::async_client>(Uri(), id, co, dir.string());
    } else {
      client = std::make_unique<mqtt::async_client>(Uri(), id, co, nullptr);
    }
    double c0 = CpuSeconds();
    auto t0 = Clock::now();
    for (size_t i = 1; i <= n; ++i) client->publish("bench/paho/s", Payload(i), 1, false);
    auto t1 = Clock::now();
    double c1 = CpuSeconds();
    f.write_rps = n / Seconds(t0, t1);
    f.write_us_cpu = (c1 - c0) * 1e6 / n;
    client->connect(ConnectOptions(true))->wait();
    auto got = sub.WaitFor(n, std::chrono::seconds(3));
    auto t2 = Clock::now();
    f.drain_rps = got.size() / Seconds(t1, t2);
    f.drain_us_cpu = (CpuSeconds() - c1) * 1e6 / std::max<size_t>(got.size(), 1);
    f.rss_growth_kib = StatusKib("VmHWM:") - base;
    bool in_order = true;
    for (size_t i = 0; i < got.size(); ++i) in_order &= CheckPayload(got[i]) == i + 1;
    f.note = "(" + std::to_string(n) + " records, 1 MQTT message each; " + std::to_string(got.size()) +
             " received" + (in_order ? ", in order" : ", OUT OF ORDER") +
             "; drain includes connect; subscriber in the same process)";
    client->disconnect()->wait();
    Print(name, f);
  });
  fs::remove_all(dir);
}

// ---------------------------------------------------------------- crashes
struct CrashResult {
  int runs = 0, runs_with_loss = 0, runs_with_damage = 0, runs_out_of_order = 0, runs_torn_tail = 0;
  uint64_t confirmed = 0, recovered = 0;
};

// Forks a child running `writer(counter)` (which bumps *counter after each
// stored record), kills it with SIGKILL once it has stored `target`, and
// returns the count it had confirmed.
uint64_t KillMidWrite(const std::function<void(std::atomic<uint64_t>*)>& writer, uint64_t target) {
  auto* counter = static_cast<std::atomic<uint64_t>*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  new (counter) std::atomic<uint64_t>(0);
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    writer(counter);
    _exit(0);
  }
  while (counter->load() < target) std::this_thread::sleep_for(std::chrono::microseconds(200));
  kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  uint64_t confirmed = counter->load();
  munmap(counter, 4096);
  return confirmed;
}

void Check(CrashResult& r, uint64_t confirmed, const std::vector<std::string>& got) {
  ++r.runs;
  r.confirmed += confirmed;
  r.recovered += got.size();
  bool damaged = false, ordered = true;
  for (size_t i = 0; i < got.size(); ++i) {
    uint64_t idx = CheckPayload(got[i]);
    if (idx == 0) damaged = true;
    if (idx != i + 1) ordered = false;
  }
  if (got.size() < confirmed) ++r.runs_with_loss;
  if (damaged) ++r.runs_with_damage;
  if (!ordered) ++r.runs_out_of_order;
}

void PrintCrash(const char* name, const CrashResult& r, const std::string& extra = "") {
  std::printf("%-22s kill -9 x%d: confirmed %llu, recovered %llu; runs with loss %d, with a damaged record served %d, "
              "out of order %d%s\n",
              name, r.runs, static_cast<unsigned long long>(r.confirmed), static_cast<unsigned long long>(r.recovered),
              r.runs_with_loss, r.runs_with_damage, r.runs_out_of_order, extra.c_str());
  std::fflush(stdout);
}

void CrashStore(const char* name, const std::function<std::unique_ptr<Store>(const fs::path&)>& make, int runs) {
  CrashResult r;
  std::mt19937 rng(42);
  for (int i = 0; i < runs; ++i) {
    fs::path dir = g_root / (std::string("crash-") + name);
    fs::remove_all(dir);
    uint64_t target = std::uniform_int_distribution<uint64_t>(1000, 30000)(rng);
    uint64_t confirmed = KillMidWrite(
        [&](std::atomic<uint64_t>* counter) {
          auto s = make(dir);
          for (uint64_t k = 1;; ++k) {
            if (!s->Append(Payload(k))) _exit(3);
            counter->store(k);
          }
        },
        target);
    std::vector<std::string> got;
    {
      auto s = make(dir);
      for (;;) {
        auto b = s->DrainSome(5000);
        if (b.empty()) break;
        for (auto& p : b) got.push_back(std::move(p));
      }
    }
    Check(r, confirmed, got);
    fs::remove_all(dir);
  }
  PrintCrash(name, r);
}

void CrashPaho(const char* name, bool file, int runs) {
  CrashResult r;
  std::mt19937 rng(7);
  for (int i = 0; i < runs; ++i) {
    fs::path dir = g_root / (std::string("crash-") + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::string id = std::string("bench-crash-") + name + "-" + std::to_string(i);
    std::string topic = "bench/crash/" + std::string(name) + "/" + std::to_string(i);
    uint64_t target = std::uniform_int_distribution<uint64_t>(1000, 5000)(rng);
    auto make = [&] {
      mqtt::create_options co(MQTTVERSION_5, 1000000);
      co.set_send_while_disconnected(true, true);
      co.set_restore_messages(true);
      return file ? std::make_unique<mqtt::async_client>(Uri(), id, co, dir.string())
                  : std::make_unique<mqtt::async_client>(Uri(), id, co, nullptr);
    };
    uint64_t confirmed = KillMidWrite(
        [&](std::atomic<uint64_t>* counter) {
          auto c = make();
          for (uint64_t k = 1;; ++k) {
            c->publish(topic, Payload(k), 1, false);
            counter->store(k);
          }
        },
        target);
    std::vector<std::string> got;
    InChild([&] {});  // keep stdout ordering simple
    {
      Subscriber sub(topic);
      auto c = make();
      c->connect(ConnectOptions(false))->wait();
      got = sub.WaitFor(confirmed, std::chrono::seconds(3));
      c->disconnect()->wait();
    }
    Check(r, confirmed, got);
    fs::remove_all(dir);
  }
  PrintCrash(name, r);
}

}  // namespace

void StopBroker() {
  if (g_broker > 0) {
    kill(g_broker, SIGTERM);
    waitpid(g_broker, nullptr, 0);
    g_broker = -1;
  }
}

int Main(int argc, char** argv);

int main(int argc, char** argv) {
  try {
    int rc = Main(argc, argv);
    StopBroker();
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    StopBroker();
    return 1;
  }
}

int Main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--records") g_records = std::stoul(argv[i + 1]);
    else if (a == "--paho-records") g_paho_records = std::stoul(argv[i + 1]);
    else if (a == "--size") g_size = std::stoul(argv[i + 1]);
    else if (a == "--crashes") g_crashes = std::stoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--records N] [--paho-records N] [--size BYTES] [--crashes K]\n", argv[0]);
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  g_root = fs::temp_directory_path() / ("cairn-queue-bench-" + std::to_string(getpid()));
  fs::create_directories(g_root);

  utsname u{};
  uname(&u);
  std::ifstream cpu("/proc/cpuinfo");
  std::string line, model;
  while (std::getline(cpu, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  std::printf("machine: %s, %u cpus, kernel %s, fs of %s\n", model.c_str(), std::thread::hardware_concurrency(),
              u.release, g_root.c_str());
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("params: %zu records of %zu bytes (Paho: %zu), %d kill -9 runs per store, SQLite %s\n", g_records,
              g_size, g_paho_records, g_crashes, sqlite3_libversion());
  if (!StartBroker()) {
    std::fprintf(stderr, "cannot start mosquitto\n");
    return 1;
  }

  auto make_log = [](const fs::path& d) -> std::unique_ptr<Store> { return std::make_unique<LogStore>(d); };
  auto make_sqlite = [](const fs::path& d) -> std::unique_ptr<Store> { return std::make_unique<SqliteStore>(d); };

  BenchPaho("paho-memory", false);
  BenchPaho("paho-file", true);
  BenchStore("sqlite-wal", make_sqlite);
  BenchStore("segmented-log", make_log);
  BenchLogEndToEnd();

  CrashPaho("paho-memory", false, 1);
  CrashPaho("paho-file", true, std::max(1, g_crashes / 3));
  CrashStore("sqlite-wal", make_sqlite, g_crashes);
  CrashStore("segmented-log", make_log, g_crashes);

  StopBroker();
  fs::remove_all(g_root);
  return 0;
}
