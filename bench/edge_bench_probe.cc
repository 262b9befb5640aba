// cairn-bench-edge-probe: the measuring half of cairn-bench-edge
// (bench/edge_bench.sh drives the stack, the node and rsyslog; this program
// counts what reaches the broker).
//
//   cairn-bench-edge-probe count --url URL --ca FILE --user NAME --password-file FILE
//       --topic FILTER [--expect N] [--seconds S] [--timeout S] [--idle S] [--ready-file FILE]
//
// Subscribes to FILTER at QoS 1 and counts stream records: a message with the
// content type application/vnd.cairn.records.v1 is decoded with DecodeBatch
// (edge/include/cairn/edge/record_batch.h) and each record counts once per
// (cairn-node, seq); a seq seen before is a duplicate. Any other message
// counts as one "unbatched" record. Touches READY-FILE once subscribed, so
// the driver starts the work only when nothing can be missed.
// Stops when N distinct records arrived (--expect), when S seconds after the
// subscription passed (--seconds), at the timeout (default 600 s), or, with
// --idle S, when records had started to arrive and none came for S seconds
// (the rest is not coming: lost).
// Prints one line of key=value pairs (times are CLOCK_REALTIME in ns, as
// `date +%s%N`):
//   records= distinct= duplicates= unbatched= messages= bad_payloads=
//   subscribed_ns= first_ns= last_ns= timed_out=0|1 stalled=0|1
// Exit: 0 done (expectation met, or the --seconds window ended), 2 timed out
// or stalled before --expect was met, 1 usage or connection error.
// Thread-safety: the message handler runs on the client's dispatcher thread;
// the counters are guarded by one mutex shared with main.
#include <time.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "cairn/common/mqtt_paho.h"
#include "cairn/edge/record_batch.h"

namespace {

int64_t RealtimeNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct Args {
  std::string url, ca, user, password_file, topic, ready_file;
  uint64_t expect = 0;
  double seconds = 0;
  double timeout = 600;
  double idle = 0;  // 0: no idle stop
};

int Usage(const char* why) {
  std::fprintf(stderr,
               "cairn-bench-edge-probe: %s\n"
               "usage: cairn-bench-edge-probe count --url URL --ca FILE --user NAME --password-file FILE\n"
               "         --topic FILTER [--expect N] [--seconds S] [--timeout S] [--idle S] [--ready-file FILE]\n",
               why);
  return 1;
}

// Which seqs of one node were seen: a bitmap indexed by seq (the node's
// queue numbers records 1, 2, 3...; a run holds a few million at most).
class SeenSeqs {
 public:
  // True the first time `seq` is seen.
  bool Insert(uint64_t seq) {
    if (seq >= bits_.size()) bits_.resize(std::max<size_t>(seq + 1, bits_.size() * 2), false);
    if (bits_[seq]) return false;
    bits_[seq] = true;
    return true;
  }

