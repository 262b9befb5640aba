// Pipeline runner: checks a PipelineConfig with the one validator, builds its
// components from the registry and drives them on one worker thread:
// poll the input, pass each record through the processors, write to the
// output; call processors' and the output's timers (batch, windows, an http
// batch); on stop, flush what the processors and the output hold. When the
// output refuses records for now (WriteResult::kRetry, a failing sink), the
// runner keeps them, stops reading its input (backpressure: a file input
// stays where it is, an mqtt input's bounded buffer fills and drops) and
// offers them again when asked; nothing is lost while the pipeline runs.
//
// Threading: each runner owns one worker thread. Components are touched only
// by that thread (or by Start() before it runs). Counters are atomics;
// last_error sits under a mutex; lifecycle calls (Start/Stop) are serialised
// by their own mutex so that Stop() can join without blocking Health().
#include "cairn/edge/pipeline_runtime.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "cairn/common/pipeline_spec.h"

namespace cairn::edge {
namespace {

using runtime::Emitter;
using runtime::Record;
using runtime::WriteResult;
using std::chrono::milliseconds;

// How soon an input that reported a problem (missing file) is polled again.
constexpr milliseconds kRetryInterval{100};
// Longest sleep while a processor has a timer pending: keeps an injected
// clock that jumps (tests) from stalling a timer for long.
constexpr milliseconds kMaxTimerWait{100};
// Records run through the pipeline together (Stop() is checked between).
constexpr size_t kChunk = 256;

class PipelineRunnerImpl final : public PipelineRunner {
 public:
  PipelineRunnerImpl(v1::PipelineConfig config, runtime::Env env,
                     std::unique_ptr<runtime::Input> input,
                     std::vector<std::unique_ptr<runtime::Processor>> processors,
                     std::unique_ptr<runtime::Output> output)
      : config_(std::move(config)),
        env_(std::move(env)),
        input_(std::move(input)),
        processors_(std::move(processors)),
        output_(std::move(output)) {}

  ~PipelineRunnerImpl() override {
    Stop();
    input_->End();
  }

  void Start() override {
    std::lock_guard lifecycle(lifecycle_mu_);
    if (thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      stop_ = false;
    }
    if (Status s = input_->Begin(); !s.ok()) {
      ++errors_;
      Fail(s.error().message);
      return;
    }
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
    env_.wakeup->Notify();
    thread_.join();
    input_->End();
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
    if (!opened_) {
      if (Status s = output_->Open(); !s.ok()) {
        ++errors_;
        Fail(s.error().message);
        return;
      }
      opened_ = true;
    }
    std::vector<Record> polled;
    while (!StopRequested()) {
      milliseconds wait{0};
      // Backpressure: while the output refuses records (a failing sink),
      // nothing new is read; the refused records are offered again when the
      // output asked to be retried.
      if (!out_pending_.empty()) {
        if (!DrainOutput(&wait)) return;
        if (!out_pending_.empty()) {
          Sleep(std::min(wait, kMaxTimerWait));
          continue;
        }
      }
      if (pending_.empty()) {
        polled.clear();
        auto r = input_->Poll(&polled);
        if (r.ok()) {
          wait = *r;
          ClearInputProblem();
        } else {
          wait = kRetryInterval;
          ReportInputProblem(r.error());
        }
        for (Record& rec : polled) pending_.push_back(std::move(rec));
        records_dropped_ += input_->TakeDropped();
      }
      // Records are taken off `pending_` in small chunks so that a Stop() in
      // the middle of a poll's records leaves the rest for the next Start(),
      // and a refusing output stops the reading after one chunk.
      while (!pending_.empty() && out_pending_.empty() && !StopRequested()) {
        std::vector<Record> chunk;
        const size_t n = std::min(pending_.size(), kChunk);
        chunk.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          chunk.push_back(std::move(pending_.front()));
          pending_.pop_front();
        }
        records_in_ += n;
        if (!Push(0, std::move(chunk))) return;
      }
      if (!out_pending_.empty()) continue;
      if (!pending_.empty()) break;  // stop requested
      const int64_t now = env_.NowMs();
      std::optional<int64_t> next_timer;
      if (!Tick(now, &next_timer)) return;
      if (std::optional<int64_t> t = output_->Tick(now); t && (!next_timer || *t < *next_timer)) {
        next_timer = t;
      }
      CollectLost();
      if (!out_pending_.empty()) continue;
      if (next_timer) {
        wait = std::min({wait, milliseconds(std::max<int64_t>(0, *next_timer - now)),
                         kMaxTimerWait});
      }
      if (wait <= milliseconds(0)) continue;
      Sleep(wait);
    }
    FlushProcessors();
    milliseconds ignored{0};
    if (!out_pending_.empty() && !DrainOutput(&ignored)) return;
    uint64_t lost = output_->Flush();
    CollectLost();
    if (!out_pending_.empty()) {
      lost += out_pending_.size();
      out_pending_.clear();
    }
    if (lost > 0) {
      records_dropped_ += lost;
      const std::string why = std::to_string(lost) + " records not delivered when the pipeline stopped (" +
                              LastError() + ")";
      SetLastError(why);
      env_.Log(runtime::ComponentLog::Level::kWarn, why);
    }
  }

