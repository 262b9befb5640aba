// `batch` processor: joins records into one, so that a high record rate
// becomes a few MQTT messages (the broker allows a node 50 messages/s and
// 1 MiB each). A batch is emitted when it holds `max_records` records, when
// the next record would take it past `max_bytes`, or `max_wait` after its
// first record. Format `json`: a JSON array of the records' texts (objects
// stay objects, other texts become strings); `lines`: texts joined by "\n".
#include <algorithm>

#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

constexpr uint32_t kDefaultMaxRecords = 100;
constexpr uint32_t kDefaultMaxBytes = 256 * 1024;
constexpr uint32_t kDefaultMaxWaitMs = 1000;

class BatchProcessor final : public Processor {
 public:
  BatchProcessor(const v1::BatchProcessor& c, const Env& env)
      : max_records_(c.max_records() ? c.max_records() : kDefaultMaxRecords),
        max_bytes_(c.max_bytes() ? c.max_bytes() : kDefaultMaxBytes),
        max_wait_ms_(c.max_wait_ms() ? c.max_wait_ms() : kDefaultMaxWaitMs),
        json_(c.format() != "lines"),
        clock_(env.clock) {}

  Status Process(Record record, Emitter* out) override {
    std::string item = Item(record);
    // +2: the separator and the closing bracket.
    if (count_ > 0 && body_.size() + item.size() + 2 > max_bytes_) Emit(out);
    if (count_ == 0) {
      first_ms_ = clock_->NowMs();
      first_ = record.position;
      body_.clear();
      if (json_) body_ += '[';
    } else {
      body_ += json_ ? "," : "\n";
    }
    body_ += item;
    ++count_;
    if (count_ >= max_records_ || body_.size() + 1 >= max_bytes_) Emit(out);
    return OkStatus();
  }

  std::optional<int64_t> Tick(int64_t now_ms, Emitter* out) override {
    if (count_ == 0) return std::nullopt;
    if (now_ms >= first_ms_ + max_wait_ms_) {
      Emit(out);
      return std::nullopt;
    }
    return first_ms_ + max_wait_ms_;
  }

  void Flush(Emitter* out) override {
    if (count_ > 0) Emit(out);
  }

 private:
  std::string Item(const Record& r) const {
    std::string text = r.Text();
    if (!json_) return text;
    if (!r.fields.empty()) return text;  // already a JSON object
    return JsonQuote(text);
  }

  void Emit(Emitter* out) {
    Record r;
    r.body = std::move(body_);
    if (json_) r.body += "]";
    r.timestamp_ms = first_ms_;
    r.position = first_;
    out->Emit(std::move(r));
    body_.clear();
    count_ = 0;
  }

  const uint32_t max_records_;
  const uint32_t max_bytes_;
  const int64_t max_wait_ms_;
  const bool json_;
  const Clock* clock_;
  std::string body_;
  uint32_t count_ = 0;
  int64_t first_ms_ = 0;
  SourcePosition first_;
};

}  // namespace

void RegisterBatchProcessor(ComponentRegistry* r) {
  (void)r->AddProcessor("batch", [](const google::protobuf::Message& m, const std::string&,
                                    const Env& env) -> Result<std::unique_ptr<Processor>> {
    return std::unique_ptr<Processor>(
        std::make_unique<BatchProcessor>(static_cast<const v1::BatchProcessor&>(m), env));
  });
}

}  // namespace cairn::edge::runtime
