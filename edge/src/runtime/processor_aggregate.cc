// `aggregate` processor: tumbling windows aligned to `window` on the Env's
// clock. Each record of a window joins the group of its `group_by` values;
// when the window ends, one record per group is emitted with the group's
// fields, window_start / window_end (ms since the epoch), `count`, and for
// each numeric field F: F_sum, F_avg, F_min, F_max (as asked by
// `functions`). A field missing or not a number in a record is skipped for
// that record. At most kMaxGroups groups per window; records of further
// groups are dropped with an error.
#include <algorithm>
#include <limits>
#include <map>

#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

constexpr int64_t kDefaultWindowMs = 60'000;
constexpr size_t kMaxGroups = 10'000;

struct Stats {
  uint64_t n = 0;
  double sum = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
};

struct Group {
  std::vector<Value> keys;
  uint64_t count = 0;
  std::vector<Stats> stats;  // one per field
};

class AggregateProcessor final : public Processor {
 public:
  AggregateProcessor(const v1::AggregateProcessor& c, const Env& env)
      : window_ms_(c.window_ms() ? c.window_ms() : kDefaultWindowMs),
        group_by_(c.group_by().begin(), c.group_by().end()),
        fields_(c.fields().begin(), c.fields().end()),
        clock_(env.clock) {
    auto want = [&](const char* f) {
      return c.functions().empty() ||
             std::find(c.functions().begin(), c.functions().end(), f) != c.functions().end();
    };
    count_ = want("count");
    sum_ = want("sum");
    avg_ = want("avg");
    min_ = want("min");
    max_ = want("max");
  }

  Status Process(Record record, Emitter* out) override {
    const int64_t now = clock_->NowMs();
    if (window_start_ != kNone && now >= window_start_ + window_ms_) EmitWindow(out);
    if (window_start_ == kNone) window_start_ = now - Mod(now, window_ms_);

    std::string key;
    std::vector<Value> keys;
    for (const std::string& g : group_by_) {
      const Value* v = record.fields.Find(g);
      keys.push_back(v ? *v : Value::Null());
      key += keys.back().AsText();
      key += '\x1f';
    }
    auto it = groups_.find(key);
    if (it == groups_.end()) {
      if (groups_.size() >= kMaxGroups) {
        out->Drop();
        return Error::FailedPrecondition("aggregate: more than " + std::to_string(kMaxGroups) +
                                        " groups in one window");
      }
      it = groups_.emplace(key, Group{std::move(keys), 0, std::vector<Stats>(fields_.size())})
               .first;
    }
    Group& g = it->second;
    ++g.count;
    for (size_t i = 0; i < fields_.size(); ++i) {
      const Value* v = record.fields.Find(fields_[i]);
      if (v == nullptr || v->kind != Value::Kind::kNumber) continue;
      Stats& s = g.stats[i];
      ++s.n;
      s.sum += v->number;
      s.min = std::min(s.min, v->number);
      s.max = std::max(s.max, v->number);
    }
    return OkStatus();
  }

  std::optional<int64_t> Tick(int64_t now_ms, Emitter* out) override {
    if (window_start_ == kNone) return std::nullopt;
    if (now_ms >= window_start_ + window_ms_) {
      EmitWindow(out);
      return std::nullopt;
    }
    return window_start_ + window_ms_;
  }

  void Flush(Emitter* out) override {
    if (window_start_ != kNone) EmitWindow(out);
  }

 private:
  static constexpr int64_t kNone = std::numeric_limits<int64_t>::min();
  static int64_t Mod(int64_t a, int64_t b) { return ((a % b) + b) % b; }

  void EmitWindow(Emitter* out) {
    for (auto& [key, g] : groups_) {
      Record r;
      for (size_t i = 0; i < group_by_.size(); ++i) r.fields.Set(group_by_[i], g.keys[i]);
      r.fields.Set("window_start", Value::Number(static_cast<double>(window_start_)));
      r.fields.Set("window_end", Value::Number(static_cast<double>(window_start_ + window_ms_)));
      if (count_) r.fields.Set("count", Value::Number(static_cast<double>(g.count)));
      for (size_t i = 0; i < fields_.size(); ++i) {
        const Stats& s = g.stats[i];
        if (s.n == 0) continue;
        if (sum_) r.fields.Set(fields_[i] + "_sum", Value::Number(s.sum));
        if (avg_) r.fields.Set(fields_[i] + "_avg", Value::Number(s.sum / s.n));
        if (min_) r.fields.Set(fields_[i] + "_min", Value::Number(s.min));
        if (max_) r.fields.Set(fields_[i] + "_max", Value::Number(s.max));
      }
      r.timestamp_ms = window_start_ + window_ms_;
      r.position = {"aggregate", static_cast<uint64_t>(window_start_)};
      out->Emit(std::move(r));
    }
    groups_.clear();
    window_start_ = kNone;
  }

  const int64_t window_ms_;
  const std::vector<std::string> group_by_;
  const std::vector<std::string> fields_;
  const Clock* clock_;
  bool count_, sum_, avg_, min_, max_;
  int64_t window_start_ = kNone;
  std::map<std::string, Group> groups_;  // sorted: output order is stable
};

}  // namespace

void RegisterAggregateProcessor(ComponentRegistry* r) {
  (void)r->AddProcessor("aggregate", [](const google::protobuf::Message& m, const std::string&,
                                        const Env& env) -> Result<std::unique_ptr<Processor>> {
    return std::unique_ptr<Processor>(std::make_unique<AggregateProcessor>(
        static_cast<const v1::AggregateProcessor&>(m), env));
  });
}

}  // namespace cairn::edge::runtime
