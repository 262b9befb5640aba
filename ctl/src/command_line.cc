#include "cairn/ctl/command_line.h"

#include "cairn/policy/revocations.h"

#include <cctype>

#include "cairn/common/config.h"
#include "cairn/common/text.h"

namespace cairn::ctl {
namespace {

const std::set<std::string>& BoolFlags() {
  static const std::set<std::string> k = {"force", "dry-run", "password-stdin", "follow"};
  return k;
}
const std::set<std::string>& CommandFlags() {
  static const std::set<std::string> k = {"l", "f", "label", "ttl", "uses", "description", "count"};
  return k;
}
const std::map<std::string, std::string>& ShortFlags() {
  static const std::map<std::string, std::string> k = {
      {"-w", "workspace"}, {"-o", "output"}, {"-l", "l"}, {"-f", "f"}};
  return k;
}

}  // namespace

Result<CommandLine> ParseCommandLine(const std::vector<std::string>& argv) {
  CommandLine c;
  bool flags_ended = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& w = argv[i];
    if (flags_ended) {
      c.words.push_back(w);
      continue;
    }
    if (w == "--") {
      flags_ended = true;
      continue;
    }
    if (w == "-h" || w == "--help" || (w == "help" && c.words.empty())) {
      c.help = true;
      continue;
    }
    // `node logs NAME -f`: -f follows (elsewhere -f FILE names a file).
    if (w == "-f" && c.words.size() >= 2 && (c.words[0] == "node" || c.words[0] == "nodes") && c.words[1] == "logs") {
      c.bools.insert("follow");
      continue;
    }
    std::string key, value;
    bool has_value = false;
    if (auto s = ShortFlags().find(w); s != ShortFlags().end()) {
      key = s->second;
    } else if (w.rfind("--", 0) == 0 && w.size() > 2) {
      key = w.substr(2);
      if (auto eq = key.find('='); eq != std::string::npos) {
        value = key.substr(eq + 1);
        key = key.substr(0, eq);
        has_value = true;
      }
    } else {
      c.words.push_back(w);
      continue;
    }
    if (BoolFlags().count(key)) {
      if (has_value) return Error::InvalidArgument("--" + key + " takes no value");
      c.bools.insert(key);
      continue;
    }
    const bool known = CommandFlags().count(key) || key == "workspace" || key == "output" ||
                       key == "broker-url" || key == "ca-file" || key == "user" || key == "password-file" ||
                       key == "timeout";
    if (!known) return Error::InvalidArgument("unknown flag " + Quoted(w.substr(0, w.find('='))));
    if (!has_value) {
      if (i + 1 >= argv.size()) return Error::InvalidArgument(w + " needs a value");
      value = argv[++i];
    }
    if (key == "workspace") c.workspace = value;
    else if (key == "output") c.output = value;
    else if (key == "broker-url") c.connection.broker_url = value;
    else if (key == "ca-file") c.connection.ca_file = value;
    else if (key == "user") c.connection.user = value;
    else if (key == "password-file") c.connection.password_file = value;
    else if (key == "timeout") {
      auto d = ParseDuration(value);
      if (!d.ok()) return Error::InvalidArgument("--timeout: " + d.error().message);
      if (d->count() <= 0) return Error::InvalidArgument("--timeout must be positive");
      c.timeout = *d;
    } else {
      c.flags.emplace(key, value);
    }
  }
  if (c.output != "table" && c.output != "json") return Error::InvalidArgument("-o takes table or json");
  return c;
}

Result<uint32_t> ParseUses(std::string_view text) {
  if (text.empty() || text.size() > 7) return Error::InvalidArgument("--uses takes a whole number (0 = unlimited)");
  uint32_t n = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') return Error::InvalidArgument("--uses takes a whole number (0 = unlimited)");
    n = n * 10 + static_cast<uint32_t>(ch - '0');
  }
  if (n > 1000000) return Error::InvalidArgument("--uses takes at most 1000000 (0 = unlimited)");
  return n;
}

Result<uint64_t> ParseTtlSeconds(std::string_view text) {
  auto d = ParseDuration(text);
  if (!d.ok()) return Error::InvalidArgument("--ttl: " + d.error().message);
  if (d->count() < 0) return Error::InvalidArgument("--ttl must not be negative");
  if (d->count() == 0) return uint64_t{0};
  if (d->count() < 1000) return Error::InvalidArgument("--ttl must be at least 1s (0 = never expires)");
  return static_cast<uint64_t>(d->count() / 1000);
}

Result<std::string> ParseCertificateSerial(std::string_view text) {
  auto hex = policy::NormaliseSerial(text);
  if (!hex) {
    return Error::InvalidArgument("certificate serial " + Quoted(text) +
                                  ": expected 1 to 40 hex digits, not zero, as `openssl x509 -noout -serial` prints them");
  }
  return *hex;
}

}  // namespace cairn::ctl
