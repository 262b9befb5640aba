#include "cairn/common/selector.h"
#include "cairn/common/text.h"

#include <algorithm>
#include <tuple>

namespace cairn {
namespace {

constexpr size_t kMaxNameLength = 63;
constexpr size_t kMaxPrefixLength = 253;

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// Why `name` is not a label name (or value, if `allow_empty`), or "".
std::string NameProblem(std::string_view name, bool allow_empty) {
  if (name.empty()) return allow_empty ? "" : "name must not be empty";
  if (name.size() > kMaxNameLength) return "longer than 63 characters";
  for (char c : name) {
    if (!IsAlnum(c) && c != '-' && c != '_' && c != '.') {
      return "character " + Quoted(std::string_view(&c, 1)) +
             " is not allowed (only letters, digits, '-', '_' and '.')";
    }
  }
  if (!IsAlnum(name.front()) || !IsAlnum(name.back())) {
    return "must start and end with a letter or digit";
  }
  return "";
}

// Why `prefix` is not a DNS subdomain (RFC 1123, lower case), or "".
std::string PrefixProblem(std::string_view prefix) {
  if (prefix.empty()) return "prefix before '/' must not be empty";
  if (prefix.size() > kMaxPrefixLength) return "prefix longer than 253 characters";
  size_t start = 0;
  while (start <= prefix.size()) {
    size_t dot = prefix.find('.', start);
    std::string_view label =
        prefix.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    bool ok = !label.empty() && label.size() <= kMaxNameLength && IsLowerAlnum(label.front()) &&
              IsLowerAlnum(label.back()) &&
              std::all_of(label.begin(), label.end(),
                          [](char c) { return IsLowerAlnum(c) || c == '-'; });
    if (!ok) return "prefix must be a lower-case DNS subdomain (e.g. example.com)";
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return "";
}

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  *out += '"';
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (u < 0x20) {
          *out += "\\u00";
          *out += kHex[u >> 4];
          *out += kHex[u & 0xf];
        } else {
          *out += c;
        }
    }
  }
  *out += '"';
}

// {"a","b"}: every element double-quoted, '"' and '\' backslash-escaped.
std::string PgTextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

// --- Lexer and parser for the string form ----------------------------------

struct Token {
  enum class Type { kIdent, kEquals, kDoubleEquals, kNotEquals, kBang, kOpen, kClose, kComma, kEnd };
  Type type;
  std::string_view text;
  size_t pos;  // 0-based offset in the input
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsSpecial(char c) { return c == '!' || c == '=' || c == '(' || c == ')' || c == ','; }

std::vector<Token> Lex(std::string_view text) {
  using T = Token::Type;
  std::vector<Token> tokens;
  size_t i = 0;
  while (true) {
    while (i < text.size() && IsSpace(text[i])) ++i;
    if (i == text.size()) {
      tokens.push_back({T::kEnd, "", i});
      return tokens;
    }
    char c = text[i];
    char next = i + 1 < text.size() ? text[i + 1] : '\0';
    if (c == '!' && next == '=') {
      tokens.push_back({T::kNotEquals, text.substr(i, 2), i});
      i += 2;
    } else if (c == '=' && next == '=') {
      tokens.push_back({T::kDoubleEquals, text.substr(i, 2), i});
      i += 2;
    } else if (IsSpecial(c)) {
      T type = c == '!' ? T::kBang : c == '=' ? T::kEquals : c == '(' ? T::kOpen
               : c == ')' ? T::kClose : T::kComma;
      tokens.push_back({type, text.substr(i, 1), i});
      ++i;
    } else {
      size_t start = i;
      while (i < text.size() && !IsSpace(text[i]) && !IsSpecial(text[i])) ++i;
      tokens.push_back({T::kIdent, text.substr(start, i - start), start});
    }
  }
}

std::string Describe(const Token& t) {
  if (t.type == Token::Type::kEnd) return "end of input";
  return Quoted(t.text) + " at position " + std::to_string(t.pos + 1);
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text), tokens_(Lex(text)) {}

  Result<std::vector<Requirement>> Run() {
    std::vector<Requirement> requirements;
    if (Peek().type == Token::Type::kEnd) return requirements;  // empty selector
    while (true) {
      auto r = ParseRequirement();
      if (!r.ok()) return r.error();
      requirements.push_back(std::move(r.value()));
      const Token& t = Next();
      if (t.type == Token::Type::kEnd) return requirements;
      if (t.type != Token::Type::kComma) {
        return Fail("expected ',' or end of input, got " + Describe(t));
      }
      if (Peek().type == Token::Type::kEnd) return Fail("trailing ','");
    }
  }

 private:
  using T = Token::Type;

  const Token& Peek() const { return tokens_[next_]; }
  const Token& Next() {
    const Token& t = tokens_[next_];
    if (t.type != T::kEnd) ++next_;
    return t;
  }
  Error Fail(const std::string& why) const {
    return Error::InvalidArgument("invalid selector " + Quoted(text_) + ": " + why);
  }

