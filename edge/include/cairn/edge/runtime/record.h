// A record flowing through a pipeline: a body (the raw line), structured
// fields (filled by parse_json, set, aggregate...), a timestamp and where it
// came from. Plus the small JSON reader/writer the components share.
// Thread-safety: plain values; no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "cairn/common/result.h"

namespace cairn::edge::runtime {

// A JSON value kept flat: scalars are typed; a nested object or array is kept
// as its JSON text (kRawJson) and written back verbatim.
struct Value {
  enum class Kind { kNull, kBool, kNumber, kString, kRawJson };
  Kind kind = Kind::kNull;
  bool boolean = false;
  double number = 0;
  std::string text;  // kString: the string; kRawJson: the JSON text

  static Value Null() { return {}; }
  static Value Bool(bool b) { return {Kind::kBool, b, 0, {}}; }
  static Value Number(double n) { return {Kind::kNumber, false, n, {}}; }
  static Value String(std::string s) { return {Kind::kString, false, 0, std::move(s)}; }
  static Value RawJson(std::string j) { return {Kind::kRawJson, false, 0, std::move(j)}; }

  // The value as text for comparisons and grouping: a string as is, others
  // as their JSON text.
  std::string AsText() const;
  bool operator==(const Value& o) const {
    return kind == o.kind && boolean == o.boolean && number == o.number && text == o.text;
  }
};

// Fields in insertion order (records are small; lookups are linear).
class Fields {
 public:
  const Value* Find(std::string_view name) const;
  void Set(std::string name, Value value);  // replaces or appends
  bool Erase(std::string_view name);
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, Value>> items_;
};

// Where a record came from: the input's source (a file path, a command,
// "generate") and a position in it (a byte offset or a sequence number).
struct SourcePosition {
  std::string source;
  uint64_t offset = 0;
};

struct Record {
  std::string body;
  Fields fields;
  int64_t timestamp_ms = 0;  // wall time the input read it
  SourcePosition position;

  // What outputs write: the body when there are no fields; else the fields
  // as a JSON object, with the body (if any) under "message".
  std::string Text() const;
};

// Parses `text` as a JSON object into `out` (top-level members). Errors say
// why, for the pipeline's last_error.
Status ParseJsonObject(std::string_view text, Fields* out);
// JSON text of `fields` as one object.
std::string ToJson(const Fields& fields);
// A JSON string literal (with quotes) for `s`.
std::string JsonQuote(std::string_view s);

}  // namespace cairn::edge::runtime
