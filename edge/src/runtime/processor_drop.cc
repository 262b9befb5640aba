// `drop` processor: removes the named fields from every record (records
// themselves are dropped by `filter` or `sample`).
#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

class DropProcessor final : public Processor {
 public:
  explicit DropProcessor(std::vector<std::string> fields) : fields_(std::move(fields)) {}

  Status Process(Record record, Emitter* out) override {
    for (const std::string& f : fields_) record.fields.Erase(f);
    out->Emit(std::move(record));
    return OkStatus();
  }

 private:
  const std::vector<std::string> fields_;
};

}  // namespace

void RegisterDropProcessor(ComponentRegistry* r) {
  (void)r->AddProcessor("drop", [](const google::protobuf::Message& m, const std::string&,
                                   const Env&) -> Result<std::unique_ptr<Processor>> {
    const auto& c = static_cast<const v1::DropProcessor&>(m);
    return std::unique_ptr<Processor>(std::make_unique<DropProcessor>(
        std::vector<std::string>(c.fields().begin(), c.fields().end())));
  });
}

}  // namespace cairn::edge::runtime
