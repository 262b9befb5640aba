// Fuzz target: label selectors, which users type (cairnctl -l, pipeline
// files) and services receive in RPCs (ListNodes, ApplyPipeline).
// Input: line 1 is the selector; the following "key=value" lines are a
// node's labels. Properties checked:
//   - the canonical form parses back to an equal selector (ToString says so);
//   - matching the parsed and the re-parsed selector agrees;
//   - ToSql uses exactly the parameters it appends ($first...).
#include <cstdint>
#include <string>
#include <vector>

#include "cairn/common/selector.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::fuzz::FuzzInput in(data, size);
  std::string text = in.Line();
  cairn::Labels labels;
  while (!in.empty()) {
    std::string kv = in.Line();
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    labels[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  (void)cairn::ValidateLabels(labels);
  (void)cairn::ValidateLabelKey(text);
  (void)cairn::ValidateLabelValue(text);

  auto sel = cairn::Selector::Parse(text);
  if (!sel.ok()) return 0;
  std::string canonical = sel->ToString();
  auto again = cairn::Selector::Parse(canonical);
  CAIRN_FUZZ_CHECK(again.ok(), "canonical form does not parse: '" + text + "' -> '" + canonical + "'");
  CAIRN_FUZZ_CHECK(again->requirements() == sel->requirements(),
                   "canonical form parses to another selector: '" + text + "' -> '" + canonical + "'");
  CAIRN_FUZZ_CHECK(again->ToString() == canonical, "canonical form is not stable: '" + canonical + "'");
  CAIRN_FUZZ_CHECK(sel->Matches(labels) == again->Matches(labels), "match differs after a round trip");

  std::vector<std::string> params;
  std::string sql = sel->ToSql("labels", 3, &params);
  for (size_t i = 0; i < params.size(); ++i) {
    CAIRN_FUZZ_CHECK(sql.find("$" + std::to_string(3 + i)) != std::string::npos,
                     "ToSql appended a parameter it does not use: " + sql);
  }
  CAIRN_FUZZ_CHECK(sql.find("$" + std::to_string(3 + params.size()) + ":") == std::string::npos &&
                       sql.find("$" + std::to_string(3 + params.size()) + " ") == std::string::npos &&
                       sql.find("$" + std::to_string(3 + params.size()) + ")") == std::string::npos,
                   "ToSql uses a parameter it did not append: " + sql);
  CAIRN_FUZZ_CHECK(!sel->empty() || sql == "TRUE", "the empty selector is not TRUE in SQL: " + sql);
  return 0;
}
