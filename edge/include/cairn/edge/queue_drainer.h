// QueueDrainer: one thread that empties an OutboundQueue into MQTT, in order,
// at QoS 1, while the link is up. It peeks a window of records, packs the
// stream records of each topic into one batch message (record_batch.h), sends
// each message (and each whole-message record as is), and acks the window in
// the queue only when every message of it was acknowledged by the broker;
// on a failure it keeps the window and tries again after a delay or when
// woken (reconnect), so a record is sent at least once and never skipped.
// A message the broker refuses (PUBACK reason >= 0x80) is retried with
// back-off and, when ClassifyRefusal says it never will be accepted, dropped
// and counted (DrainerStats::refused_*), so one bad message cannot block the
// queue forever.
// A token bucket keeps it under the broker's per-connection message rate.
// It also calls OutboundQueue::Sync about once a second.
// Thread-safety: Start/Stop/Wake/Stats are thread-safe. The drainer holds
// no lock of its caller; it blocks only in its own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cairn/common/mqtt_client.h"
#include "cairn/edge/outbound_queue.h"

namespace cairn::edge {

struct DrainerOptions {
  std::string node;  // sent as the user property cairn-node
  size_t max_records_per_message = 2000;
  size_t max_bytes_per_message = 512 * 1024;  // broker limit: 1 MiB
  // Messages per second and burst; the broker allows a node 50/s (burst
  // 200) shared with health, logs and RPC.
  double messages_per_second = 40;
  double burst = 40;
  std::chrono::milliseconds retry_delay{1000};
  std::chrono::milliseconds sync_interval{1000};
  // How long an idle drainer sleeps on an empty queue before it looks again
  // (an append, Wake or Stop ends the sleep at once): idle wake-ups cost CPU.
  std::chrono::milliseconds idle_wait{30000};
};

struct DrainerStats {
  uint64_t messages_sent = 0;
  uint64_t records_sent = 0;
  uint64_t failures = 0;
  // Messages (and the records in them) dropped because the broker refused
  // them for good, and the last such refusal's text.
  uint64_t refused_messages = 0;
  uint64_t refused_records = 0;
  std::string last_refusal;
};

// What to do with a message the broker refused with `reason_code` (an MQTT
// v5 PUBACK reason) for the `refusals`-th time in a row (1 = first):
//   0x90 topic name invalid, 0x99 payload format invalid: drop at once (the
//     same bytes can never be accepted);
//   0x91 packet identifier in use, and any code < 0x80: retry (not a
//     verdict on the message);
//   anything else (0x87 not authorized, 0x97 quota exceeded, 0x80, 0x83):
//     retry with back-off, drop after kMaxRefusals refusals in a row. Cairn's
//     broker answers 0x87 for its rate limits too, which clear within seconds;
//     a topic it may not write stays refused.
// Pure.
enum class RefusalAction { kRetry, kDrop };
inline constexpr int kMaxRefusals = 5;
RefusalAction ClassifyRefusal(int reason_code, int refusals);

// Token bucket over caller-supplied time (pure; the drainer feeds it the
// steady clock).
class TokenBucket {
 public:
  TokenBucket(double rate_per_s, double burst) : rate_(rate_per_s), burst_(burst), tokens_(burst) {}
  // How long to wait at `now_ms` before one token is available (0: take it
  // now, which TryTake does).
  int64_t WaitMs(int64_t now_ms);
  // Takes a token if one is available at `now_ms`.
  bool TryTake(int64_t now_ms);

 private:
  void Refill(int64_t now_ms);
  double rate_;
  double burst_;
  double tokens_;
  int64_t last_ms_ = -1;
};

// Turns a window of queued records into the messages to send, in order:
// the stream records of each topic packed into batches (at most
// max_records/max_bytes each), whole-message records as they are. Each
// message is paired with the highest seq it carries. Pure.
struct OutgoingMessage {
  MqttMessage message;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  size_t records = 0;
};
std::vector<OutgoingMessage> PackWindow(const std::vector<QueuedRecord>& window, const DrainerOptions& options);

class QueueDrainer {
 public:
  // Sends one message at QoS 1; must return OK only once the broker has
  // acknowledged it (PUBACK), or the at-least-once promise is as weak as
  // the publisher's.
  using PublishFn = std::function<Status(const MqttMessage&)>;
  using ConnectedFn = std::function<bool()>;

  QueueDrainer(OutboundQueue& queue, PublishFn publish, ConnectedFn connected, DrainerOptions options);
  ~QueueDrainer();  // Stop()
  void Start();
  // Stops and joins the thread; bounded by one publish plus ~100 ms.
  void Stop();
  // Wakes the drainer at once (call on reconnect).
  void Wake();
  DrainerStats Stats() const;

 private:
  void Run();
  bool Pause(std::chrono::milliseconds d);  // false if stopping

  OutboundQueue& queue_;
  PublishFn publish_;
  ConnectedFn connected_;
  DrainerOptions options_;
  TokenBucket bucket_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool woken_ = false;
  DrainerStats stats_;
  // Drainer thread only: the message (by its first seq) refused in a row,
  // how often, and the first seqs of messages given up (skipped if a window
  // is sent again; forgotten once acked).
  uint64_t refused_seq_ = 0;
  int refusals_ = 0;
  std::set<uint64_t> given_up_;
  std::thread thread_;
};

}  // namespace cairn::edge
