// The node's pipeline runtime: each pipeline runs input -> processors ->
// output on its own thread, so updating or failing one never touches the
// others. First set: inputs generate, file (tail); processor filter; outputs
// file (append), mqtt (publish to cairn/v1/ws/{ws}/data/{stream}), stdout.
// Thread-safety: PipelineRunner methods are thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "cairn/common/clock.h"
#include "cairn/common/result.h"
#include "cairn/common/selector.h"
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
};

class PipelineRunner {
 public:
  virtual ~PipelineRunner() = default;
  // Starts the pipeline thread. Idempotent.
  virtual void Start() = 0;
  // Stops and joins the thread (bounded: inputs poll at most every 100 ms).
  virtual void Stop() = 0;
  // Current state and counters; name/version from the config.
  virtual v1::PipelineHealth Health() const = 0;
  virtual const v1::PipelineConfig& config() const = 0;
};

// Validates `config.spec` and builds a runner (not yet started).
Result<std::unique_ptr<PipelineRunner>> MakePipelineRunner(const v1::PipelineConfig& config,
                                                           PipelineContext context);

}  // namespace cairn::edge
