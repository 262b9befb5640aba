// The three seams of a pipeline (Input -> Processor... -> Output) and the one
// environment through which components reach the world: time, checkpoints,
// the outbound publish, the node's name and labels, the data directory.
// Tests build an Env with a FakeClock and drive components directly.
//
// Thread-safety: a pipeline's components are created, used and destroyed by
// its runner, one thread at a time (the runner's worker, or Start/Stop while
// the worker is not running). The Env's members are thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cairn/edge/file_roots.h"
#include "cairn/common/clock.h"
#include "cairn/common/result.h"
#include "cairn/common/selector.h"
#include "cairn/edge/runtime/record.h"

namespace cairn::edge::runtime {

using std::chrono::milliseconds;

// Publishes a payload to a workspace data stream (what an mqtt output sends).
// May fail while the link is down.
using PublishFn =
    std::function<Status(const std::string& stream, const std::string& payload, int qos)>;

// What a stream subscription delivers: the payload and its content type
// (kRecordBatchContentType for a node's batches, record_batch.h).
struct StreamMessage {
  std::string payload;
  std::string content_type;
};
// Ends a subscription when destroyed (unsubscribes; no callback runs after
// the destructor returned).
class Subscription {
 public:
  virtual ~Subscription() = default;
};
using SubscribeFn = std::function<Result<std::unique_ptr<Subscription>>(
    const std::string& stream, std::function<void(StreamMessage)> on_message)>;

// Small persistent key/value store for positions that must survive a
// restart (a file input's offset). Keys are scoped to one pipeline.
class Checkpoints {
 public:
  virtual ~Checkpoints() = default;
  virtual std::optional<std::string> Load(const std::string& key) = 0;
  virtual void Save(const std::string& key, const std::string& value) = 0;
};

// Keeps checkpoints in memory (standalone runs, tests).
class MemoryCheckpoints final : public Checkpoints {
 public:
  std::optional<std::string> Load(const std::string& key) override;
  void Save(const std::string& key, const std::string& value) override;

 private:
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> values_;
};

// Keeps each checkpoint in a file of `dir` (created on first save), written
// to a temporary file and renamed, so a crash leaves the old or the new
// value. No fsync: after a power loss a position may go back (records are
// then read again, never lost).
class FileCheckpoints final : public Checkpoints {
 public:
  explicit FileCheckpoints(std::string dir) : dir_(std::move(dir)) {}
  std::optional<std::string> Load(const std::string& key) override;
  void Save(const std::string& key, const std::string& value) override;

 private:
  std::string PathOf(const std::string& key) const;
  const std::string dir_;
  std::mutex mu_;
};

// Wakes a pipeline's runner before the wait its input asked for is over
// (an mqtt input that just received records). Thread-safe.
class Wakeup {
 public:
  void Notify();
  // Waits until Notify() (since the last wait returned) or `d` passed.
  void WaitFor(milliseconds d);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
};

// A component's way to the node's log (spdlog, with the pipeline's name),
// rate limited per pipeline so that a component failing on every record
// cannot flood the log (or the node's logs topic the log is shipped to).
// Lines over the limit are counted and the count is logged with the next
// line that passes. Thread-safe.
class ComponentLog {
 public:
  enum class Level { kDebug, kInfo, kWarn, kError };
  // At most `burst` lines at once, refilled at `per_second`.
  ComponentLog(std::string pipeline, const Clock* clock, double per_second = 5, double burst = 20);
  void operator()(Level level, const std::string& line);
  uint64_t suppressed() const;

 private:
  const std::string pipeline_;
  const Clock* clock_;
  const double per_second_;
  const double burst_;
  mutable std::mutex mu_;
  double tokens_;
  int64_t last_ms_ = -1;
  uint64_t suppressed_ = 0;        // total, for tests
  uint64_t suppressed_since_ = 0;  // since the last line that passed
};

struct Env {
  const Clock* clock = &SystemClock::Instance();
  std::string workspace;
  std::string node;
  // The node's labels now (labels follow relabels without a restart).
  std::function<Labels()> labels = [] { return Labels{}; };
  // Relative paths in a spec resolve below this directory.
  std::string data_dir;
  PublishFn publish;  // empty: this node cannot publish (an mqtt output is refused)
  std::shared_ptr<Checkpoints> checkpoints = std::make_shared<MemoryCheckpoints>();
  // The pipeline's name, for log lines.
  std::string pipeline;
  // Whether the node's owner allows `exec` inputs (a local setting, never
  // from the control plane).
  bool allow_exec = false;
  // What pipelines may read and write on this node (the owner's
  // --allow-read/--allow-write; docs/deploy-node.md). Null: paths are only
  // checked as text (unit tests of components that do not touch files).
  std::shared_ptr<const FileRoots> files;
  // Subscribes to a data stream of this workspace (the `mqtt` input):
  // payloads of cairn/v1/ws/{ws}/data/{stream} go to `on_message` (from the
  // MQTT client's thread: copy and return) until the returned handle is
  // destroyed. Empty: this node cannot subscribe (no broker).
  SubscribeFn subscribe;
  // The component's log (rate limited; lines carry the pipeline's name).
  // Never null once the runtime built the Env.
  std::shared_ptr<ComponentLog> log;
  // Wakes the runner (inputs fed from another thread).
  std::shared_ptr<Wakeup> wakeup = std::make_shared<Wakeup>();

