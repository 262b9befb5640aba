// `http` output: POSTs records in batches (docs/pipelines.md, "http").
//
// Body formats: `json` (default) is one JSON array per request whose
// elements are the records' JSON objects (records with fields) or JSON
// strings (plain lines), Content-Type application/json; `lines` is one
// record per line (NDJSON when the records are objects), Content-Type
// application/x-ndjson. A configured Content-Type header wins.
//
// The output holds at most one batch being filled and one batch being
// (re)sent. A batch is sealed when full (max_records, max_bytes) or
// max_wait after its first record, then POSTed. 2xx: delivered. A
// connection error, timeout, 5xx, 408 or 429: the sealed batch is kept and
// retried after a back-off (500 ms doubling to max_backoff); meanwhile Write
// answers kRetry, so the runner pauses its input: backpressure, nothing
// lost. Any other answer (4xx, 3xx: the request itself is wrong) drops the
// batch, counted as dropped with the status in last_error. On stop, one last
// attempt; what still cannot be sent is counted as dropped.
//
// Thread-safety: one runner thread (component.h).
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "cairn/common/files.h"
#include "cairn/common/pipeline_spec.h"
#include "cairn/edge/file_roots.h"
#include "cairn/edge/runtime/http_client.h"
#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

constexpr uint32_t kDefaultMaxRecords = 100;
constexpr uint32_t kDefaultMaxBytes = 1 << 20;
constexpr int64_t kDefaultMaxWaitMs = 1000;
constexpr int64_t kDefaultTimeoutMs = 10'000;
constexpr int64_t kFirstBackoffMs = 500;
constexpr int64_t kDefaultMaxBackoffMs = 30'000;

bool Retryable(int status) { return status >= 500 || status == 408 || status == 429; }

class HttpOutput final : public Output {
 public:
  HttpOutput(const v1::HttpOutput& c, HttpUrl url, std::unique_ptr<HttpClient> client, const Env& env)
      : url_(std::move(url)),
        client_(std::move(client)),
        json_(c.format() != "lines"),
        max_records_(c.max_records() == 0 ? kDefaultMaxRecords : c.max_records()),
        max_bytes_(c.max_bytes() == 0 ? kDefaultMaxBytes : c.max_bytes()),
        max_wait_ms_(c.max_wait_ms() == 0 ? kDefaultMaxWaitMs : c.max_wait_ms()),
        max_backoff_ms_(c.max_backoff_ms() == 0 ? kDefaultMaxBackoffMs : c.max_backoff_ms()),
        env_(env) {
    bool content_type = false;
    for (const auto& [name, value] : c.headers()) {
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
      content_type = content_type || lower == "content-type";
      headers_.emplace_back(name, value);
    }
    std::sort(headers_.begin(), headers_.end());
    if (!content_type) headers_.emplace_back("Content-Type", json_ ? "application/json" : "application/x-ndjson");
  }

  WriteResult Write(const Record& record) override {
    const int64_t now = env_.NowMs();
    if (sealed_) {
      if (now < next_attempt_ms_) return Refuse(now);
      if (!SendSealed(now)) return Refuse(now);
    }
    std::string item = Item(record);
    if (count_ > 0 && body_.size() + item.size() + 2 > max_bytes_) {
      Seal();
      if (!SendSealed(now)) return Refuse(now);  // this record was not taken
    }
    if (count_ == 0) {
      first_ms_ = now;
      body_ = json_ ? "[" : "";
    } else {
      body_ += json_ ? "," : "";
    }
    body_ += item;
    if (!json_) body_ += '\n';
    ++count_;
    if (count_ >= max_records_ || body_.size() + 1 >= max_bytes_) {
      Seal();
      SendSealed(now);  // a failure is retried by Tick or the next Write
    }
    return {};
  }

  std::optional<int64_t> Tick(int64_t now) override {
    if (sealed_) {
      if (now >= next_attempt_ms_) SendSealed(now);
      if (sealed_) return next_attempt_ms_;
    }
    if (count_ > 0 && now >= first_ms_ + max_wait_ms_) {
      Seal();
      if (!SendSealed(now)) return next_attempt_ms_;
    }
    if (count_ > 0) return first_ms_ + max_wait_ms_;
    return std::nullopt;
  }

  uint64_t Flush() override {
    const int64_t now = env_.NowMs();
    uint64_t lost = 0;
    if (sealed_ && !SendSealed(now)) {
      // The sink is down: no attempt for the rest either.
      lost = sealed_->records + count_;
      sealed_.reset();
      count_ = 0;
      body_.clear();
      return lost;
    }
    if (count_ > 0) {
      Seal();
      if (!SendSealed(now)) lost = sealed_->records;
      sealed_.reset();
    }
    return lost;
  }

  std::optional<std::string> TakeError() override {
    if (!unreported_) return std::nullopt;
    unreported_ = false;
    return last_error_ + "; retrying in " + std::to_string(next_attempt_ms_ - env_.NowMs()) + "ms";
  }

