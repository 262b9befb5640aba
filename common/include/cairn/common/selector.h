// Label selectors, in the seed's map form ({env: production}, all must match)
// and the Kubernetes string form:
//   env=production,region in (us-east-1,eu-west-1),tier!=db,canary,!legacy
// Supported: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`
// (exists), `!k` (does not exist). Requirements are ANDed; the empty selector
// matches every node. As in Kubernetes, `k!=v` and `k notin (...)` also match
// nodes that lack `k`.
// Thread-safety: immutable value type.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/result.h"

namespace cairn {

using Labels = std::map<std::string, std::string>;

// Label keys: optional DNS-subdomain prefix and '/', then a name of 1-63
// chars [A-Za-z0-9._-] starting and ending alphanumeric. Values: 0-63 chars of
// the same set (non-empty values start and end alphanumeric).
Status ValidateLabelKey(std::string_view key);
Status ValidateLabelValue(std::string_view value);
Status ValidateLabels(const Labels& labels);

struct Requirement {
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kNotExists };
  std::string key;
  Op op;
  std::vector<std::string> values;  // sorted, unique; one for =/!=, none for exists

  bool operator==(const Requirement&) const = default;
};

class Selector {
 public:
  Selector() = default;

  static Result<Selector> Parse(std::string_view text);
  static Result<Selector> FromMap(const Labels& map);

  bool Matches(const Labels& labels) const;
  bool empty() const { return requirements_.empty(); }
  const std::vector<Requirement>& requirements() const { return requirements_; }

  // Canonical string form (requirements sorted by key, then operator); parsing
  // it gives back an equal selector.
  std::string ToString() const;

  // A SQL boolean expression over the jsonb column `column` ("labels"),
  // using positional parameters $first, $first+1, ... whose text values are
  // appended to `params` (arrays as PostgreSQL array literals for ::text[]).
  // Equality uses `@>` so that a GIN index on the column serves it. The empty
  // selector yields "TRUE".
  std::string ToSql(const std::string& column, int first, std::vector<std::string>* params) const;

 private:
  std::vector<Requirement> requirements_;
};

}  // namespace cairn