  int64_t NowMs() const { return clock->NowMs(); }
  void Log(ComponentLog::Level level, const std::string& line) const {
    if (log) (*log)(level, line);
  }
};

// A record source. Poll is called again after the wait it returned (or
// sooner); it must return promptly (bounded work per call), so that Stop()
// is bounded in time.
class Input {
 public:
  virtual ~Input() = default;
  // Called once by Start() before the first Poll (e.g. a file input fixes
  // where reading begins). An error fails the pipeline.
  virtual Status Begin() { return OkStatus(); }
  // Appends the records available now and returns how long to wait before
  // the next call (0: more is ready). An error says why nothing can be read
  // now; the runner reports it and retries. kNotFound marks a condition
  // expected to clear by itself (a file that does not exist yet) and is not
  // counted in `errors`.
  virtual Result<milliseconds> Poll(std::vector<Record>* out) = 0;
  // Called when the pipeline stops (e.g. end a child process). Idempotent.
  virtual void End() {}
  // Records lost before Poll could hand them on (an mqtt input's buffer was
  // full) since the last call; the runner counts them as dropped.
  virtual uint64_t TakeDropped() { return 0; }
};

// What a processor hands on: the records it emits and how many it dropped.
class Emitter {
 public:
  void Emit(Record r) { records_.push_back(std::move(r)); }
  void Drop(uint64_t n = 1) { dropped_ += n; }
  std::vector<Record>& records() { return records_; }
  uint64_t dropped() const { return dropped_; }

 private:
  std::vector<Record> records_;
  uint64_t dropped_ = 0;
};

class Processor {
 public:
  virtual ~Processor() = default;
  // Takes one record and emits zero or more. A record neither emitted nor
  // kept (batch/aggregate keep them) must be counted with Drop(). An error
  // counts in `errors` (and the record as dropped if nothing was emitted).
  virtual Status Process(Record record, Emitter* out) = 0;
  // For time-driven processors: emits what is due at `now_ms` and returns
  // when to be called next (nullopt: nothing pending).
  virtual std::optional<int64_t> Tick(int64_t /*now_ms*/, Emitter* /*out*/) {
    return std::nullopt;
  }
  // The pipeline stops: emit what is held (a partial batch).
  virtual void Flush(Emitter* /*out*/) {}
};

struct WriteResult {
  enum class Kind {
    kWritten,  // accepted: written, or held for the output's next batch
    kDropped,  // this record is lost; the output keeps working (link down)
    kFailed,   // the output cannot continue; the pipeline fails
    kRetry,    // not accepted now (the sink is failing, or is busy): the runner
               // keeps this record, stops reading its input (backpressure)
               // and offers the same record again after `retry_after`. With
               // an error it counts as one (a failing sink); with an empty
               // error it is plain backpressure (a busy sink), not an error
  };
  Kind kind = Kind::kWritten;
  std::string error;
  milliseconds retry_after{0};  // kRetry only
};

class Output {
 public:
  virtual ~Output() = default;
  // Prepares the output on the worker thread; an error fails the pipeline.
  virtual Status Open() { return OkStatus(); }
  virtual WriteResult Write(const Record& record) = 0;
  // For outputs that hold records (an http batch): sends what is due at
  // `now_ms` and returns when to be called next (nullopt: nothing held).
  // Bounded work (one request at most).
  virtual std::optional<int64_t> Tick(int64_t /*now_ms*/) { return std::nullopt; }
  // The pipeline stops: one bounded last attempt to send what is held.
  // Returns how many held records could not be sent (counted as dropped).
  virtual uint64_t Flush() { return 0; }
  // Records accepted earlier that the output has since given up on (an
  // http batch the server refused for good), and why; the runner counts
  // them as dropped. Returns 0 when there are none.
  virtual uint64_t TakeLost(std::string* /*why*/) { return 0; }
  // A failure since the last call that no WriteResult reported (a send
  // from Tick or Flush that failed and will be retried); the runner counts
  // it in `errors` and logs it.
  virtual std::optional<std::string> TakeError() { return std::nullopt; }
};

// Resolves a path from a spec for reading or writing. With env.files, the
// node's roots decide (relative paths below DATA_DIR/in or DATA_DIR/out;
// the node's own files never). Without, relative paths are below
// env.data_dir and may not climb out of it with "..". `field` names the spec
// field for messages.
Result<std::string> ResolvePath(const std::string& field, const std::string& path, const Env& env,
                                FileAccess access);

}  // namespace cairn::edge::runtime
