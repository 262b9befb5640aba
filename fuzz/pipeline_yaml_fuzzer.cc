// Fuzz target: pipeline files, the YAML a user writes and `cairnctl pipeline
// apply` loads (ParsePipelineYaml), then the checks a node runs on a spec
// (ValidatePipelineSpec). Properties checked for an accepted file:
//   - the pipeline decodes from its own serialization (what the scheduler
//     and nodes receive);
//   - the selector comes back in canonical form (parses to itself);
//   - PipelineSpecToYaml of a valid spec loads again to the same spec
//     (same digest), which `cairnctl pipeline get` output relies on.
#include <cstdint>
#include <string>

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include "cairn/common/pipeline_spec.h"
#include "cairn/common/selector.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto p = cairn::ParsePipelineYaml(text, "demo");
  if (!p.ok()) return 0;
  // What cairnctl sends must decode on the scheduler and on nodes (found by
  // this target: text that is not UTF-8 used to pass; now refused).
  cairn::v1::Pipeline wire;
  CAIRN_FUZZ_CHECK(wire.ParseFromString(p->SerializeAsString()),
                   "accepted pipeline does not decode from the wire (not UTF-8?)");
  auto sel = cairn::Selector::Parse(p->selector());
  CAIRN_FUZZ_CHECK(sel.ok() && sel->ToString() == p->selector(), "selector not canonical: " + p->selector());
  if (!cairn::ValidatePipelineSpec(p->spec()).ok()) return 0;
  std::string digest = cairn::PipelineDigest(p->spec());
  std::string spec_yaml = cairn::PipelineSpecToYaml(p->spec());
  // PipelineSpecToYaml renders the `pipeline:` part; wrap it as a file.
  std::string file = "name: " + p->name() + "\nworkspace: " + p->workspace() + "\npipeline:\n";
  size_t start = 0;
  while (start < spec_yaml.size()) {
    size_t nl = spec_yaml.find('\n', start);
    if (nl == std::string::npos) nl = spec_yaml.size();
    file += "  " + spec_yaml.substr(start, nl - start) + "\n";
    start = nl + 1;
  }
  auto again = cairn::ParsePipelineYaml(file, "demo");
  CAIRN_FUZZ_CHECK(again.ok(), "rendered spec does not load:\n" + file + "\nerror: " +
                                   (again.ok() ? std::string() : again.error().message));
  CAIRN_FUZZ_CHECK(cairn::PipelineDigest(again->spec()) == digest, "rendered spec loads differently:\n" + file);
  return 0;
}
