// Config loading shared by every binary: one struct Config per binary binds
// its fields to keys in a ConfigSchema, which then loads, in order (later
// wins): a YAML file (a flat map; unknown keys rejected), environment
// variables ({PREFIX}_{KEY}, key upper-cased, '-' -> '_'), and command-line
// flags (--key value or --key=value; repeatable for list/map keys).
// Thread-safety: not thread-safe; load at start-up.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/result.h"

namespace cairn {

// "250ms", "10s", "5m", "2h", "1d"; a bare number is seconds.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);
// "k=v" -> {k, v}; error if there is no '=' or the key is empty.
Result<std::pair<std::string, std::string>> ParseKeyValue(std::string_view text);

class ConfigSchema {
 public:
  void String(const std::string& key, std::string* target, const std::string& help);
  void Int(const std::string& key, int64_t* target, const std::string& help);
  void Bool(const std::string& key, bool* target, const std::string& help);
  void Duration(const std::string& key, std::chrono::milliseconds* target, const std::string& help);
  // Repeatable flag "--key k=v"; in YAML a map.
  void Map(const std::string& key, std::map<std::string, std::string>* target,
           const std::string& help);
  // Repeatable flag "--key v"; in YAML a list.
  void List(const std::string& key, std::vector<std::string>* target, const std::string& help);

  Status LoadFile(const std::string& path);
  Status LoadYaml(const std::string& yaml_text, const std::string& origin);
  // `environ`-style lookup, injectable for tests.
  Status LoadEnv(const std::string& prefix,
                 const std::function<const char*(const char*)>& getenv_fn);
  // Parses flags; returns the positional arguments in order. "--" ends flags.
  // A boolean flag may be given bare (--flag) or as --flag=true|false.
  Result<std::vector<std::string>> LoadFlags(const std::vector<std::string>& args);

  // "  --key VALUE   help" lines for --help.
  std::string Usage() const;
  bool Has(const std::string& key) const { return keys_.count(key) > 0; }

 private:
  enum class Kind { kString, kInt, kBool, kDuration, kMap, kList };
  struct Key {
    Kind kind;
    void* target;
    std::string help;
  };
  Status Set(const std::string& key, const std::string& value, const std::string& origin,
             bool append);
  std::map<std::string, Key> keys_;
  // Map/List keys already replaced by a higher-priority source.
  std::map<std::string, std::string> replaced_by_;
};

}  // namespace cairn
