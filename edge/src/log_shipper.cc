#include "cairn/edge/log_shipper.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "cairn/common/text.h"
#include "cairn/common/topics.h"

namespace cairn::edge {
namespace {

// The shipper whose publish this thread is inside (lines logged meanwhile
// are not shipped: no feedback loop).
thread_local const LogShipper* tl_publishing = nullptr;

// Room for NodeLogs' own fields (timestamp, seq, two counters).
constexpr size_t kBatchOverhead = 64;

// A line's share of a serialized NodeLogs (field tag and length included).
size_t LineBytes(const v1::LogLine& line) { return line.ByteSizeLong() + 4; }

v1::LogLine::Level LevelOf(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: return v1::LogLine::DEBUG;
    case spdlog::level::info: return v1::LogLine::INFO;
    case spdlog::level::warn: return v1::LogLine::WARN;
    default: return v1::LogLine::ERROR;
  }
}

}  // namespace

std::string PipelineOfLogText(std::string_view text) {
  constexpr std::string_view kPrefix = "pipeline ";
  if (text.substr(0, kPrefix.size()) != kPrefix) return "";
  std::string_view rest = text.substr(kPrefix.size());
  size_t end = rest.find_first_of(" :");
  if (end == std::string_view::npos) return "";
  std::string_view name = rest.substr(0, end);
  return topics::IsValidName(name) ? std::string(name) : "";
}

std::string LogLineText(std::string_view text, size_t max_bytes, bool* truncated) {
  std::string out;
  bool cut = false;
  size_t i = 0;
  while (i < text.size()) {
    std::string_view rest = text.substr(i);
    const size_t bad = FirstInvalidUtf8(rest);
    const size_t good = bad == std::string_view::npos ? rest.size() : bad;
    if (out.size() + good > max_bytes) {
      size_t room = max_bytes - out.size();
      // rest[room] is the first byte left out: never leave out the tail of a
      // character whose head is kept.
      while (room > 0 && (static_cast<unsigned char>(rest[room]) & 0xC0) == 0x80) --room;
      out.append(rest.substr(0, room));
      cut = true;
      break;
    }
    out.append(rest.substr(0, good));
    i += good;
    if (bad == std::string_view::npos) break;
    char esc[8];
    std::snprintf(esc, sizeof(esc), "\\x%02X", static_cast<unsigned char>(rest[bad]));
    if (out.size() + 4 > max_bytes) {
      cut = true;
      break;
    }
    out += esc;
    i += 1;
  }
  if (truncated != nullptr) *truncated = cut;
  return out;
}

LogShipper::LogShipper(LogShipperOptions options, LogPublishFn publish, const Clock& clock)
    : options_([&] {
        // A line must always fit in a batch.
        options.max_line_bytes = std::min(options.max_line_bytes, options.max_batch_bytes / 2);
        options.max_buffered_bytes = std::max(options.max_buffered_bytes, options.max_batch_bytes);
        return options;
      }()),
      publish_(std::move(publish)),
      clock_(clock),
      tokens_(options_.line_burst),
      tokens_at_ms_(clock.NowMs()) {}

LogShipper::~LogShipper() {
  // Ends the thread without a last publish: what publish_ calls may already
  // be gone. Stop() first to send what is waiting.
  std::thread t;
  {
    std::lock_guard lock(thread_mu_);
    stopping_ = true;
    t = std::move(thread_);
  }
  thread_cv_.notify_all();
  if (t.joinable()) t.join();
}

MqttMessage LogShipper::MakeMessage(const std::string& workspace, const std::string& node, const v1::NodeLogs& logs) {
  MqttMessage m;
  m.topic = topics::NodeLogs(workspace, node);
  m.payload = logs.SerializeAsString();
  m.qos = 1;
  m.retained = false;
  m.content_type = kNodeLogsContentType;
  return m;
}

void LogShipper::Add(v1::LogLine::Level level, std::string_view pipeline, std::string_view text,
                     int64_t timestamp_ms) {
  if (tl_publishing == this) return;
  const int64_t now = clock_.NowMs();
  bool accepted = false;
  bool wake = false;  // the shipper's thread may be idle: there is news
  {
    std::lock_guard lock(mu_);
    const int64_t elapsed = now - tokens_at_ms_;
    if (elapsed > 0) {
      tokens_ = std::min(options_.line_burst, tokens_ + options_.lines_per_second * static_cast<double>(elapsed) / 1000.0);
    }
    tokens_at_ms_ = now;  // a clock that stepped back only restarts the refill
    if (tokens_ >= 1.0) {
      tokens_ -= 1.0;
      accepted = true;
    } else {
      ++stats_.dropped_rate;
      ++dropped_total_;
      wake = dropped_unreported_++ == 0 && pending_.empty();
    }
  }
  if (accepted) {
    // Built outside the mutex.
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    v1::LogLine line;
    line.set_timestamp_ms(timestamp_ms != 0 ? timestamp_ms : now);
    line.set_level(level);
    line.set_pipeline(LogLineText(pipeline, 63, nullptr));
    bool truncated = false;
    line.set_text(LogLineText(text, options_.max_line_bytes, &truncated));
    line.set_truncated(truncated);
    const size_t bytes = LineBytes(line);

    std::lock_guard lock(mu_);
    wake = pending_.empty();
    pending_.push_back(std::move(line));
    pending_bytes_ += bytes;
    ++stats_.lines_accepted;
    while (pending_bytes_ > options_.max_buffered_bytes && pending_.size() > 1) {
      pending_bytes_ -= LineBytes(pending_.front());
      pending_.pop_front();
      ++stats_.dropped_buffer;
      ++dropped_unreported_;
      ++dropped_total_;
    }
  }
  if (wake) {
    {
      std::lock_guard lock(thread_mu_);
      wake_ = true;
    }
    thread_cv_.notify_all();
  }
}