  // Waits `d`, or until Stop() or an input's wake-up.
  void Sleep(milliseconds d) { env_.wakeup->WaitFor(d); }

  // Runs records through processors [from, end) and the output. False if
  // the pipeline has failed.
  bool Push(size_t from, std::vector<Record> records) {
    for (size_t i = from; i < processors_.size() && !records.empty(); ++i) {
      Emitter out;
      for (Record& r : records) {
        const size_t emitted = out.records().size();
        const uint64_t dropped = out.dropped();
        Status s = processors_[i]->Process(std::move(r), &out);
        if (!s.ok()) {
          ++errors_;
          SetLastError(s.error().message);
          if (out.records().size() == emitted && out.dropped() == dropped) out.Drop();
        }
      }
      records_dropped_ += out.dropped();
      records = std::move(out.records());
    }
    for (Record& r : records) out_pending_.push_back(std::move(r));
    milliseconds ignored{0};
    return DrainOutput(&ignored);
  }

  // Offers the waiting records to the output, in order, unless it asked to
  // be retried later (then `*wait` is how long). False if the pipeline failed.
  bool DrainOutput(milliseconds* wait) {
    const int64_t now = env_.NowMs();
    if (now < retry_at_ms_) {
      *wait = milliseconds(retry_at_ms_ - now);
      return true;
    }
    while (!out_pending_.empty()) {
      WriteResult w = output_->Write(out_pending_.front());
      switch (w.kind) {
        case WriteResult::Kind::kWritten:
          ++records_out_;
          break;
        case WriteResult::Kind::kDropped:
          ++errors_;
          ++records_dropped_;
          SetLastError(std::move(w.error));
          break;
        case WriteResult::Kind::kFailed:
          ++errors_;
          ++records_dropped_;
          Fail(std::move(w.error));
          return false;
        case WriteResult::Kind::kRetry:
          if (!w.error.empty()) {  // a failing sink; an empty error is plain backpressure
            ++errors_;
            env_.Log(runtime::ComponentLog::Level::kWarn,
                     w.error + "; retrying in " + std::to_string(w.retry_after.count()) + "ms (input paused)");
            SetLastError(std::move(w.error));
          }
          retry_at_ms_ = now + std::max<int64_t>(1, w.retry_after.count());
          *wait = milliseconds(retry_at_ms_ - now);
          return true;
      }
      out_pending_.pop_front();
    }
    retry_at_ms_ = 0;
    CollectLost();
    return true;
  }

  // Counts what the output gave up on after accepting it, and the
  // failures it met outside Write (a timer-driven send).
  void CollectLost() {
    std::string why;
    if (const uint64_t n = output_->TakeLost(&why); n > 0) {
      records_dropped_ += n;
      ++errors_;
      SetLastError(std::move(why));
    }
    if (std::optional<std::string> e = output_->TakeError()) {
      ++errors_;
      env_.Log(runtime::ComponentLog::Level::kWarn, *e);
      SetLastError(std::move(*e));
    }
  }

  bool Tick(int64_t now, std::optional<int64_t>* next) {
    for (size_t i = 0; i < processors_.size(); ++i) {
      Emitter out;
      std::optional<int64_t> t = processors_[i]->Tick(now, &out);
      if (t && (!*next || *t < **next)) *next = t;
      records_dropped_ += out.dropped();
      if (!out.records().empty() && !Push(i + 1, std::move(out.records()))) return false;
    }
    return true;
  }

