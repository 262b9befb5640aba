// LogShipper: the node's own log lines -- the agent's warnings and errors
// (through the spdlog sink below) and lines its pipelines log (Add) -- sent,
// rate-limited and batched, to cairn/v1/ws/{ws}/nodes/{node}/logs as
// cairn.v1.NodeLogs (QoS 1, not retained; `cairnctl node logs NODE -f`).
//
// Limits (LogShipperOptions, defaults in brackets):
//   - rate: a token bucket over all lines [20 lines/s sustained, bursts of
//     200]; a line over it is dropped and counted;
//   - one line: at most max_line_bytes [2 KiB] (cut at a UTF-8 boundary and
//     marked `truncated`); bytes that are not UTF-8 become "\xNN";
//   - one message: at most one per min_interval [1 s], at most
//     max_batch_bytes serialized [64 KiB, far below the broker's 1 MiB];
//     what does not fit waits for the next message;
//   - waiting lines (link down, publish failing): at most
//     max_buffered_bytes [256 KiB]; beyond it the oldest are dropped and
//     counted.
// Every message carries the lines dropped since the previous message sent
// and since start (`dropped`, `dropped_total`); a message with no lines is
// sent when only drops are to report.
//
// Publishing goes through one LogPublishFn (in cairn-edge: Agent::Enqueue,
// the node's on-disk queue for its own messages, docs/design/edge-queue.md).
// No feedback loop: the shipper never logs, lines logged on the thread that
// is publishing a batch (e.g. the MQTT client reporting the failure) are not
// shipped, and a failed publish is only counted (stats()).
//
// Thread-safety: Add and stats are thread-safe and never block on the
// network (short mutexes only; lock order: thread mutex, then state mutex,
// and Add never holds both). Tick runs on one thread at a time (the
// shipper's own, after Start); it publishes outside the mutexes.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include <spdlog/common.h>
#include <spdlog/sinks/base_sink.h>

#include "cairn/common/clock.h"
#include "cairn/common/mqtt_client.h"
#include "cairn/common/result.h"
#include "cairn/v1/node.pb.h"

namespace cairn::edge {

inline constexpr char kNodeLogsContentType[] = "cairn.v1.NodeLogs";

struct LogShipperOptions {
  std::string workspace;
  std::string node;
  double lines_per_second = 20;
  double line_burst = 200;
  size_t max_line_bytes = 2048;
  size_t max_batch_bytes = 64 * 1024;
  size_t max_buffered_bytes = 256 * 1024;
  std::chrono::milliseconds min_interval{1000};
  // How often the shipper's own thread (Start) calls Tick while lines or
  // drops wait; with nothing waiting it sleeps until Add has news (at most
  // idle_period), so an idle node does not wake up for its logs.
  std::chrono::milliseconds tick_period{200};
  std::chrono::milliseconds idle_period{60000};
};

// Sends one NodeLogs message. Returns an error when it could not be sent
// (the lines are kept and sent again later).
using LogPublishFn = std::function<Status(const MqttMessage&)>;

struct LogShipperStats {
  uint64_t lines_accepted = 0;
  uint64_t lines_sent = 0;
  uint64_t dropped_rate = 0;    // over the rate limit
  uint64_t dropped_buffer = 0;  // oldest dropped from a full buffer
  uint64_t batches_sent = 0;
  uint64_t publish_failures = 0;
  uint64_t buffered_lines = 0;
};

class LogShipper {
 public:
  LogShipper(LogShipperOptions options, LogPublishFn publish, const Clock& clock);
  ~LogShipper();  // ends the thread; sends nothing (call Stop() for that)
  LogShipper(const LogShipper&) = delete;
  LogShipper& operator=(const LogShipper&) = delete;

  // Queues one line; `pipeline` is "" for the agent itself, `timestamp_ms`
  // 0 means now. Dropped (counted) over the rate limit; ignored on a thread
  // that is inside this shipper's publish.
  void Add(v1::LogLine::Level level, std::string_view pipeline, std::string_view text, int64_t timestamp_ms = 0);

  // Sends one batch when min_interval has passed since the last attempt and
  // lines or drops are waiting. Returns true if a message was published.
  bool Tick();

  // Starts a thread that calls Tick every tick_period; Stop ends it and then
  // tries once more to send what is waiting. Both idempotent.
  void Start();
  void Stop();

  LogShipperStats stats() const;

  // The MQTT message for `logs` (topic, content type, QoS 1, not retained).
  static MqttMessage MakeMessage(const std::string& workspace, const std::string& node, const v1::NodeLogs& logs);

 private:
  bool SendBatch(bool ignore_interval);

  const LogShipperOptions options_;
  const LogPublishFn publish_;
  const Clock& clock_;

  mutable std::mutex mu_;
  std::deque<v1::LogLine> pending_;
  size_t pending_bytes_ = 0;
  double tokens_;
  int64_t tokens_at_ms_;
  int64_t last_attempt_ms_ = 0;
  bool attempted_ = false;
  uint64_t dropped_unreported_ = 0;
  uint64_t dropped_total_ = 0;
  uint64_t seq_ = 0;
  LogShipperStats stats_;

  std::mutex thread_mu_;
  std::condition_variable thread_cv_;
  bool stopping_ = false;
  bool wake_ = false;
  std::thread thread_;
};

// A spdlog sink that hands every record at its level or above (set_level;
// the node uses warn) to a LogShipper; "pipeline NAME ..." messages are
// attributed to pipeline NAME. Detach() before the shipper goes away; after
// it the sink does nothing.
class LogShipperSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit LogShipperSink(LogShipper* shipper) : shipper_(shipper) {}
  void Detach();

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  LogShipper* shipper_;  // guarded by base_sink's mutex_
};

// The pipeline a log message is about: NAME when `text` starts with
// "pipeline NAME" followed by ' ' or ':' and NAME is a valid name; else "".
std::string PipelineOfLogText(std::string_view text);

// `text` as valid UTF-8 (malformed bytes as "\xNN"), cut to at most
// `max_bytes` at a character boundary; `*truncated` says whether it was cut.
std::string LogLineText(std::string_view text, size_t max_bytes, bool* truncated);

}  // namespace cairn::edge
