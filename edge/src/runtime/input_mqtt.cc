// `mqtt` input: records from a data stream of the node's workspace
// (cairn/v1/ws/{ws}/data/{stream}), through the Env's SubscribeFn (the
// node's MQTT client). A node's batch payloads (kRecordBatchContentType,
// record_batch.h) are split into their records, any other payload is one
// record. The MQTT client's thread appends to a bounded buffer and wakes the
// runner; Poll hands the buffer on. A full buffer drops its oldest records,
// counted (TakeDropped): backpressure cannot reach a remote publisher.
// Thread-safety: the buffer is shared with the MQTT client's thread under
// its own mutex; the rest is the runner's (component.h).
#include <deque>

#include "cairn/edge/record_batch.h"
#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

constexpr uint32_t kDefaultBuffer = 10'000;
// Records handed on per Poll (bounded work; the rest on the next call).
constexpr size_t kMaxPerPoll = 4096;
// When nothing is buffered: the runner is woken by the next message anyway.
constexpr milliseconds kIdleWait{60'000};

class Buffer {
 public:
  Buffer(size_t capacity, std::string source, const Env& env)
      : capacity_(capacity), source_(std::move(source)), clock_(env.clock), wakeup_(env.wakeup) {}

  // On the MQTT client's thread.
  void Add(const StreamMessage& m) {
    const int64_t now = clock_->NowMs();
    {
      std::lock_guard lock(mu_);
      if (m.content_type == kRecordBatchContentType) {
        auto entries = DecodeBatch(m.payload);
        if (!entries.ok()) {
          ++dropped_;  // one unreadable message
          bad_batch_ = entries.error().message;
        } else {
          for (BatchEntry& e : *entries) Push(std::move(e.record), e.seq, now);
        }
      } else {
        Push(m.payload, ++local_seq_, now);
      }
    }
    wakeup_->Notify();
  }

  // Moves at most `max` records to `out`; true if more are left.
  bool Take(std::vector<Record>* out, size_t max) {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < max && !records_.empty(); ++i) {
      out->push_back(std::move(records_.front()));
      records_.pop_front();
    }
    return !records_.empty();
  }

  uint64_t TakeDropped(std::string* bad_batch) {
    std::lock_guard lock(mu_);
    const uint64_t n = dropped_;
    dropped_ = 0;
    bad_batch->swap(bad_batch_);
    bad_batch_.clear();
    return n;
  }

 private:
  void Push(std::string body, uint64_t seq, int64_t now) {
    if (records_.size() >= capacity_) {
      records_.pop_front();
      ++dropped_;
    }
    Record r;
    r.body = std::move(body);
    r.timestamp_ms = now;
    r.position = {source_, seq};
    records_.push_back(std::move(r));
  }

  const size_t capacity_;
  const std::string source_;
  const Clock* clock_;
  const std::shared_ptr<Wakeup> wakeup_;
  std::mutex mu_;
  std::deque<Record> records_;  // guarded by mu_
  uint64_t dropped_ = 0;        // guarded by mu_
  uint64_t local_seq_ = 0;      // guarded by mu_
  std::string bad_batch_;       // guarded by mu_
};

class MqttInput final : public Input {
 public:
  MqttInput(const v1::MqttInput& c, const Env& env)
      : stream_(c.stream()),
        env_(env),
        buffer_(std::make_shared<Buffer>(c.buffer() == 0 ? kDefaultBuffer : c.buffer(), "mqtt:" + c.stream(), env)) {}

  // Subscribes on the first call (and again after End(); a refusal is
  // reported by the runner and tried again).
  Result<milliseconds> Poll(std::vector<Record>* out) override {
    if (!subscription_) {
      if (Status s = Subscribe(); !s.ok()) return s.error();
    }
    return buffer_->Take(out, kMaxPerPoll) ? milliseconds(0) : kIdleWait;
  }

  void End() override { subscription_.reset(); }

  uint64_t TakeDropped() override {
    std::string bad;
    const uint64_t n = buffer_->TakeDropped(&bad);
    if (!bad.empty()) env_.Log(ComponentLog::Level::kWarn, "mqtt input: dropped an unreadable batch: " + bad);
    if (n > 0) env_.Log(ComponentLog::Level::kWarn, "mqtt input: " + std::to_string(n) +
                                                        " records dropped (buffer full: the pipeline is slower than stream " +
                                                        stream_ + ")");
    return n;
  }

 private:
  Status Subscribe() {
    auto sub = env_.subscribe(stream_, [buffer = buffer_](StreamMessage m) { buffer->Add(m); });
    if (!sub.ok()) return Error{ErrorCode::kUnavailable, sub.error().message};
    subscription_ = std::move(*sub);
    return OkStatus();
  }

  const std::string stream_;
  const Env env_;
  const std::shared_ptr<Buffer> buffer_;
  std::unique_ptr<Subscription> subscription_;
};

}  // namespace

void RegisterMqttInput(ComponentRegistry* r) {
  (void)r->AddInput("mqtt", [](const google::protobuf::Message& m, const std::string& path,
                               const Env& env) -> Result<std::unique_ptr<Input>> {
    if (!env.subscribe) {
      return Error::FailedPrecondition(path + ": this node has no subscribe function (no broker)");
    }
    return std::unique_ptr<Input>(std::make_unique<MqttInput>(static_cast<const v1::MqttInput&>(m), env));
  });
}

}  // namespace cairn::edge::runtime
