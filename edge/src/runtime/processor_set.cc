// `set` processor: adds fields to every record: constants (`fields`), the
// node's name (`node_field`) and its labels as an object (`labels_field`).
// Labels are read from the Env on each record, so a relabel shows at once
// without restarting the pipeline.
#include <map>

#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

class SetProcessor final : public Processor {
 public:
  SetProcessor(const v1::SetProcessor& c, const Env& env)
      : node_field_(c.node_field()),
        labels_field_(c.labels_field()),
        node_(env.node),
        labels_(env.labels) {
    // Sorted: the order of a proto map is unspecified.
    std::map<std::string, std::string> sorted(c.fields().begin(), c.fields().end());
    for (const auto& [k, v] : sorted) fields_.emplace_back(k, v);
  }

  Status Process(Record record, Emitter* out) override {
    for (const auto& [k, v] : fields_) record.fields.Set(k, Value::String(v));
    if (!node_field_.empty()) record.fields.Set(node_field_, Value::String(node_));
    if (!labels_field_.empty()) {
      Fields labels;
      if (labels_) {
        for (const auto& [k, v] : labels_()) labels.Set(k, Value::String(v));
      }
      record.fields.Set(labels_field_, Value::RawJson(ToJson(labels)));
    }
    out->Emit(std::move(record));
    return OkStatus();
  }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
  const std::string node_field_;
  const std::string labels_field_;
  const std::string node_;
  const std::function<Labels()> labels_;
};

}  // namespace

void RegisterSetProcessor(ComponentRegistry* r) {
  (void)r->AddProcessor("set", [](const google::protobuf::Message& m, const std::string&,
                                  const Env& env) -> Result<std::unique_ptr<Processor>> {
    return std::unique_ptr<Processor>(
        std::make_unique<SetProcessor>(static_cast<const v1::SetProcessor&>(m), env));
  });
}

}  // namespace cairn::edge::runtime
