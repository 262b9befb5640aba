// Standalone runs for pipeline authors (issue 6 §6):
//
//   cairn-edge run --pipeline FILE.yaml [--data-dir DIR] [--allow-read DIR]...
//       [--allow-write DIR]... [--allow-exec] [--check]
//       [--broker-url URL [--username U] [--password-file F] [--ca-file F]]
//
// runs one pipeline file locally with the node's own runtime, validator,
// file roots and (for an `mqtt` output) outbound queue, without a control
// plane, identity or broker. The file is the one `cairnctl pipeline apply -f`
// takes (docs/pipelines.md). Defaults and rules (documented in
// docs/pipelines.md, "Trying a pipeline locally"):
//  - the data dir is the current directory unless --data-dir says otherwise;
//    relative paths read below DATA_DIR/in and write below DATA_DIR/out, as
//    on a node, plus the --allow-read / --allow-write roots;
//  - an `mqtt` input or output needs --broker-url (refused otherwise, naming
//    the flag); an input reads cairn/v1/ws/{ws}/data/{stream}; output
//    records go through DATA_DIR/queue to
//    cairn/v1/ws/{ws}/data/{stream} ({ws}: the file's workspace, else
//    "local"); the data dir is locked for the run (one run per queue);
//  - --check validates the file (what `apply` would say) and exits;
//  - SIGINT/SIGTERM stop the pipeline (flushing what batch/aggregate hold)
//    and, with a broker, wait up to --drain-timeout for the queue to empty.
// Exit codes: 0 stopped by a signal (or --check passed); 1 a bad file or
// option (the message names the field path or the flag), or the pipeline
// failed (its last error is printed).
//
// Thread-safety: StandaloneMain runs on the main thread, which must have
// blocked SIGINT/SIGTERM (BlockStopSignals) before any thread started.
#pragma once

#include <string>
#include <vector>

#include "cairn/common/result.h"
#include "cairn/v1/pipeline.pb.h"

namespace cairn::edge {

// Whether `args` (the arguments after "run") ask for a standalone run:
// they contain --pipeline or --pipeline=FILE.
bool IsStandaloneRun(const std::vector<std::string>& args);

// What an output needs from the command line that a node gets from its
// identity. Error (kFailedPrecondition) naming the flag, e.g.
//   pipeline.output.mqtt: a standalone run publishes to a broker only when
//   given one: add --broker-url URL (e.g. tcp://localhost:1883)
Status CheckStandaloneNeeds(const v1::PipelineSpec& spec, bool has_broker);

// `cairn-edge run --pipeline ...`; `args` are the arguments after "run".
// Returns the process exit code.
int StandaloneMain(const std::vector<std::string>& args);

}  // namespace cairn::edge
