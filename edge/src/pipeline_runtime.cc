// Pipeline runtime: validation of a PipelineConfig for this node, the record
// sources (generate, file tail), the filter processor, the sinks (file, mqtt,
// stdout) and the per-pipeline thread that drives them.
//
// Threading: each runner owns one worker thread. Sources, processors and
// sinks are touched only by that thread (or by Start() before the thread
// exists). Counters are atomics; last_error sits under a mutex; lifecycle
// calls (Start/Stop) are serialised by their own mutex so that Stop() can
// join without blocking Health().
#include "cairn/edge/pipeline_runtime.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <regex>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

namespace cairn::edge {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;
using PublishFn = decltype(PipelineContext::publish);

constexpr uint32_t kDefaultIntervalMs = 1000;
constexpr uint32_t kMinIntervalMs = 10;
constexpr size_t kMaxStreamNameLength = 63;
// How often a file input looks for new data, and how often a source that
// cannot read (missing file, permission denied) retries.
constexpr milliseconds kFilePollInterval{100};
// Wait used once a bounded generate input has emitted everything; Stop()
// still wakes the thread immediately.
constexpr milliseconds kIdleWait{60'000};
// Bounds on one file read pass, so a large backlog never delays Stop().
constexpr size_t kReadChunkBytes = 64 * 1024;
constexpr size_t kMaxBytesPerPoll = 1024 * 1024;
// A line longer than this is delivered in pieces of at most this size (keeps
// memory bounded and std::regex away from pathological inputs).
constexpr size_t kMaxRecordBytes = 64 * 1024;
constexpr size_t kMaxRegexBytes = 4 * 1024;

std::string ErrnoText(int err) { return std::strerror(err); }

// ---------------------------------------------------------------------------
// Validation

// Matches the topic scheme's names (common/topics.h): a lower-case DNS label.
bool IsValidStreamName(std::string_view name) {
  if (name.empty() || name.size() > kMaxStreamNameLength) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  for (char c : name) {
    if (!alnum(c) && c != '-') return false;
  }
  return alnum(name.front()) && alnum(name.back());
}

// Resolves a file path from the spec: relative paths are below `data_dir` and
// may not climb out of it with "..". Absolute paths are taken as they are.
Result<std::string> ResolvePath(const std::string& field, const std::string& path,
                                const std::string& data_dir) {
  if (path.empty()) return Error::InvalidArgument(field + ": path is empty");
  if (path.find('\0') != std::string::npos) {
    return Error::InvalidArgument(field + ": path contains a NUL byte");
  }
  fs::path normal = fs::path(path).lexically_normal();
  if (normal.filename().empty() || normal.filename() == "." || normal.filename() == "..") {
    return Error::InvalidArgument(field + ": path \"" + path + "\" does not name a file");
  }
  if (normal.is_absolute()) return normal.string();
  if (*normal.begin() == "..") {
    return Error::InvalidArgument(field + ": path \"" + path + "\" escapes the data directory");
  }
  if (data_dir.empty()) return normal.string();
  return (fs::path(data_dir) / normal).string();
}

struct CompiledFilter {
  std::string contains;
  std::optional<std::regex> regex;
  bool invert = false;
};

// Everything the runtime needs from a validated spec.
struct Plan {
  v1::Input::KindCase input_kind = v1::Input::KIND_NOT_SET;
  uint32_t interval_ms = kDefaultIntervalMs;
  std::string input_path;  // resolved
  std::vector<CompiledFilter> filters;
  v1::Output::KindCase output_kind = v1::Output::KIND_NOT_SET;
  std::string output_path;  // resolved
};

Result<Plan> Validate(const v1::PipelineSpec& spec, const PipelineContext& context) {
  Plan plan;
  const v1::Input& input = spec.input();
  plan.input_kind = input.kind_case();
  switch (plan.input_kind) {
    case v1::Input::kGenerate: {
      uint32_t interval = input.generate().interval_ms();
      if (interval == 0) interval = kDefaultIntervalMs;
      if (interval < kMinIntervalMs) {
        return Error::InvalidArgument("input.generate.interval: " + std::to_string(interval) +
                                      " ms is below the minimum of " +
                                      std::to_string(kMinIntervalMs) + " ms");
      }
      plan.interval_ms = interval;
      break;
    }
    case v1::Input::kFile: {
      auto path = ResolvePath("input.file.path", input.file().path(), context.data_dir);
      if (!path.ok()) return path.error();
      plan.input_path = std::move(path).value();
      break;
    }
    case v1::Input::KIND_NOT_SET:
      return Error::InvalidArgument("input: exactly one input (generate or file) is required");
  }

  for (int i = 0; i < spec.processors_size(); ++i) {
    const v1::Processor& p = spec.processors(i);
    const std::string field = "processors[" + std::to_string(i) + "]";
    switch (p.kind_case()) {
      case v1::Processor::kFilter: {
        CompiledFilter f;
        f.contains = p.filter().contains();
        f.invert = p.filter().invert();
        if (!p.filter().regex().empty()) {
          try {
            f.regex.emplace(p.filter().regex(), std::regex::ECMAScript);
          } catch (const std::regex_error& e) {
            return Error::InvalidArgument(field + ".filter.regex: \"" + p.filter().regex() +
                                          "\" does not compile: " + e.what());
          }
        }
        plan.filters.push_back(std::move(f));
        break;
      }
      case v1::Processor::KIND_NOT_SET:
        return Error::InvalidArgument(field + ": no processor kind set");
    }
  }

  const v1::Output& output = spec.output();
  plan.output_kind = output.kind_case();
  switch (plan.output_kind) {
    case v1::Output::kFile: {
      auto path = ResolvePath("output.file.path", output.file().path(), context.data_dir);
      if (!path.ok()) return path.error();
      plan.output_path = std::move(path).value();
      if (plan.input_kind == v1::Input::kFile && plan.output_path == plan.input_path) {
        return Error::InvalidArgument("output.file.path: \"" + output.file().path() +
                                      "\" is also the input file");
      }
      break;
    }
    case v1::Output::kMqtt: {
      const std::string& stream = output.mqtt().stream();
      if (!IsValidStreamName(stream)) {
        return Error::InvalidArgument(
            "output.mqtt.stream: \"" + stream +
            "\" is not a valid stream name (1-63 of [a-z0-9-], starting and ending with a "
            "letter or digit)");
      }
      if (output.mqtt().qos() > 2) {
        return Error::InvalidArgument("output.mqtt.qos: " + std::to_string(output.mqtt().qos()) +
                                      " is not 0, 1 or 2");
      }
      if (!context.publish) {
        return Error::FailedPrecondition("output.mqtt: the node provides no publish function");
      }
      break;
    }
    case v1::Output::kStdout:
      break;
    case v1::Output::KIND_NOT_SET:
      return Error::InvalidArgument(
          "output: exactly one output (file, mqtt or stdout) is required");
  }
  return plan;
}

// ---------------------------------------------------------------------------
// Sources

class RecordSource {
 public:
  virtual ~RecordSource() = default;
  // Called by Start() before the worker thread runs: fixes where reading
  // begins (a file input starts at the end of the file as of Start()).
  virtual void Begin() {}
  // Appends the records available now to `out` and returns how long to wait
  // before calling again (0: more is ready). An error says why nothing can be
  // read right now; the caller reports it and retries after
  // kFilePollInterval. kNotFound marks a condition that is expected to clear
  // by itself (a file that does not exist yet).
  virtual Result<milliseconds> Poll(std::vector<std::string>* out) = 0;
};

class GenerateSource final : public RecordSource {
 public:
  GenerateSource(std::string message, milliseconds interval, uint64_t count)
      : message_(std::move(message)), interval_(interval), count_(count) {}

  Result<milliseconds> Poll(std::vector<std::string>* out) override {
    if (Exhausted()) return kIdleWait;
    const auto now = SteadyClock::now();
    if (!next_ || now >= *next_) {
      out->push_back(message_);
      ++emitted_;
      next_ = now + interval_;
      if (Exhausted()) return kIdleWait;
      return interval_;
    }
    return std::chrono::ceil<milliseconds>(*next_ - now);
  }

 private:
  bool Exhausted() const { return count_ != 0 && emitted_ >= count_; }

  const std::string message_;
  const milliseconds interval_;
  const uint64_t count_;
  uint64_t emitted_ = 0;
  std::optional<SteadyClock::time_point> next_;
};

// Follows a file by name, like `tail -F`: reads complete lines, notices
// truncation (size below the read offset) and replacement (another inode at
// the path; the old file is read to its end first). The offset lives in
// memory only.
class FileTailSource final : public RecordSource {
 public:
  FileTailSource(std::string path, bool from_beginning)
      : path_(std::move(path)), from_beginning_(from_beginning) {}
  ~FileTailSource() override { Close(); }

  void Begin() override {
    if (begun_) return;
    begun_ = true;
    // A file that exists now is read from its end (unless from_beginning);
    // anything that appears later is new and is read from its start.
    if (OpenCurrent().ok() && !from_beginning_) {
      struct stat st {};
      if (::fstat(fd_, &st) == 0) offset_ = st.st_size;
    }
  }

  Result<milliseconds> Poll(std::vector<std::string>* out) override {
    Begin();
    size_t budget = kMaxBytesPerPoll;
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) {
      const int err = errno;
      if (fd_ < 0) {
        if (err == ENOENT) return Error::NotFound("waiting for file " + path_);
        return Error::Unavailable("cannot stat " + path_ + ": " + ErrnoText(err));
      }
      // Renamed or deleted: keep reading what the old file still gets until
      // a new one appears.
      return ReadAvailable(out, &budget);
    }
    if (fd_ >= 0 && (st.st_dev != dev_ || st.st_ino != ino_)) {
      // Replaced (rotation): finish the old file, then switch.
      auto drained = ReadAvailable(out, &budget);
      if (!drained.ok()) return drained.error();
      if (*drained == milliseconds(0)) return milliseconds(0);
      if (!partial_.empty()) out->push_back(std::exchange(partial_, {}));
      Close();
    }
    if (fd_ < 0) {
      auto opened = OpenCurrent();
      if (!opened.ok()) return opened.error();
      offset_ = 0;
    }
    return ReadAvailable(out, &budget);
  }

 private:
  Status OpenCurrent() {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == ENOENT) return Error::NotFound("waiting for file " + path_);
      return Error::Unavailable("cannot open " + path_ + ": " + ErrnoText(err));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return Error::Unavailable("cannot read " + path_ + ": not a regular file");
    }
    fd_ = fd;
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    offset_ = 0;
    partial_.clear();
    return OkStatus();
  }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Reads from the open file at offset_ until its end or the budget runs out;
  // returns 0 if more is waiting, else the poll interval.
  Result<milliseconds> ReadAvailable(std::vector<std::string>* out, size_t* budget) {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      return Error::Unavailable("cannot stat " + path_ + ": " + ErrnoText(errno));
    }
    if (st.st_size < offset_) {  // truncated: start over
      offset_ = 0;
      partial_.clear();
    }
    std::string buf(kReadChunkBytes, '\0');
    while (*budget > 0) {
      const ssize_t n = ::pread(fd_, buf.data(), std::min(buf.size(), *budget), offset_);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Error::Unavailable("cannot read " + path_ + ": " + ErrnoText(errno));
      }
      if (n == 0) return kFilePollInterval;
      offset_ += n;
      *budget -= static_cast<size_t>(n);
      Split(std::string_view(buf.data(), static_cast<size_t>(n)), out);
    }
    return milliseconds(0);
  }

  void Split(std::string_view data, std::vector<std::string>* out) {
    size_t start = 0;
    while (start < data.size()) {
      const size_t nl = data.find('\n', start);
      if (nl == std::string_view::npos) {
        partial_.append(data.substr(start));
        break;
      }
      partial_.append(data.substr(start, nl - start));
      if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
      out->push_back(std::exchange(partial_, {}));
      start = nl + 1;
    }
    while (partial_.size() > kMaxRecordBytes) {
      out->push_back(partial_.substr(0, kMaxRecordBytes));
      partial_.erase(0, kMaxRecordBytes);
    }
  }

  const std::string path_;
  const bool from_beginning_;
  bool begun_ = false;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  off_t offset_ = 0;
  std::string partial_;  // bytes after the last newline read so far
};