  uint64_t TakeLost(std::string* why) override {
    const uint64_t n = dropped_;
    if (n > 0) *why = dropped_why_;
    dropped_ = 0;
    return n;
  }

 private:
  struct Batch {
    std::string body;
    uint64_t records = 0;
  };

  std::string Item(const Record& r) const {
    std::string text = r.Text();
    if (!json_ || !r.fields.empty()) return text;  // a line, or already a JSON object
    return JsonQuote(text);
  }

  void Seal() {
    if (json_) body_ += "]";
    sealed_ = Batch{std::move(body_), count_};
    body_.clear();
    count_ = 0;
    backoff_ms_ = std::min(kFirstBackoffMs, max_backoff_ms_);
  }

  // One attempt to deliver the sealed batch. True when it is gone
  // (delivered, or dropped for a permanent refusal).
  bool SendSealed(int64_t now) {
    auto r = client_->Send(url_, "POST", headers_, sealed_->body);
    std::string error;
    if (r.ok() && r->status >= 200 && r->status < 300) {
      sealed_.reset();
      return true;
    }
    if (r.ok() && !Retryable(r->status)) {
      env_.Log(ComponentLog::Level::kError, "http: " + url_.HostHeader() + url_.target + " answered " +
                                                std::to_string(r->status) + " " + r->reason + ": dropped a batch of " +
                                                std::to_string(sealed_->records) + " records (" +
                                                r->body_head.substr(0, 200) + ")");
      dropped_ += sealed_->records;
      dropped_why_ = "http: answered " + std::to_string(r->status) + " " + r->reason;
      sealed_.reset();
      return true;
    }
    last_error_ = "http: " + url_.HostHeader() + url_.target + ": " +
                  (r.ok() ? "answered " + std::to_string(r->status) + " " + r->reason : r.error().message);
    next_attempt_ms_ = now + backoff_ms_;
    unreported_ = true;
    backoff_ms_ = std::min(backoff_ms_ * 2, max_backoff_ms_);
    return false;
  }

  WriteResult Refuse(int64_t now) {
    unreported_ = false;  // the runner counts and logs this one
    WriteResult w;
    w.kind = WriteResult::Kind::kRetry;
    w.error = last_error_;
    w.retry_after = milliseconds(std::max<int64_t>(1, next_attempt_ms_ - now));
    return w;
  }

 private:
  const HttpUrl url_;
  const std::unique_ptr<HttpClient> client_;
  const bool json_;
  const uint64_t max_records_;
  const size_t max_bytes_;
  const int64_t max_wait_ms_;
  const int64_t max_backoff_ms_;
  const Env env_;
  std::vector<std::pair<std::string, std::string>> headers_;

  std::string body_;  // the batch being filled
  uint64_t count_ = 0;
  int64_t first_ms_ = 0;
  std::optional<Batch> sealed_;  // the batch being sent
  int64_t next_attempt_ms_ = 0;
  int64_t backoff_ms_ = 0;  // set by Seal()
  bool unreported_ = false;  // a failed send no WriteResult reported yet
  std::string last_error_;
  uint64_t dropped_ = 0;
  std::string dropped_why_;
};

}  // namespace

void RegisterHttpOutput(ComponentRegistry* r) {
  (void)r->AddOutput("http", [](const google::protobuf::Message& m, const std::string& path,
                                const Env& env) -> Result<std::unique_ptr<Output>> {
    const auto& c = static_cast<const v1::HttpOutput&>(m);
    auto url = ParseHttpUrl(c.url());
    if (!url.ok()) return Error::InvalidArgument(path + ".url: " + url.error().message);
    HttpClient::Options o;
    o.timeout = milliseconds(c.timeout_ms() == 0 ? kDefaultTimeoutMs : c.timeout_ms());
    if (!c.ca_file().empty()) {
      auto resolved = ResolvePath(path + ".ca_file", c.ca_file(), env, FileAccess::kRead);
      if (!resolved.ok()) return resolved.error();
      std::string pem;
      if (env.files) {
        auto fd = env.files->OpenForRead(c.ca_file());
        if (!fd.ok()) return Error{fd.error().code, path + ".ca_file: " + fd.error().message};
        char buf[8192];
        for (;;) {
          ssize_t n = ::read(fd->get(), buf, sizeof buf);
          if (n <= 0) break;
          pem.append(buf, static_cast<size_t>(n));
          if (pem.size() > (4u << 20)) return Error::InvalidArgument(path + ".ca_file: larger than 4 MiB");
        }
      } else {
        auto text = ReadFile(*resolved);
        if (!text.ok()) return Error{text.error().code, path + ".ca_file: " + text.error().message};
        pem = std::move(*text);
      }
      o.ca_pem = std::move(pem);
    }
    auto client = HttpClient::Make(std::move(o));
    if (!client.ok()) return Error{client.error().code, path + ".ca_file: " + client.error().message};
    return std::unique_ptr<Output>(std::make_unique<HttpOutput>(c, std::move(*url), std::move(*client), env));
  });
}

}  // namespace cairn::edge::runtime