  Result<std::string> Key() {
    const Token& t = Next();
    if (t.type != T::kIdent) {
      if (t.type == T::kComma) return Fail("empty requirement at position " + std::to_string(t.pos + 1));
      return Fail("expected a label key, got " + Describe(t));
    }
    if (auto s = ValidateLabelKey(t.text); !s.ok()) return Fail(s.error().message);
    return std::string(t.text);
  }

  Result<std::string> Value(const Token& t) {
    if (auto s = ValidateLabelValue(t.text); !s.ok()) return Fail(s.error().message);
    return std::string(t.text);
  }

  bool AtRequirementEnd() const { return Peek().type == T::kComma || Peek().type == T::kEnd; }

  Result<Requirement> ParseRequirement() {
    Requirement r;
    if (Peek().type == T::kBang) {
      Next();
      auto key = Key();
      if (!key.ok()) return key.error();
      if (!AtRequirementEnd()) return Fail("'!' takes only a key, got " + Describe(Peek()));
      r.key = std::move(*key);
      r.op = Requirement::Op::kNotExists;
      return r;
    }
    auto key = Key();
    if (!key.ok()) return key.error();
    r.key = std::move(*key);
    if (AtRequirementEnd()) {
      r.op = Requirement::Op::kExists;
      return r;
    }
    const Token& op = Next();
    switch (op.type) {
      case T::kEquals:
      case T::kDoubleEquals:
      case T::kNotEquals: {
        r.op = op.type == T::kNotEquals ? Requirement::Op::kNotEquals : Requirement::Op::kEquals;
        if (AtRequirementEnd()) {  // "k=" selects the empty value
          r.values.emplace_back();
          return r;
        }
        const Token& v = Next();
        if (v.type != T::kIdent) return Fail("expected a value after " + Quoted(op.text) + ", got " + Describe(v));
        auto value = Value(v);
        if (!value.ok()) return value.error();
        r.values.push_back(std::move(*value));
        return r;
      }
      case T::kIdent:
        if (op.text == "in" || op.text == "notin") {
          r.op = op.text == "in" ? Requirement::Op::kIn : Requirement::Op::kNotIn;
          auto values = ValueList(op.text);
          if (!values.ok()) return values.error();
          r.values = std::move(*values);
          return r;
        }
        break;
      default:
        break;
    }
    return Fail("expected '=', '==', '!=', 'in', 'notin', ',' or end of input after key " +
                Quoted(r.key) + ", got " + Describe(op));
  }

  Result<std::vector<std::string>> ValueList(std::string_view op) {
    const Token& open = Next();
    if (open.type != T::kOpen) {
      return Fail("expected '(' after '" + std::string(op) + "', got " + Describe(open));
    }
    if (Peek().type == T::kClose) return Fail("'" + std::string(op) + "' needs at least one value");
    std::vector<std::string> values;
    while (true) {
      const Token& v = Next();
      if (v.type == T::kEnd) return Fail("missing ')'");
      if (v.type != T::kIdent) return Fail("expected a value, got " + Describe(v));
      auto value = Value(v);
      if (!value.ok()) return value.error();
      values.push_back(std::move(*value));
      const Token& sep = Next();
      if (sep.type == T::kClose) break;
      if (sep.type == T::kEnd) return Fail("missing ')'");
      if (sep.type != T::kComma) return Fail("expected ',' or ')', got " + Describe(sep));
    }
    return values;
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  size_t next_ = 0;
};

void Canonicalize(std::vector<Requirement>* requirements) {
  for (Requirement& r : *requirements) {
    std::sort(r.values.begin(), r.values.end());
    r.values.erase(std::unique(r.values.begin(), r.values.end()), r.values.end());
  }
  auto less = [](const Requirement& a, const Requirement& b) {
    return std::tie(a.key, a.op, a.values) < std::tie(b.key, b.op, b.values);
  };
  std::sort(requirements->begin(), requirements->end(), less);
  requirements->erase(std::unique(requirements->begin(), requirements->end()), requirements->end());
}

std::string JoinValues(const std::vector<std::string>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += values[i];
  }
  return out;
}

}  // namespace

Status ValidateLabelKey(std::string_view key) {
  std::string_view name = key;
  std::string problem;
  size_t slash = key.find('/');
  if (slash != std::string_view::npos) {
    name = key.substr(slash + 1);
    if (name.find('/') != std::string_view::npos) {
      problem = "at most one '/' is allowed";
    } else {
      problem = PrefixProblem(key.substr(0, slash));
    }
  }
  if (problem.empty()) problem = NameProblem(name, /*allow_empty=*/false);
  if (problem.empty()) return OkStatus();
  return Error::InvalidArgument("invalid label key " + Quoted(key) + ": " + problem);
}

