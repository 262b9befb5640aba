// The node's pipeline runtime: each pipeline runs input -> processors ->
// output on its own thread, so updating or failing one never touches the
// others. The components come from a ComponentRegistry (runtime/registry.h;
// the reference of every kind is docs/pipelines.md); a spec is checked by
// the one validator (common/pipeline_spec.h) before anything is built.
// Thread-safety: PipelineRunner methods are thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "cairn/edge/file_roots.h"
#include "cairn/common/clock.h"
#include "cairn/common/result.h"
#include "cairn/common/selector.h"
#include "cairn/edge/runtime/component.h"
#include "cairn/edge/runtime/registry.h"
#include "cairn/v1/node.pb.h"
#include "cairn/v1/pipeline.pb.h"

namespace cairn::edge {

struct PipelineContext {
  std::string workspace;
  std::string node;
  Labels labels;
  // Relative output/input paths resolve below this directory.
  std::string data_dir;
  // Publishes a record to a workspace data stream (the mqtt output). May
  // fail while the link is down; the runtime counts such records as dropped.
  std::function<Status(const std::string& stream, const std::string& payload, int qos)> publish;
  // Optional. Time for the components (default: the system clock).
  const Clock* clock = nullptr;
  // Optional. The node's labels now (default: `labels`), so that `set`
  // follows relabels without a restart.
  std::function<Labels()> current_labels;
  // Optional. Where inputs keep positions across restarts (default: memory).
  std::shared_ptr<runtime::Checkpoints> checkpoints;
  // Whether `exec` inputs may run commands on this node. A local setting of
  // the node's owner (e.g. `cairn-edge run --allow-exec`), never from the
  // control plane; off by default.
  bool allow_exec = false;
  // Optional. The node's file roots (--allow-read/--allow-write); null:
  // paths are checked as text only.
  std::shared_ptr<const FileRoots> files;
  // Optional. Subscribes to a data stream of this workspace, for `mqtt`
  // inputs (runtime::SubscribeFn; the agent passes its MQTT client's); empty:
  // an mqtt input is refused.
  runtime::SubscribeFn subscribe;
};

class PipelineRunner {
 public:
  virtual ~PipelineRunner() = default;
  // Starts the pipeline thread. Idempotent.
  virtual void Start() = 0;
  // Stops and joins the thread, then flushes what processors hold (a partial
  // batch) to the output. Bounded: each poll and each flush is bounded work.
  virtual void Stop() = 0;
  // Current state and counters; name/version from the config.
  virtual v1::PipelineHealth Health() const = 0;
  virtual const v1::PipelineConfig& config() const = 0;
};

// Validates `config.spec` (ValidatePipelineSpec, the rule cairnctl and the
// scheduler apply) and builds a runner (not yet started) from `registry`.
// Errors are kInvalidArgument with the field's path, e.g.
//   pipeline "p": pipeline.processors[0].filter: needs one of contains, regex
Result<std::unique_ptr<PipelineRunner>> MakePipelineRunner(
    const v1::PipelineConfig& config, PipelineContext context,
    const runtime::ComponentRegistry& registry = runtime::BuiltinRegistry());

}  // namespace cairn::edge
