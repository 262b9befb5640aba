#include "cairn/common/config.h"
#include "cairn/common/text.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace cairn {
namespace {

// Origins used to tell sources apart for Map/List replacement.
constexpr char kEnvOrigin[] = "environment";
constexpr char kFlagsOrigin[] = "command line";

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool ParseBool(std::string_view text, bool* out) {
  std::string v = Lower(text);
  if (v == "true" || v == "yes" || v == "on" || v == "1") {
    *out = true;
    return true;
  }
  if (v == "false" || v == "no" || v == "off" || v == "0") {
    *out = false;
    return true;
  }
  return false;
}

// PREFIX_KEY: key upper-cased, '-' and '.' become '_'.
std::string EnvName(const std::string& prefix, const std::string& key) {
  std::string name = prefix;
  if (!name.empty() && name.back() != '_') name += '_';
  for (char c : key) {
    if (c == '-' || c == '.') {
      name += '_';
    } else if (c >= 'a' && c <= 'z') {
      name += static_cast<char>(c - 'a' + 'A');
    } else {
      name += c;
    }
  }
  return name;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// " (did you mean "listen"?)" when a known key is close to `key`, else "".
template <typename Map>
std::string Suggestion(const std::string& key, const Map& keys, const std::string& dashes) {
  std::string best;
  size_t best_distance = 3;  // suggest only for up to two typos
  for (const auto& [candidate, unused] : keys) {
    size_t d = EditDistance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  if (best.empty()) return "";
  return " (did you mean " + (dashes.empty() ? Quoted(best) : dashes + best) + "?)";
}

std::string Where(const std::string& origin, const YAML::Node& node) {
  int line = node.Mark().line;
  return line >= 0 ? origin + ":" + std::to_string(line + 1) : origin;
}

}  // namespace

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  auto invalid = [&](const std::string& why) {
    return Error::InvalidArgument("invalid duration " + Quoted(text) + ": " + why);
  };
  const std::string kExpected =
      "expected a number with a unit ms, s, m, h or d (e.g. \"250ms\", \"10s\", \"5m\")";
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

  size_t i = 0;
  uint64_t whole = 0;
  size_t whole_digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++whole_digits) {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (whole > (kMax - digit) / 10) return invalid("too large");
    whole = whole * 10 + digit;
  }
  if (whole_digits == 0) return invalid(kExpected);
  uint64_t fraction = 0;
  uint64_t fraction_scale = 1;
  if (i < text.size() && text[i] == '.') {
    ++i;
    size_t start = i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      if (i - start >= 9) return invalid("too many decimal places");
      fraction = fraction * 10 + static_cast<uint64_t>(text[i] - '0');
      fraction_scale *= 10;
    }
    if (i == start) return invalid(kExpected);
  }
  std::string_view unit = text.substr(i);
  uint64_t unit_ms = 0;
  if (unit.empty() || unit == "s") {
    unit_ms = 1000;
  } else if (unit == "ms") {
    unit_ms = 1;
  } else if (unit == "m") {
    unit_ms = 60'000;
  } else if (unit == "h") {
    unit_ms = 3'600'000;
  } else if (unit == "d") {
    unit_ms = 86'400'000;
  } else {
    return invalid(kExpected);
  }
  if (whole > kMax / unit_ms) return invalid("too large");
  uint64_t total = whole * unit_ms;
  // fraction < 10^9 and unit_ms < 10^8: the product fits in 64 bits.
  uint64_t fraction_ms = fraction * unit_ms;
  if (fraction_ms % fraction_scale != 0) return invalid("finer than a millisecond");
  fraction_ms /= fraction_scale;
  if (total > kMax - fraction_ms) return invalid("too large");
  total += fraction_ms;
  return std::chrono::milliseconds(static_cast<int64_t>(total));
}

Result<std::pair<std::string, std::string>> ParseKeyValue(std::string_view text) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    return Error::InvalidArgument("expected key=value, got " + Quoted(text));
  }
  if (eq == 0) return Error::InvalidArgument("empty key in " + Quoted(text));
  return std::make_pair(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
}

void ConfigSchema::String(const std::string& key, std::string* target, const std::string& help) {
  keys_[key] = Key{Kind::kString, target, help};
}
void ConfigSchema::Int(const std::string& key, int64_t* target, const std::string& help) {
  keys_[key] = Key{Kind::kInt, target, help};
}
void ConfigSchema::Bool(const std::string& key, bool* target, const std::string& help) {
  keys_[key] = Key{Kind::kBool, target, help};
}
void ConfigSchema::Duration(const std::string& key, std::chrono::milliseconds* target,
                            const std::string& help) {
  keys_[key] = Key{Kind::kDuration, target, help};
}
void ConfigSchema::Map(const std::string& key, std::map<std::string, std::string>* target,
                       const std::string& help) {
  keys_[key] = Key{Kind::kMap, target, help};
}
void ConfigSchema::List(const std::string& key, std::vector<std::string>* target,
                        const std::string& help) {
  keys_[key] = Key{Kind::kList, target, help};
}

