// `filter` processor: keeps records whose text contains a substring, matches
// an ECMAScript regex, and/or whose field compares as asked (`field` exists,
// its text `equals`, its number is `above` / `below`); all given conditions
// must hold; `invert` keeps the others. libstdc++'s
// std::regex recurses once per character, so the regex sees at most the
// first 4 KiB of a record (RE2 would lift this; see docs/pipelines.md).
#include <optional>
#include <regex>

#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

constexpr size_t kMaxRegexBytes = 4 * 1024;

class FilterProcessor final : public Processor {
 public:
  FilterProcessor(const v1::FilterProcessor& c, std::optional<std::regex> regex)
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
    if (match && regex_) {
      std::string_view head(t);
      if (head.size() > kMaxRegexBytes) head = head.substr(0, kMaxRegexBytes);
      try {
        match = std::regex_search(head.begin(), head.end(), *regex_);
      } catch (const std::regex_error& e) {
        out->Drop();
        return Error::Internal(std::string("filter: regex failed on a record: ") + e.what());
      }
    }
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
  const std::optional<std::regex> regex_;
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
    std::optional<std::regex> re;
    if (!c.regex().empty()) {
      try {
        re.emplace(c.regex(), std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        return Error::InvalidArgument(path + ".regex: \"" + c.regex() +
                                      "\" does not compile: " + e.what());
      }
    }
    return std::unique_ptr<Processor>(std::make_unique<FilterProcessor>(c, std::move(re)));
  });
}

}  // namespace cairn::edge::runtime