Status ValidateLabelValue(std::string_view value) {
  std::string problem = NameProblem(value, /*allow_empty=*/true);
  if (problem.empty()) return OkStatus();
  return Error::InvalidArgument("invalid label value " + Quoted(value) + ": " + problem);
}

Status ValidateLabels(const Labels& labels) {
  for (const auto& [key, value] : labels) {
    if (auto s = ValidateLabelKey(key); !s.ok()) return s;
    if (auto s = ValidateLabelValue(value); !s.ok()) {
      return Error::InvalidArgument(s.error().message + " (label " + Quoted(key) + ")");
    }
  }
  return OkStatus();
}

Result<Selector> Selector::Parse(std::string_view text) {
  auto requirements = Parser(text).Run();
  if (!requirements.ok()) return requirements.error();
  Selector selector;
  selector.requirements_ = std::move(*requirements);
  Canonicalize(&selector.requirements_);
  return selector;
}

Result<Selector> Selector::FromMap(const Labels& map) {
  Selector selector;
  for (const auto& [key, value] : map) {
    if (auto s = ValidateLabelKey(key); !s.ok()) {
      return Error::InvalidArgument("invalid selector: " + s.error().message);
    }
    if (auto s = ValidateLabelValue(value); !s.ok()) {
      return Error::InvalidArgument("invalid selector: " + s.error().message + " (key " +
                                    Quoted(key) + ")");
    }
    selector.requirements_.push_back({key, Requirement::Op::kEquals, {value}});
  }
  Canonicalize(&selector.requirements_);
  return selector;
}

bool Selector::Matches(const Labels& labels) const {
  for (const Requirement& r : requirements_) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    bool in_values =
        has && std::binary_search(r.values.begin(), r.values.end(), it->second);
    bool ok = false;
    switch (r.op) {
      case Requirement::Op::kEquals:
      case Requirement::Op::kIn: ok = in_values; break;
      case Requirement::Op::kNotEquals:
      case Requirement::Op::kNotIn: ok = !in_values; break;
      case Requirement::Op::kExists: ok = has; break;
      case Requirement::Op::kNotExists: ok = !has; break;
    }
    if (!ok) return false;
  }
  return true;
}

std::string Selector::ToString() const {
  std::string out;
  for (const Requirement& r : requirements_) {
    if (!out.empty()) out += ',';
    switch (r.op) {
      case Requirement::Op::kEquals: out += r.key + "=" + JoinValues(r.values); break;
      case Requirement::Op::kNotEquals: out += r.key + "!=" + JoinValues(r.values); break;
      case Requirement::Op::kIn: out += r.key + " in (" + JoinValues(r.values) + ")"; break;
      case Requirement::Op::kNotIn: out += r.key + " notin (" + JoinValues(r.values) + ")"; break;
      case Requirement::Op::kExists: out += r.key; break;
      case Requirement::Op::kNotExists: out += "!" + r.key; break;
    }
  }
  return out;
}

std::string Selector::ToSql(const std::string& column, int first,
                            std::vector<std::string>* params) const {
  if (requirements_.empty()) return "TRUE";
  int n = first;
  auto param = [&](std::string value) {
    params->push_back(std::move(value));
    return "$" + std::to_string(n++);
  };
  auto json_object = [](const std::string& key, const std::string& value) {
    std::string json = "{";
    AppendJsonString(key, &json);
    json += ':';
    AppendJsonString(value, &json);
    json += '}';
    return json;
  };
  std::vector<std::string> terms;
  for (const Requirement& r : requirements_) {
    const std::string single = r.values.empty() ? "" : r.values.front();
    switch (r.op) {
      case Requirement::Op::kEquals:
        terms.push_back(column + " @> " + param(json_object(r.key, single)) + "::jsonb");
        break;
      case Requirement::Op::kNotEquals:
        terms.push_back("NOT (" + column + " @> " + param(json_object(r.key, single)) + "::jsonb)");
        break;
      case Requirement::Op::kIn: {
        std::string k = param(r.key);
        terms.push_back("(" + column + " ->> " + k + ") = ANY(" + param(PgTextArray(r.values)) +
                        "::text[])");
        break;
      }
      case Requirement::Op::kNotIn: {
        std::string k = param(r.key);
        terms.push_back("NOT COALESCE((" + column + " ->> " + k + ") = ANY(" +
                        param(PgTextArray(r.values)) + "::text[]), false)");
        break;
      }
      case Requirement::Op::kExists:
        terms.push_back(column + " ? " + param(r.key));
        break;
      case Requirement::Op::kNotExists:
        terms.push_back("NOT (" + column + " ? " + param(r.key) + ")");
        break;
    }
  }
  if (terms.size() == 1) return terms.front();
  std::string out = "(";
  for (size_t i = 0; i < terms.size(); ++i) {
    if (i > 0) out += " AND ";
    out += terms[i];
  }
  out += ")";
  return out;
}

}  // namespace cairn