// Sets one value. For Map/List keys the value is one entry; it is appended
// when `append` is set and `origin` already replaced the key's value,
// otherwise it replaces what lower-priority sources (or defaults) put there.
// Errors name the value, not the key or origin: callers add where it came from.
Status ConfigSchema::Set(const std::string& key, const std::string& value,
                         const std::string& origin, bool append) {
  auto it = keys_.find(key);
  if (it == keys_.end()) return Error::InvalidArgument("unknown key " + Quoted(key));
  Key& k = it->second;
  auto start_collection = [&](auto* collection) {
    auto replaced = replaced_by_.find(key);
    if (!append || replaced == replaced_by_.end() || replaced->second != origin) {
      collection->clear();
      replaced_by_[key] = origin;
    }
  };
  switch (k.kind) {
    case Kind::kString:
      *static_cast<std::string*>(k.target) = value;
      return OkStatus();
    case Kind::kInt: {
      int64_t parsed = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
        return Error::InvalidArgument("invalid value " + Quoted(value) + ": expected an integer");
      }
      *static_cast<int64_t*>(k.target) = parsed;
      return OkStatus();
    }
    case Kind::kBool: {
      bool parsed = false;
      if (!ParseBool(value, &parsed)) {
        return Error::InvalidArgument("invalid value " + Quoted(value) +
                                      ": expected true or false");
      }
      *static_cast<bool*>(k.target) = parsed;
      return OkStatus();
    }
    case Kind::kDuration: {
      auto parsed = ParseDuration(value);
      if (!parsed.ok()) return parsed.error();
      *static_cast<std::chrono::milliseconds*>(k.target) = *parsed;
      return OkStatus();
    }
    case Kind::kMap: {
      auto kv = ParseKeyValue(value);
      if (!kv.ok()) return kv.error();
      auto* map = static_cast<std::map<std::string, std::string>*>(k.target);
      start_collection(map);
      (*map)[kv->first] = kv->second;
      return OkStatus();
    }
    case Kind::kList: {
      auto* list = static_cast<std::vector<std::string>*>(k.target);
      start_collection(list);
      list->push_back(value);
      return OkStatus();
    }
  }
  return Error::Internal("unhandled config key kind");
}

Status ConfigSchema::LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    return Error::NotFound("cannot read config file " + Quoted(path) + ": " + std::strerror(err));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error::Unavailable("cannot read config file " + Quoted(path));
  return LoadYaml(text.str(), path);
}

Status ConfigSchema::LoadYaml(const std::string& yaml_text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Error::InvalidArgument(origin + ":" + std::to_string(e.mark.line + 1) +
                                  ": invalid YAML: " + e.msg);
  }
  if (!root.IsDefined() || root.IsNull()) return OkStatus();  // an empty file sets nothing
  if (!root.IsMap()) {
    return Error::InvalidArgument(origin + ": expected a map of \"key: value\" at the top level");
  }

  std::set<std::string> seen;
  for (const auto& entry : root) {
    const YAML::Node& key_node = entry.first;
    const YAML::Node& value = entry.second;
    std::string where = Where(origin, key_node);
    if (!key_node.IsScalar()) return Error::InvalidArgument(where + ": keys must be plain strings");
    const std::string& key = key_node.Scalar();
    if (!seen.insert(key).second) {
      return Error::InvalidArgument(where + ": key " + Quoted(key) + " is given twice");
    }
    auto it = keys_.find(key);
    if (it == keys_.end()) {
      return Error::InvalidArgument(where + ": unknown key " + Quoted(key) +
                                    Suggestion(key, keys_, ""));
    }
    where += ": key " + Quoted(key);
    auto fail = [&](const Error& e) { return Error::InvalidArgument(where + ": " + e.message); };
    const Kind kind = it->second.kind;

    if (kind == Kind::kMap || kind == Kind::kList) {
      // The file replaces defaults (and anything set by a lower source).
      if (kind == Kind::kMap) {
        static_cast<std::map<std::string, std::string>*>(it->second.target)->clear();
      } else {
        static_cast<std::vector<std::string>*>(it->second.target)->clear();
      }
      replaced_by_[key] = origin;
      if (value.IsNull()) continue;
      if (kind == Kind::kMap) {
        if (!value.IsMap()) return Error::InvalidArgument(where + ": expected a map");
        for (const auto& item : value) {
          if (!item.first.IsScalar() || !(item.second.IsScalar() || item.second.IsNull())) {
            return Error::InvalidArgument(where + ": expected a map of plain strings");
          }
          const std::string& k = item.first.Scalar();
          if (k.empty() || k.find('=') != std::string::npos) {
            return Error::InvalidArgument(where + ": invalid map key " + Quoted(k));
          }
          std::string v = item.second.IsNull() ? "" : item.second.Scalar();
          if (auto s = Set(key, k + "=" + v, origin, true); !s.ok()) return fail(s.error());
        }
      } else {
        if (!value.IsSequence()) return Error::InvalidArgument(where + ": expected a list");
        for (const auto& item : value) {
          if (!item.IsScalar()) return Error::InvalidArgument(where + ": expected a list of strings");
          if (auto s = Set(key, item.Scalar(), origin, true); !s.ok()) return fail(s.error());
        }
      }
      continue;
    }
    const std::string& tag = value.Tag();
    if (!(tag.empty() || tag == "?" || tag == "!" || tag.rfind("tag:yaml.org,2002:", 0) == 0)) {
      return Error::InvalidArgument(where + ": unexpected YAML tag " + Quoted(tag) +
                                    " (a value starting with '!' must be quoted)");
    }
    if (value.IsNull()) return Error::InvalidArgument(where + ": has no value");
    if (!value.IsScalar()) return Error::InvalidArgument(where + ": expected a single value");
    if (auto s = Set(key, value.Scalar(), origin, false); !s.ok()) return fail(s.error());
  }
  return OkStatus();
}

