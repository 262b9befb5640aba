// `parse_json` processor: parses the body as one JSON object into the
// record's fields (the body is then empty: outputs write the fields as JSON).
// A record that is not a JSON object is dropped and counted as an error, or
// passed on unchanged with `keep_invalid`.
#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

class ParseJsonProcessor final : public Processor {
 public:
  explicit ParseJsonProcessor(bool keep_invalid) : keep_invalid_(keep_invalid) {}

  Status Process(Record record, Emitter* out) override {
    Fields parsed;
    Status s = ParseJsonObject(record.body, &parsed);
    if (!s.ok()) {
      if (keep_invalid_) {
        out->Emit(std::move(record));
        return OkStatus();
      }
      out->Drop();
      return Error::InvalidArgument("parse_json: " + s.error().message);
    }
    // Fields set before (by an earlier processor) stay unless overwritten.
    for (auto& [k, v] : parsed.items()) record.fields.Set(k, v);
    record.body.clear();
    out->Emit(std::move(record));
    return OkStatus();
  }

 private:
  const bool keep_invalid_;
};

}  // namespace

void RegisterParseJsonProcessor(ComponentRegistry* r) {
  (void)r->AddProcessor("parse_json", [](const google::protobuf::Message& m, const std::string&,
                                         const Env&) -> Result<std::unique_ptr<Processor>> {
    return std::unique_ptr<Processor>(std::make_unique<ParseJsonProcessor>(
        static_cast<const v1::ParseJsonProcessor&>(m).keep_invalid()));
  });
}

}  // namespace cairn::edge::runtime
