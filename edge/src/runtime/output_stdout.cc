// `stdout` output: prints one line per record; one lock for every pipeline
// so that lines never interleave.
#include <cstdio>
#include <mutex>

#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

class StdoutOutput final : public Output {
 public:
  WriteResult Write(const Record& record) override {
    const std::string text = record.Text();
    static std::mutex mu;
    std::lock_guard lock(mu);
    const bool ok = std::fwrite(text.data(), 1, text.size(), stdout) == text.size() &&
                    std::fputc('\n', stdout) != EOF && std::fflush(stdout) == 0;
    if (!ok) return {WriteResult::Kind::kDropped, "cannot write to stdout"};
    return {};
  }
};

}  // namespace

void RegisterStdoutOutput(ComponentRegistry* r) {
  (void)r->AddOutput("stdout", [](const google::protobuf::Message&, const std::string&,
                                  const Env&) -> Result<std::unique_ptr<Output>> {
    return std::unique_ptr<Output>(std::make_unique<StdoutOutput>());
  });
}

}  // namespace cairn::edge::runtime
