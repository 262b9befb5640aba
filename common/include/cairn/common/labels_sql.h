// Moving label maps in and out of PostgreSQL jsonb columns.
// Label keys and values cannot contain ',' or '=' (see ValidateLabelKey), so
// "k=v,k2=v2" (what `string_agg(key || '=' || value, ',')` over
// jsonb_each_text yields) is an unambiguous transport form.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "cairn/common/selector.h"

namespace cairn {

// SQL expression yielding the "k=v,k2=v2" form of the jsonb column `labels`
// (read it back with ParseLabelsKv).
inline const std::string kLabelsKvSql =
    "COALESCE((SELECT string_agg(key || '=' || value, ',') FROM jsonb_each_text(labels)), '')";

std::string LabelsToJson(const Labels& labels);      // {"k":"v",...}, JSON-escaped
Labels ParseLabelsKv(const std::string& kv);          // "k=v,k2=v2" -> map
std::string TextArrayLiteral(const std::vector<std::string>& items);  // {"a","b"}
std::string JsonEscape(const std::string& s);         // without surrounding quotes

}  // namespace cairn