Status ConfigSchema::LoadEnv(const std::string& prefix,
                             const std::function<const char*(const char*)>& getenv_fn) {
  for (auto& [key, k] : keys_) {
    const std::string name = EnvName(prefix, key);
    const char* raw = getenv_fn(name.c_str());
    if (raw == nullptr) continue;
    const std::string value = raw;
    auto fail = [&](const Error& e) {
      return Error::InvalidArgument("environment variable " + name + ": " + e.message);
    };
    if (k.kind != Kind::kMap && k.kind != Kind::kList) {
      if (auto s = Set(key, value, kEnvOrigin, false); !s.ok()) return fail(s.error());
      continue;
    }
    // Comma-separated entries; an empty variable means an empty map/list.
    if (k.kind == Kind::kMap) {
      static_cast<std::map<std::string, std::string>*>(k.target)->clear();
    } else {
      static_cast<std::vector<std::string>*>(k.target)->clear();
    }
    replaced_by_[key] = kEnvOrigin;
    std::string_view rest = value;
    while (true) {
      size_t comma = rest.find(',');
      std::string_view item = Trim(rest.substr(0, comma));
      if (!item.empty()) {
        if (auto s = Set(key, std::string(item), kEnvOrigin, true); !s.ok()) return fail(s.error());
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return OkStatus();
}

Result<std::vector<std::string>> ConfigSchema::LoadFlags(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  bool flags_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_ended) {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_ended = true;
      continue;
    }
    // "--name" or "-name"; "-" alone and "-5" are positional.
    bool is_flag = arg.size() >= 2 && arg[0] == '-' &&
                   (arg[1] == '-' || (arg[1] >= 'a' && arg[1] <= 'z') ||
                    (arg[1] >= 'A' && arg[1] <= 'Z'));
    if (!is_flag) {
      positional.push_back(arg);
      continue;
    }
    std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    size_t eq = body.find('=');
    std::string name = body.substr(0, eq);
    std::string flag = "--" + name;
    auto it = keys_.find(name);
    if (name.empty() || it == keys_.end()) {
      return Error::InvalidArgument("unknown flag " + Quoted(arg.substr(0, arg.find('='))) +
                                    Suggestion(name, keys_, "--"));
    }
    std::string value;
    if (eq != std::string::npos) {
      value = body.substr(eq + 1);
    } else if (it->second.kind == Kind::kBool) {
      value = "true";
    } else {
      if (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0) {
        return Error::InvalidArgument("flag " + flag + " needs a value");
      }
      value = args[++i];
    }
    if (auto s = Set(name, value, kFlagsOrigin, true); !s.ok()) {
      return Error::InvalidArgument("flag " + flag + ": " + s.error().message);
    }
  }
  return positional;
}

std::string ConfigSchema::Usage() const {
  std::vector<std::pair<std::string, std::string>> lines;
  size_t width = 0;
  for (const auto& [key, k] : keys_) {
    std::string left = "--" + key;
    std::string help = k.help;
    switch (k.kind) {
      case Kind::kString: left += " VALUE"; break;
      case Kind::kInt: left += " N"; break;
      case Kind::kBool: break;
      case Kind::kDuration: left += " DURATION"; break;
      case Kind::kMap:
        left += " KEY=VALUE";
        help += " (repeatable)";
        break;
      case Kind::kList:
        left += " VALUE";
        help += " (repeatable)";
        break;
    }
    width = std::max(width, left.size());
    lines.emplace_back(std::move(left), std::move(help));
  }
  std::string out;
  for (const auto& [left, help] : lines) {
    out += "  " + left + std::string(width - left.size() + 3, ' ') + help + "\n";
  }
  return out;
}

}  // namespace cairn
