// `sample` processor: keeps one record in every `one_in` (the first, then
// every one_in-th), deterministically; the others count as dropped.
#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

class SampleProcessor final : public Processor {
 public:
  explicit SampleProcessor(uint32_t one_in) : one_in_(one_in == 0 ? 1 : one_in) {}

  Status Process(Record record, Emitter* out) override {
    if (seen_++ % one_in_ == 0) {
      out->Emit(std::move(record));
    } else {
      out->Drop();
    }
    return OkStatus();
  }

 private:
  const uint64_t one_in_;
  uint64_t seen_ = 0;
};

}  // namespace

void RegisterSampleProcessor(ComponentRegistry* r) {
  (void)r->AddProcessor("sample", [](const google::protobuf::Message& m, const std::string&,
                                     const Env&) -> Result<std::unique_ptr<Processor>> {
    return std::unique_ptr<Processor>(std::make_unique<SampleProcessor>(
        static_cast<const v1::SampleProcessor&>(m).one_in()));
  });
}

}  // namespace cairn::edge::runtime