// ---------------------------------------------------------------------------
// Sinks

struct WriteResult {
  enum class Kind {
    kWritten,
    kDropped,  // this record is lost; the sink keeps working (link down)
    kFailed,   // the sink cannot continue; the pipeline fails
  };
  Kind kind = Kind::kWritten;
  std::string error;
};

class RecordSink {
 public:
  virtual ~RecordSink() = default;
  // Prepares the sink on the worker thread; an error fails the pipeline.
  virtual Status Open() { return OkStatus(); }
  virtual WriteResult Write(const std::string& record) = 0;
};

// Appends one line per record. Opened once; each record is one write(2), so
// other processes see it at once and concurrent appenders never interleave
// within a line.
class FileSink final : public RecordSink {
 public:
  explicit FileSink(std::string path) : path_(std::move(path)) {}
  ~FileSink() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Open() override {
    if (fd_ >= 0) return OkStatus();
    const fs::path parent = fs::path(path_).parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      fs::create_directories(parent, ec);
      if (ec) {
        return Error::Unavailable("cannot create directory " + parent.string() + ": " +
                                  ec.message());
      }
    }
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return Error::Unavailable("cannot open " + path_ + ": " + ErrnoText(errno));
    return OkStatus();
  }

  WriteResult Write(const std::string& record) override {
    line_.assign(record);
    line_.push_back('\n');
    size_t done = 0;
    while (done < line_.size()) {
      const ssize_t n = ::write(fd_, line_.data() + done, line_.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return {WriteResult::Kind::kFailed, "cannot write " + path_ + ": " + ErrnoText(errno)};
      }
      done += static_cast<size_t>(n);
    }
    return {};
  }

 private:
  const std::string path_;
  int fd_ = -1;
  std::string line_;
};

