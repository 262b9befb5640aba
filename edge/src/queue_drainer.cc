#include "cairn/edge/queue_drainer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "cairn/edge/record_batch.h"

namespace cairn::edge {

void TokenBucket::Refill(int64_t now_ms) {
  if (last_ms_ >= 0 && now_ms > last_ms_) {
    tokens_ = std::min(burst_, tokens_ + rate_ * static_cast<double>(now_ms - last_ms_) / 1000.0);
  }
  if (now_ms > last_ms_) last_ms_ = now_ms;
}

int64_t TokenBucket::WaitMs(int64_t now_ms) {
  Refill(now_ms);
  if (tokens_ >= 1.0) return 0;
  return static_cast<int64_t>(std::ceil((1.0 - tokens_) * 1000.0 / rate_));
}

bool TokenBucket::TryTake(int64_t now_ms) {
  Refill(now_ms);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

RefusalAction ClassifyRefusal(int reason_code, int refusals) {
  if (reason_code < 0x80 || reason_code == 0x91) return RefusalAction::kRetry;
  if (reason_code == 0x90 || reason_code == 0x99) return RefusalAction::kDrop;
  return refusals >= kMaxRefusals ? RefusalAction::kDrop : RefusalAction::kRetry;
}

std::vector<OutgoingMessage> PackWindow(const std::vector<QueuedRecord>& window, const DrainerOptions& options) {
  std::vector<OutgoingMessage> out;
  std::map<std::string, size_t> open;  // topic -> index in out of its batch being filled
  for (const auto& r : window) {
    if (r.kind == QueuedRecord::Kind::kMessage) {
      OutgoingMessage m;
      m.message.topic = r.topic;
      m.message.payload = r.payload;
      m.message.content_type = r.content_type;
      m.message.qos = 1;
      m.message.user_properties = {{"cairn-node", options.node}, {"cairn-seq", std::to_string(r.seq)}};
      m.first_seq = r.seq;
      m.last_seq = r.seq;
      m.records = 1;
      out.push_back(std::move(m));
      continue;
    }
    auto it = open.find(r.topic);
    if (it != open.end()) {
      OutgoingMessage& b = out[it->second];
      if (b.records >= options.max_records_per_message ||
          b.message.payload.size() + r.payload.size() + 32 > options.max_bytes_per_message) {
        open.erase(it);
        it = open.end();
      }
    }
    if (it == open.end()) {
      OutgoingMessage m;
      m.message.topic = r.topic;
      m.message.qos = 1;
      m.message.content_type = kRecordBatchContentType;
      m.first_seq = r.seq;
      m.message.user_properties = {{"cairn-node", options.node}, {"cairn-seq", std::to_string(r.seq)}};
      out.push_back(std::move(m));
      it = open.emplace(r.topic, out.size() - 1).first;
    }
    OutgoingMessage& b = out[it->second];
    AppendToBatch(b.message.payload, r.seq, r.payload);
    b.last_seq = r.seq;
    ++b.records;
  }
  for (auto& m : out) {
    if (m.message.content_type == kRecordBatchContentType) {
      m.message.user_properties.emplace_back("cairn-count", std::to_string(m.records));
    }
  }
  return out;
}

QueueDrainer::QueueDrainer(OutboundQueue& queue, PublishFn publish, ConnectedFn connected, DrainerOptions options)
    : queue_(queue),
      publish_(std::move(publish)),
      connected_(std::move(connected)),
      options_(std::move(options)),
      bucket_(options_.messages_per_second, options_.burst) {}

QueueDrainer::~QueueDrainer() { Stop(); }

void QueueDrainer::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Run(); });
}

void QueueDrainer::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  queue_.Interrupt();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void QueueDrainer::Wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
  queue_.Interrupt();
}

DrainerStats QueueDrainer::Stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool QueueDrainer::Pause(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [&] { return stop_ || woken_; });
  woken_ = false;
  return !stop_;
}

