// `filter` processor: keeps records whose text contains a substring, matches
// a regex (RE2 syntax: linear time, no backtracking, the whole record however
// long), and/or whose field compares as asked (`field` exists, its text
// `equals`, its number is `above` / `below`); all given conditions must hold;
// `invert` keeps the others. The regex is compiled by the validator's own
// CompileFilterRegex, so what `cairnctl apply` accepts the node runs.
// Thread-safety: one runner thread (component.h); RE2 matching is const.
#include <memory>
#include <optional>

#include <re2/re2.h>

#include "cairn/common/pipeline_spec.h"
#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

class FilterProcessor final : public Processor {
 public:
  FilterProcessor(const v1::FilterProcessor& c, std::shared_ptr<const re2::RE2> regex)
      : contains_(c.contains()),
        regex_(std::move(regex)),
        invert_(c.invert()),
        field_(c.field()),
        equals_(c.equals()),
        above_(c.has_above() ? std::optional<double>(c.above()) : std::nullopt),
        below_(c.has_below() ? std::optional<double>(c.below()) : std::nullopt) {}

  Status Process(Record record, Emitter* out) override {
    const std::string text = record.fields.empty() ? std::string() : record.Text();
    const std::string& t = record.fields.empty() ? record.body : text;
    bool match = contains_.empty() || t.find(contains_) != std::string::npos;
    if (match && regex_) match = re2::RE2::PartialMatch(t, *regex_);
    if (match && !field_.empty()) match = FieldMatches(record.fields.Find(field_));
    if (match != invert_) {
      out->Emit(std::move(record));
    } else {
      out->Drop();
    }
    return OkStatus();
  }

 private:
  bool FieldMatches(const Value* v) const {
    if (v == nullptr) return false;
    if (!equals_.empty() && v->AsText() != equals_) return false;
    if (above_ || below_) {
      if (v->kind != Value::Kind::kNumber) return false;
      if (above_ && !(v->number > *above_)) return false;
      if (below_ && !(v->number < *below_)) return false;
    }
    return true;
  }

  const std::string contains_;
  const std::shared_ptr<const re2::RE2> regex_;  // null: no regex
  const bool invert_;
  const std::string field_;
  const std::string equals_;
  const std::optional<double> above_;
  const std::optional<double> below_;
};

}  // namespace

void RegisterFilterProcessor(ComponentRegistry* r) {
  (void)r->AddProcessor("filter", [](const google::protobuf::Message& m, const std::string& path,
                                     const Env&) -> Result<std::unique_ptr<Processor>> {
    const auto& c = static_cast<const v1::FilterProcessor&>(m);
    std::shared_ptr<const re2::RE2> re;
    if (!c.regex().empty()) {
      auto compiled = CompileFilterRegex(c.regex());
      if (!compiled.ok()) return Error::InvalidArgument(path + ".regex: " + compiled.error().message);
      re = std::move(*compiled);
    }
    return std::unique_ptr<Processor>(std::make_unique<FilterProcessor>(c, std::move(re)));
  });
}

}  // namespace cairn::edge::runtime