class MqttSink final : public RecordSink {
 public:
  MqttSink(PublishFn publish, std::string stream, int qos)
      : publish_(std::move(publish)), stream_(std::move(stream)), qos_(qos) {}

  WriteResult Write(const std::string& record) override {
    try {
      Status s = publish_(stream_, record, qos_);
      if (s.ok()) return {};
      return {WriteResult::Kind::kDropped,
              "publish to stream " + stream_ + ": " + s.error().message};
    } catch (const std::exception& e) {
      return {WriteResult::Kind::kDropped, "publish to stream " + stream_ + ": " + e.what()};
    }
  }

 private:
  const PublishFn publish_;
  const std::string stream_;
  const int qos_;
};

class StdoutSink final : public RecordSink {
 public:
  WriteResult Write(const std::string& record) override {
    // One lock for every pipeline so that lines never interleave.
    static std::mutex mu;
    std::lock_guard lock(mu);
    const bool ok = std::fwrite(record.data(), 1, record.size(), stdout) == record.size() &&
                    std::fputc('\n', stdout) != EOF && std::fflush(stdout) == 0;
    if (!ok) return {WriteResult::Kind::kDropped, "cannot write to stdout"};
    return {};
  }
};

// ---------------------------------------------------------------------------
// Runner

bool KeepRecord(const CompiledFilter& f, const std::string& record) {
  bool match = f.contains.empty() || record.find(f.contains) != std::string::npos;
  // libstdc++'s std::regex recurses once per character: a long record could
  // exhaust the thread's stack. The regex sees at most the first
  // kMaxRegexBytes of a record (documented in docs/quickstart.md).
  if (match && f.regex) {
    std::string_view head(record);
    if (head.size() > kMaxRegexBytes) head = head.substr(0, kMaxRegexBytes);
    match = std::regex_search(head.begin(), head.end(), *f.regex);
  }
  return match != f.invert;
}

