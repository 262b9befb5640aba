// `filter` processor: keeps records whose text contains a substring and/or
// matches an ECMAScript regex (`invert` keeps the others). libstdc++'s
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
  FilterProcessor(std::string contains, std::optional<std::regex> regex, bool invert)
      : contains_(std::move(contains)), regex_(std::move(regex)), invert_(invert) {}

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
    if (match != invert_) {
      out->Emit(std::move(record));
    } else {
      out->Drop();
    }
    return OkStatus();
  }

 private:
  const std::string contains_;
  const std::optional<std::regex> regex_;
  const bool invert_;
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
    return std::unique_ptr<Processor>(
        std::make_unique<FilterProcessor>(c.contains(), std::move(re), c.invert()));
  });
}

}  // namespace cairn::edge::runtime