void QueueDrainer::Run() {
  using Steady = std::chrono::steady_clock;
  auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now().time_since_epoch()).count();
  };
  auto last_sync = Steady::now();
  uint64_t synced_seq = queue_.Stats().next_seq;
  auto maybe_sync = [&](bool force) {
    uint64_t next = queue_.Stats().next_seq;
    if (next == synced_seq) return;
    if (!force && Steady::now() - last_sync < options_.sync_interval) return;
    if (auto st = queue_.Sync(); !st.ok()) spdlog::warn("outbound queue: {}", st.error().message);
    synced_seq = next;
    last_sync = Steady::now();
  };
  // Peek enough for several messages per topic so that interleaved streams
  // still fill their batches.
  const size_t window_records = options_.max_records_per_message * 4;
  const size_t window_bytes = options_.max_bytes_per_message * 4;

  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) break;
    }
    maybe_sync(false);
    if (!connected_()) {
      if (!Pause(std::chrono::milliseconds(200))) break;
      continue;
    }
    if (!queue_.WaitForRecords(options_.idle_wait)) continue;
    auto window = queue_.Peek(window_records, window_bytes);
    if (!window.ok()) {
      spdlog::warn("outbound queue: {}", window.error().message);
      if (!Pause(options_.retry_delay)) break;
      continue;
    }
    if (window->empty()) continue;
    bool failed = false;
    std::chrono::milliseconds retry_delay = options_.retry_delay;
    for (auto& m : PackWindow(*window, options_)) {
      if (given_up_.count(m.first_seq)) continue;  // refused for good on an earlier try of this window
      int64_t wait;
      while ((wait = bucket_.WaitMs(now_ms())) > 0) {
        std::unique_lock lock(mu_);
        if (cv_.wait_for(lock, std::chrono::milliseconds(wait), [&] { return stop_; })) break;
      }
      {
        std::lock_guard lock(mu_);
        if (stop_) {
          failed = true;  // the window stays queued
          break;
        }
      }
      (void)bucket_.TryTake(now_ms());
      if (auto st = publish_(m.message); !st.ok()) {
        const int reason = PublishRefusalReason(st.error());
        if (reason != 0) {
          refusals_ = refused_seq_ == m.first_seq ? refusals_ + 1 : 1;
          refused_seq_ = m.first_seq;
          if (ClassifyRefusal(reason, refusals_) == RefusalAction::kDrop) {
            spdlog::warn("outbound queue: dropped a message of {} record(s) the broker refused {} time(s): {}",
                         m.records, refusals_, st.error().message);
            given_up_.insert(m.first_seq);
            std::lock_guard lock(mu_);
            ++stats_.refused_messages;
            stats_.refused_records += m.records;
            stats_.last_refusal = st.error().message;
            continue;
          }
          // Back off: a rate limit clears, a verdict stays (ClassifyRefusal).
          retry_delay = options_.retry_delay * (1 << std::min(refusals_ - 1, 4));
        }
        spdlog::debug("outbound queue: publish to {} failed: {}", m.message.topic, st.error().message);
        std::lock_guard lock(mu_);
        ++stats_.failures;
        failed = true;
        break;
      }
      if (refused_seq_ == m.first_seq) refusals_ = 0;
      std::lock_guard lock(mu_);
      ++stats_.messages_sent;
      stats_.records_sent += m.records;
    }
    if (failed) {
      {
        std::lock_guard lock(mu_);
        if (stop_) break;
      }
      // Nothing of the window is acked: it is sent again (duplicates of the
      // messages that did arrive are possible, losses are not).
      if (!Pause(retry_delay)) break;
      continue;
    }
    if (auto st = queue_.Ack(window->back().seq); !st.ok()) {
      spdlog::warn("outbound queue: {}", st.error().message);
    }
    given_up_.erase(given_up_.begin(), given_up_.upper_bound(window->back().seq));
  }
  maybe_sync(true);
}

}  // namespace cairn::edge