class PipelineRunnerImpl final : public PipelineRunner {
 public:
  PipelineRunnerImpl(v1::PipelineConfig config, std::vector<CompiledFilter> filters,
                     std::unique_ptr<RecordSource> source, std::unique_ptr<RecordSink> sink)
      : config_(std::move(config)),
        filters_(std::move(filters)),
        source_(std::move(source)),
        sink_(std::move(sink)) {}

  ~PipelineRunnerImpl() override { Stop(); }

  void Start() override {
    std::lock_guard lifecycle(lifecycle_mu_);
    if (thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      stop_ = false;
    }
    source_->Begin();
    state_ = v1::PipelineHealth::RUNNING;
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() override {
    std::lock_guard lifecycle(lifecycle_mu_);
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    // A failure stays visible: it says why the pipeline stopped.
    auto running = v1::PipelineHealth::RUNNING;
    state_.compare_exchange_strong(running, v1::PipelineHealth::STOPPED);
  }

  v1::PipelineHealth Health() const override {
    v1::PipelineHealth h;
    h.set_name(config_.name());
    h.set_version(config_.version());
    h.set_state(state_.load());
    h.set_records_in(records_in_.load());
    h.set_records_out(records_out_.load());
    h.set_records_dropped(records_dropped_.load());
    h.set_errors(errors_.load());
    std::lock_guard lock(mu_);
    h.set_last_error(last_error_);
    return h;
  }

  const v1::PipelineConfig& config() const override { return config_; }

 private:
  void Run() {
    if (Status s = sink_->Open(); !s.ok()) {
      ++errors_;
      Fail(s.error().message);
      return;
    }
    std::vector<std::string> batch;
    while (!StopRequested()) {
      milliseconds wait{0};
      if (pending_.empty()) {
        batch.clear();
        auto polled = source_->Poll(&batch);
        if (polled.ok()) {
          wait = *polled;
          ClearInputProblem();
        } else {
          wait = kFilePollInterval;
          ReportInputProblem(polled.error());
        }
        pending_.insert(pending_.end(), std::make_move_iterator(batch.begin()),
                        std::make_move_iterator(batch.end()));
      }
      // Records are taken off `pending_` one at a time so that a Stop() in
      // the middle of a batch leaves the rest for the next Start().
      while (!pending_.empty() && !StopRequested()) {
        std::string record = std::move(pending_.front());
        pending_.pop_front();
        if (!Process(record)) return;
      }
      if (!pending_.empty()) break;
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, wait, [this] { return stop_; });
    }
  }