 private:
  std::vector<bool> bits_;
};

struct Counts {
  uint64_t records = 0, distinct = 0, duplicates = 0, unbatched = 0, messages = 0, bad_payloads = 0;
  int64_t first_ns = 0, last_ns = 0;
  std::map<std::string, SeenSeqs> seen;  // by cairn-node
};

int Count(const Args& a) {
  std::string password;
  {
    std::ifstream in(a.password_file);
    if (!in) return Usage(("cannot read " + a.password_file).c_str());
    std::getline(in, password);
  }
  cairn::MqttOptions mo;
  mo.uri = a.url;
  mo.client_id = cairn::RandomClientId("bench-probe");
  mo.username = a.user;
  mo.password = password;
  mo.ca_file = a.ca;
  auto client = cairn::MakePahoMqttClient(mo);

  std::mutex mu;
  std::condition_variable cv;
  Counts c;
  client->SetMessageHandler([&](const cairn::MqttMessage& m) {
    const int64_t now = RealtimeNs();
    std::lock_guard lock(mu);
    ++c.messages;
    uint64_t got = 0;
    if (m.content_type == cairn::edge::kRecordBatchContentType) {
      auto entries = cairn::edge::DecodeBatch(m.payload);
      if (!entries.ok()) {
        ++c.bad_payloads;
        return;
      }
      auto& seen = c.seen[m.UserProperty("cairn-node")];
      for (const auto& e : *entries) {
        ++c.records;
        if (seen.Insert(e.seq)) {
          ++c.distinct;
          ++got;
        } else {
          ++c.duplicates;
        }
      }
    } else {
      ++c.records;
      ++c.unbatched;
      ++c.distinct;
      got = 1;
    }
    if (got > 0) {
      if (c.first_ns == 0) c.first_ns = now;
      c.last_ns = now;
    }
    if (a.expect > 0 && c.distinct >= a.expect) cv.notify_all();
  });
  if (auto st = client->Connect(); !st.ok()) {
    std::fprintf(stderr, "cairn-bench-edge-probe: connect to %s: %s\n", a.url.c_str(), st.error().message.c_str());
    return 1;
  }
  if (auto st = client->Subscribe(a.topic, 1); !st.ok()) {
    std::fprintf(stderr, "cairn-bench-edge-probe: subscribe %s: %s\n", a.topic.c_str(), st.error().message.c_str());
    return 1;
  }
  const int64_t subscribed_ns = RealtimeNs();
  if (!a.ready_file.empty()) std::ofstream(a.ready_file) << subscribed_ns << "\n";

  using namespace std::chrono;
  const auto start = steady_clock::now();
  const auto window = a.seconds > 0 ? duration<double>(a.seconds) : duration<double>(a.timeout);
  const auto deadline = start + duration_cast<steady_clock::duration>(window);
  bool timed_out = false, stalled = false;
  {
    std::unique_lock lock(mu);
    if (a.expect > 0) {
      // Wakes on every record that completes the count, else every 200 ms
      // to look at the deadline and the idle time.
      const auto idle_ns = static_cast<int64_t>(a.idle * 1e9);
      while (c.distinct < a.expect) {
        if (steady_clock::now() >= deadline) {
          timed_out = true;
          break;
        }
        if (idle_ns > 0 && c.last_ns != 0 && RealtimeNs() - c.last_ns > idle_ns) {
          stalled = true;
          break;
        }
        cv.wait_for(lock, milliseconds(200), [&] { return c.distinct >= a.expect; });
      }
    } else {
      cv.wait_until(lock, deadline, [] { return false; });
    }
  }
  client->Disconnect();
  std::lock_guard lock(mu);
  std::printf(
      "records=%llu distinct=%llu duplicates=%llu unbatched=%llu messages=%llu bad_payloads=%llu "
      "subscribed_ns=%lld first_ns=%lld last_ns=%lld timed_out=%d stalled=%d\n",
      static_cast<unsigned long long>(c.records), static_cast<unsigned long long>(c.distinct),
      static_cast<unsigned long long>(c.duplicates), static_cast<unsigned long long>(c.unbatched),
      static_cast<unsigned long long>(c.messages), static_cast<unsigned long long>(c.bad_payloads),
      static_cast<long long>(subscribed_ns), static_cast<long long>(c.first_ns), static_cast<long long>(c.last_ns),
      timed_out ? 1 : 0, stalled ? 1 : 0);
  std::fflush(stdout);
  return timed_out || stalled ? 2 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) != "count") return Usage("the only command is count");
  Args a;
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) return Usage(("missing value for " + k).c_str());
    std::string v = argv[++i];
    if (k == "--url") a.url = v;
    else if (k == "--ca") a.ca = v;
    else if (k == "--user") a.user = v;
    else if (k == "--password-file") a.password_file = v;
    else if (k == "--topic") a.topic = v;
    else if (k == "--ready-file") a.ready_file = v;
    else if (k == "--expect") a.expect = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--seconds") a.seconds = std::strtod(v.c_str(), nullptr);
    else if (k == "--timeout") a.timeout = std::strtod(v.c_str(), nullptr);
    else if (k == "--idle") a.idle = std::strtod(v.c_str(), nullptr);
    else return Usage(("unknown option " + k).c_str());
  }
  if (a.url.empty() || a.ca.empty() || a.user.empty() || a.password_file.empty() || a.topic.empty()) {
    return Usage("--url, --ca, --user, --password-file and --topic are required");
  }
  if (a.timeout <= 0) return Usage("--timeout must be positive");
  return Count(a);
}