  void FlushProcessors() {
    for (size_t i = 0; i < processors_.size(); ++i) {
      Emitter out;
      processors_[i]->Flush(&out);
      records_dropped_ += out.dropped();
      if (!out.records().empty() && !Push(i + 1, std::move(out.records()))) return;
    }
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
    env_.Log(runtime::ComponentLog::Level::kWarn, e.message);
  }

  void ClearInputProblem() {
    std::lock_guard lock(mu_);
    if (input_problem_.empty()) return;
    if (last_error_ == input_problem_) last_error_.clear();
    input_problem_.clear();
  }

  std::string LastError() const {
    std::lock_guard lock(mu_);
    return last_error_;
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
  const runtime::Env env_;
  // Used by the worker thread only (and by Start/Stop while it is not running).
  const std::unique_ptr<runtime::Input> input_;
  const std::vector<std::unique_ptr<runtime::Processor>> processors_;
  const std::unique_ptr<runtime::Output> output_;
  bool opened_ = false;
  std::deque<Record> pending_;
  // Records past the processors that the output has not accepted yet (it
  // asked to be retried at retry_at_ms_): at most one chunk's worth.
  std::deque<Record> out_pending_;
  int64_t retry_at_ms_ = 0;

  std::mutex lifecycle_mu_;  // serialises Start/Stop
  std::thread thread_;       // guarded by lifecycle_mu_

  mutable std::mutex mu_;
  bool stop_ = false;          // guarded by mu_
  std::string last_error_;     // guarded by mu_
  std::string input_problem_;  // guarded by mu_

  std::atomic<v1::PipelineHealth::State> state_{v1::PipelineHealth::STOPPED};
  std::atomic<uint64_t> records_in_{0};
  std::atomic<uint64_t> records_out_{0};
  std::atomic<uint64_t> records_dropped_{0};
  std::atomic<uint64_t> errors_{0};
};

runtime::Env MakeEnv(const v1::PipelineConfig& config, PipelineContext context) {
  runtime::Env env;
  if (context.clock != nullptr) env.clock = context.clock;
  env.workspace = std::move(context.workspace);
  env.node = std::move(context.node);
  if (context.current_labels) {
    env.labels = std::move(context.current_labels);
  } else {
    env.labels = [labels = std::move(context.labels)] { return labels; };
  }
  env.data_dir = std::move(context.data_dir);
  env.publish = std::move(context.publish);
  if (context.checkpoints) env.checkpoints = std::move(context.checkpoints);
  env.pipeline = config.name();
  env.allow_exec = context.allow_exec;
  env.files = std::move(context.files);
  env.subscribe = std::move(context.subscribe);
  env.log = std::make_shared<runtime::ComponentLog>(config.name(), env.clock);
  return env;
}

}  // namespace

Result<std::unique_ptr<PipelineRunner>> MakePipelineRunner(
    const v1::PipelineConfig& config, PipelineContext context,
    const runtime::ComponentRegistry& registry) {
  auto fail = [&](const Error& e) {
    return Error{e.code, "pipeline \"" + config.name() + "\": pipeline." + e.message};
  };
  if (Status s = ValidatePipelineSpec(config.spec()); !s.ok()) return fail(s.error());
  runtime::Env env = MakeEnv(config, std::move(context));
  const v1::PipelineSpec& spec = config.spec();

  auto input = registry.MakeInput(spec.input(), env);
  if (!input.ok()) return fail(input.error());
  std::vector<std::unique_ptr<runtime::Processor>> processors;
  for (int i = 0; i < spec.processors_size(); ++i) {
    auto p = registry.MakeProcessor(spec.processors(i), "processors[" + std::to_string(i) + "]",
                                    env);
    if (!p.ok()) return fail(p.error());
    processors.push_back(std::move(*p));
  }
  auto output = registry.MakeOutput(spec.output(), env);
  if (!output.ok()) return fail(output.error());
  return std::unique_ptr<PipelineRunner>(std::make_unique<PipelineRunnerImpl>(
      config, std::move(env), std::move(*input), std::move(processors), std::move(*output)));
}

}  // namespace cairn::edge