bool LogShipper::Tick() { return SendBatch(false); }

bool LogShipper::SendBatch(bool ignore_interval) {
  v1::NodeLogs batch;
  uint64_t reported_drops = 0;
  {
    std::lock_guard lock(mu_);
    const int64_t now = clock_.NowMs();
    if (!ignore_interval && attempted_ && now - last_attempt_ms_ < options_.min_interval.count() &&
        now >= last_attempt_ms_) {
      return false;
    }
    if (pending_.empty() && dropped_unreported_ == 0) return false;
    attempted_ = true;
    last_attempt_ms_ = now;
    size_t bytes = kBatchOverhead;
    size_t taken = 0;
    while (!pending_.empty()) {
      const size_t b = LineBytes(pending_.front());
      if (bytes + b > options_.max_batch_bytes) {
        if (batch.lines_size() > 0) break;
        // Cannot fit even alone (tiny max_batch_bytes): dropped, counted.
        pending_bytes_ -= b;
        pending_.pop_front();
        ++stats_.dropped_buffer;
        ++dropped_unreported_;
        ++dropped_total_;
        continue;
      }
      bytes += b;
      taken += b;
      *batch.add_lines() = std::move(pending_.front());
      pending_.pop_front();
    }
    pending_bytes_ -= taken;
    reported_drops = dropped_unreported_;
    batch.set_timestamp_ms(now);
    batch.set_seq(seq_ + 1);
    batch.set_dropped(reported_drops);
    batch.set_dropped_total(dropped_total_);
  }

  // Outside the mutex: Add never waits for the network.
  tl_publishing = this;
  Status st = publish_(MakeMessage(options_.workspace, options_.node, batch));
  tl_publishing = nullptr;

  std::lock_guard lock(mu_);
  if (st.ok()) {
    ++seq_;
    dropped_unreported_ -= reported_drops;
    ++stats_.batches_sent;
    stats_.lines_sent += static_cast<uint64_t>(batch.lines_size());
    return true;
  }
  // Counted, never logged. The lines go back in front, in order, for the
  // next attempt; a full buffer then drops the oldest.
  ++stats_.publish_failures;
  auto* lines = batch.mutable_lines();
  for (int i = lines->size() - 1; i >= 0; --i) {
    pending_bytes_ += LineBytes(lines->Get(i));
    pending_.push_front(std::move(*lines->Mutable(i)));
  }
  while (pending_bytes_ > options_.max_buffered_bytes && pending_.size() > 1) {
    pending_bytes_ -= LineBytes(pending_.front());
    pending_.pop_front();
    ++stats_.dropped_buffer;
    ++dropped_unreported_;
    ++dropped_total_;
  }
  return false;
}

void LogShipper::Start() {
  std::lock_guard lock(thread_mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] {
    std::unique_lock lock(thread_mu_);
    while (!stopping_) {
      // Idle (nothing waiting) it sleeps until Add has news; else it ticks.
      bool busy;
      {
        std::lock_guard state(mu_);
        busy = !pending_.empty() || dropped_unreported_ > 0;
      }
      thread_cv_.wait_for(lock, busy ? options_.tick_period : options_.idle_period,
                          [this] { return stopping_ || wake_; });
      if (stopping_) break;
      wake_ = false;
      lock.unlock();
      Tick();
      lock.lock();
    }
  });
}

void LogShipper::Stop() {
  std::thread t;
  {
    std::lock_guard lock(thread_mu_);
    if (stopping_) return;
    stopping_ = true;
    t = std::move(thread_);
  }
  thread_cv_.notify_all();
  if (t.joinable()) t.join();
  SendBatch(true);  // what is waiting, once, without waiting for the interval
}

LogShipperStats LogShipper::stats() const {
  std::lock_guard lock(mu_);
  LogShipperStats s = stats_;
  s.buffered_lines = pending_.size();
  return s;
}

void LogShipperSink::Detach() {
  std::lock_guard lock(mutex_);
  shipper_ = nullptr;
}

void LogShipperSink::sink_it_(const spdlog::details::log_msg& msg) {
  if (shipper_ == nullptr) return;
  std::string_view text(msg.payload.data(), msg.payload.size());
  const int64_t ts =
      std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
  shipper_->Add(LevelOf(msg.level), PipelineOfLogText(text), text, ts);
}

}  // namespace cairn::edge
