// `generate` input: synthetic records, one every `interval`, or `rate`
// records per second (records due since the last poll are emitted together,
// with that poll's timestamp: the input wakes at most every 10 ms, so
// 1,000/s costs 100 wake-ups a second and 10,000+/s the same). Stops
// after `count` records if set. Time comes from the Env's clock.
#include <algorithm>

#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

constexpr int64_t kDefaultIntervalMs = 1000;
// Wait once everything is emitted; Stop() still wakes the runner at once.
constexpr milliseconds kIdleWait{60'000};
// At a rate, the input wakes at most this often (what is due meanwhile comes
// together): each wake-up of the pipeline thread costs a context switch.
constexpr int64_t kMinRateWaitMs = 10;
// A runner that fell behind catches up at most this much time at once.
constexpr int64_t kMaxCatchUpMs = 1000;

class GenerateInput final : public Input {
 public:
  GenerateInput(const v1::GenerateInput& c, const Env& env)
      : message_(c.message()),
        count_(c.count()),
        rate_(c.rate()),
        interval_ms_(c.interval_ms() == 0 ? kDefaultIntervalMs : c.interval_ms()),
        clock_(env.clock) {}

  Result<milliseconds> Poll(std::vector<Record>* out) override {
    if (Exhausted()) return kIdleWait;
    const int64_t now = clock_->NowMs();
    if (rate_ != 0) return PollRate(now, out);
    if (next_ms_ == kUnset || now >= next_ms_) {
      Emit(now, out);
      next_ms_ = now + interval_ms_;
      return Exhausted() ? kIdleWait : milliseconds(interval_ms_);
    }
    return milliseconds(next_ms_ - now);
  }

 private:
  static constexpr int64_t kUnset = -1;

  Result<milliseconds> PollRate(int64_t now, std::vector<Record>* out) {
    if (start_ms_ == kUnset) start_ms_ = now;
    // Records due by `now` since start: rate * elapsed (+1 for the first).
    if (now - start_ms_ > kMaxCatchUpMs + last_due_ms_) {
      // Fell behind (a slow output): do not burst; move the origin.
      start_ms_ = now - last_due_ms_ - kMaxCatchUpMs;
    }
    const int64_t elapsed = now - start_ms_;
    const uint64_t due = 1 + static_cast<uint64_t>(elapsed) * rate_ / 1000;
    while (emitted_ < due && !Exhausted()) Emit(now, out);
    last_due_ms_ = elapsed;
    if (Exhausted()) return kIdleWait;
    // Time until the next record is due, at least kMinRateWaitMs.
    const int64_t next = static_cast<int64_t>((emitted_ * 1000 + rate_ - 1) / rate_);
    return milliseconds(std::max<int64_t>(kMinRateWaitMs, next - elapsed));
  }

  void Emit(int64_t now, std::vector<Record>* out) {
    Record r;
    r.body = message_;
    r.timestamp_ms = now;
    r.position = {"generate", emitted_};
    out->push_back(std::move(r));
    ++emitted_;
  }

  bool Exhausted() const { return count_ != 0 && emitted_ >= count_; }

  const std::string message_;
  const uint64_t count_;
  const uint64_t rate_;
  const int64_t interval_ms_;
  const Clock* clock_;
  uint64_t emitted_ = 0;
  int64_t next_ms_ = kUnset;
  int64_t start_ms_ = kUnset;
  int64_t last_due_ms_ = 0;
};

}  // namespace

void RegisterGenerateInput(ComponentRegistry* r) {
  (void)r->AddInput("generate", [](const google::protobuf::Message& m, const std::string&,
                                   const Env& env) -> Result<std::unique_ptr<Input>> {
    return std::unique_ptr<Input>(
        std::make_unique<GenerateInput>(static_cast<const v1::GenerateInput&>(m), env));
  });
}

}  // namespace cairn::edge::runtime