  // Runs one record through the processors and the sink. False if the
  // pipeline has failed.
  bool Process(const std::string& record) {
    ++records_in_;
    for (const CompiledFilter& f : filters_) {
      bool keep = false;
      try {
        keep = KeepRecord(f, record);
      } catch (const std::regex_error& e) {
        ++errors_;
        SetLastError(std::string("filter: regex failed on a record: ") + e.what());
      }
      if (!keep) {
        ++records_dropped_;
        return true;
      }
    }
    WriteResult w = sink_->Write(record);
    switch (w.kind) {
      case WriteResult::Kind::kWritten:
        ++records_out_;
        return true;
      case WriteResult::Kind::kDropped:
        ++errors_;
        ++records_dropped_;
        SetLastError(std::move(w.error));
        return true;
      case WriteResult::Kind::kFailed:
        ++errors_;
        ++records_dropped_;
        Fail(std::move(w.error));
        return false;
    }
    return true;
  }

  void Fail(std::string error) {
    spdlog::error("pipeline {} v{} failed: {}", config_.name(), config_.version(), error);
    SetLastError(std::move(error));
    state_ = v1::PipelineHealth::FAILED;
  }

  // Missing input files are reported (and cleared once the file shows up);
  // other input errors also count in `errors`, once per distinct message.
  void ReportInputProblem(const Error& e) {
    {
      std::lock_guard lock(mu_);
      if (input_problem_ == e.message) return;
      input_problem_ = e.message;
      last_error_ = e.message;
    }
    if (e.code != ErrorCode::kNotFound) ++errors_;
    spdlog::warn("pipeline {}: {}", config_.name(), e.message);
  }

  void ClearInputProblem() {
    std::lock_guard lock(mu_);
    if (input_problem_.empty()) return;
    if (last_error_ == input_problem_) last_error_.clear();
    input_problem_.clear();
  }

  void SetLastError(std::string error) {
    std::lock_guard lock(mu_);
    last_error_ = std::move(error);
  }

  bool StopRequested() const {
    std::lock_guard lock(mu_);
    return stop_;
  }

  const v1::PipelineConfig config_;
  const std::vector<CompiledFilter> filters_;
  // Used by the worker thread only (and by Start() before it runs).
  const std::unique_ptr<RecordSource> source_;
  const std::unique_ptr<RecordSink> sink_;
  std::deque<std::string> pending_;

  std::mutex lifecycle_mu_;  // serialises Start/Stop
  std::thread thread_;       // guarded by lifecycle_mu_

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;          // guarded by mu_
  std::string last_error_;     // guarded by mu_
  std::string input_problem_;  // guarded by mu_

  std::atomic<v1::PipelineHealth::State> state_{v1::PipelineHealth::STOPPED};
  std::atomic<uint64_t> records_in_{0};
  std::atomic<uint64_t> records_out_{0};
  std::atomic<uint64_t> records_dropped_{0};
  std::atomic<uint64_t> errors_{0};
};

}  // namespace

Result<std::unique_ptr<PipelineRunner>> MakePipelineRunner(const v1::PipelineConfig& config,
                                                           PipelineContext context) {
  auto plan = Validate(config.spec(), context);
  if (!plan.ok()) {
    return Error{plan.error().code, "pipeline \"" + config.name() + "\": " + plan.error().message};
  }
  const v1::PipelineSpec& spec = config.spec();

  std::unique_ptr<RecordSource> source;
  if (plan->input_kind == v1::Input::kGenerate) {
    source = std::make_unique<GenerateSource>(spec.input().generate().message(),
                                              milliseconds(plan->interval_ms),
                                              spec.input().generate().count());
  } else {
    source =
        std::make_unique<FileTailSource>(plan->input_path, spec.input().file().from_beginning());
  }

  std::unique_ptr<RecordSink> sink;
  switch (plan->output_kind) {
    case v1::Output::kFile:
      sink = std::make_unique<FileSink>(plan->output_path);
      break;
    case v1::Output::kMqtt:
      sink = std::make_unique<MqttSink>(std::move(context.publish), spec.output().mqtt().stream(),
                                        static_cast<int>(spec.output().mqtt().qos()));
      break;
    default:
      sink = std::make_unique<StdoutSink>();
      break;
  }
  return std::unique_ptr<PipelineRunner>(std::make_unique<PipelineRunnerImpl>(
      config, std::move(plan->filters), std::move(source), std::move(sink)));
}

}  // namespace cairn::edge
