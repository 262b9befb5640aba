// Record, Fields and a small JSON reader/writer: top-level members typed,
// nested objects and arrays kept as text. Strict: a record that is not one
// JSON object (with nothing but white space after it) is refused.
#include "cairn/edge/runtime/record.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "cairn/common/labels_sql.h"

namespace cairn::edge::runtime {
namespace {

constexpr int kMaxDepth = 64;

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : s_(text) {}

  Status ReadObject(Fields* out) {
    SkipSpace();
    if (!Eat('{')) return Fail("expected a JSON object");
    SkipSpace();
    if (!Eat('}')) {
      while (true) {
        SkipSpace();
        std::string key;
        if (auto st = ReadString(&key); !st.ok()) return st;
        SkipSpace();
        if (!Eat(':')) return Fail("expected ':'");
        SkipSpace();
        Value v;
        if (auto st = ReadValue(&v); !st.ok()) return st;
        out->Set(std::move(key), std::move(v));
        SkipSpace();
        if (Eat(',')) continue;
        if (Eat('}')) break;
        return Fail("expected ',' or '}'");
      }
    }
    SkipSpace();
    if (pos_ != s_.size()) return Fail("unexpected text after the object");
    return OkStatus();
  }

 private:
  Status Fail(const std::string& what) const {
    return Error::InvalidArgument("not JSON: " + what + " at byte " + std::to_string(pos_));
  }
  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool Eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool EatWord(std::string_view w) {
    if (s_.substr(pos_, w.size()) == w) {
      pos_ += w.size();
      return true;
    }
    return false;
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool ReadHex4(uint32_t* cp) {
    if (pos_ + 4 > s_.size()) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else return false;
    }
    *cp = v;
    return true;
  }

  Status ReadString(std::string* out) {
    if (!Eat('"')) return Fail("expected a string");
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return OkStatus();
      if (static_cast<unsigned char>(c) < 0x20) return Fail("control character in a string");
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) break;
      char e = s_[pos_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          if (!ReadHex4(&cp)) return Fail("bad \\u escape");
          if (cp >= 0xD800 && cp < 0xDC00) {
            uint32_t lo = 0;
            if (!EatWord("\\u") || !ReadHex4(&lo) || lo < 0xDC00 || lo > 0xDFFF) {
              return Fail("bad surrogate pair");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            return Fail("bad surrogate pair");
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return Fail("bad escape");
      }
    }
    return Fail("unterminated string");
  }

  // Skips a nested value (object/array) checking its syntax.
  Status SkipNested(int depth) {
    if (depth > kMaxDepth) return Fail("nested too deeply");
    const bool object = s_[pos_] == '{';
    const char close = object ? '}' : ']';
    ++pos_;
    SkipSpace();
    if (Eat(close)) return OkStatus();
    while (true) {
      SkipSpace();
      if (object) {
        std::string key;
        if (auto st = ReadString(&key); !st.ok()) return st;
        SkipSpace();
        if (!Eat(':')) return Fail("expected ':'");
        SkipSpace();
      }
      if (pos_ < s_.size() && (s_[pos_] == '{' || s_[pos_] == '[')) {
        if (auto st = SkipNested(depth + 1); !st.ok()) return st;
      } else {
        Value ignored;
        if (auto st = ReadScalar(&ignored); !st.ok()) return st;
      }
      SkipSpace();
      if (Eat(',')) continue;
      if (Eat(close)) return OkStatus();
      return Fail(object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }

  Status ReadScalar(Value* v) {
    if (pos_ >= s_.size()) return Fail("expected a value");
    const char c = s_[pos_];
    if (c == '"') {
      v->kind = Value::Kind::kString;
      return ReadString(&v->text);
    }
    if (EatWord("true")) { *v = Value::Bool(true); return OkStatus(); }
    if (EatWord("false")) { *v = Value::Bool(false); return OkStatus(); }
    if (EatWord("null")) { *v = Value::Null(); return OkStatus(); }
    const size_t start = pos_;
    while (pos_ < s_.size() && (std::string_view("+-0123456789.eE").find(s_[pos_]) !=
                                std::string_view::npos)) {
      ++pos_;
    }
    double d = 0;
    auto [end, ec] = std::from_chars(s_.data() + start, s_.data() + pos_, d);
    if (pos_ == start || ec != std::errc() || end != s_.data() + pos_ || s_[start] == '+') {
      pos_ = start;
      return Fail("expected a value");
    }
    *v = Value::Number(d);
    return OkStatus();
  }

  Status ReadValue(Value* v) {
    if (pos_ < s_.size() && (s_[pos_] == '{' || s_[pos_] == '[')) {
      const size_t start = pos_;
      if (auto st = SkipNested(1); !st.ok()) return st;
      *v = Value::RawJson(std::string(s_.substr(start, pos_ - start)));
      return OkStatus();
    }
    return ReadScalar(v);
  }

  std::string_view s_;
  size_t pos_ = 0;
};

std::string NumberText(double d) {
  if (!std::isfinite(d)) return "null";
  if (d == std::floor(d) && std::fabs(d) < 1e15) {
    return std::to_string(static_cast<long long>(d));
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, end);
}

void AppendJson(const Value& v, std::string* out) {
  switch (v.kind) {
    case Value::Kind::kNull: *out += "null"; break;
    case Value::Kind::kBool: *out += v.boolean ? "true" : "false"; break;
    case Value::Kind::kNumber: *out += NumberText(v.number); break;
    case Value::Kind::kString: *out += JsonQuote(v.text); break;
    case Value::Kind::kRawJson: *out += v.text; break;
  }
}

}  // namespace

std::string Value::AsText() const {
  if (kind == Kind::kString) return text;
  std::string out;
  AppendJson(*this, &out);
  return out;
}

const Value* Fields::Find(std::string_view name) const {
  for (const auto& [k, v] : items_) {
    if (k == name) return &v;
  }
  return nullptr;
}

void Fields::Set(std::string name, Value value) {
  for (auto& [k, v] : items_) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  items_.emplace_back(std::move(name), std::move(value));
}

bool Fields::Erase(std::string_view name) {
  for (auto it = items_.begin(); it != items_.end(); ++it) {
    if (it->first == name) {
      items_.erase(it);
      return true;
    }
  }
  return false;
}

std::string Record::Text() const {
  if (fields.empty()) return body;
  if (body.empty() || fields.Find("message") != nullptr) return ToJson(fields);
  Fields all = fields;
  all.Set("message", Value::String(body));
  return ToJson(all);
}

Status ParseJsonObject(std::string_view text, Fields* out) {
  Fields parsed;
  if (auto st = JsonReader(text).ReadObject(&parsed); !st.ok()) return st;
  *out = std::move(parsed);
  return OkStatus();
}

std::string ToJson(const Fields& fields) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : fields.items()) {
    if (!first) out += ',';
    first = false;
    out += JsonQuote(k);
    out += ':';
    AppendJson(v, &out);
  }
  out += '}';
  return out;
}

std::string JsonQuote(std::string_view s) { return "\"" + JsonEscape(std::string(s)) + "\""; }

}  // namespace cairn::edge::runtime
