// cairnctl's command line: global options (connection, workspace, output,
// timeout), command words and per-command flags, parsed without side
// effects; plus parsers for argument values that have a rule of their own.
// Flags may stand anywhere; "--flag value" and "--flag=value" both work;
// "--" ends the flags.
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/result.h"
#include "cairn/ctl/connection.h"

namespace cairn::ctl {

struct CommandLine {
  ConnectionSettings connection;  // --broker-url, --ca-file, --user, --password-file
  std::string workspace;          // -w/--workspace as given ("" = not given)
  std::string output = "table";   // -o table|json
  std::chrono::milliseconds timeout{10000};
  bool help = false;              // -h, --help or the word "help"
  std::vector<std::string> words;  // command words, then positional arguments
  std::multimap<std::string, std::string> flags;  // command flags with a value
  std::set<std::string> bools;                   // command flags without one

  std::string Flag(const std::string& k, const std::string& def = "") const {
    auto it = flags.find(k);
    return it == flags.end() ? def : it->second;
  }
  bool HasFlag(const std::string& k) const { return flags.count(k) > 0; }
  std::vector<std::string> All(const std::string& k) const {
    std::vector<std::string> out;
    auto [a, b] = flags.equal_range(k);
    for (auto it = a; it != b; ++it) out.push_back(it->second);
    return out;
  }
  bool Bool(const std::string& k) const { return bools.count(k) > 0; }
};

// Fails (InvalidArgument, message without "cairnctl: ") on an unknown flag, a
// flag without its value, or a bad -o / --timeout.
Result<CommandLine> ParseCommandLine(const std::vector<std::string>& argv);

// --uses: a whole number 0..1000000 (0 = unlimited).
Result<uint32_t> ParseUses(std::string_view text);
// --ttl: a duration ("24h", "90m", "3600"); "0" means never expires; else at
// least 1s. Returns whole seconds.
Result<uint64_t> ParseTtlSeconds(std::string_view text);
// A certificate serial as `openssl x509 -serial` ("serial=0A1B"), `openssl
// x509 -text` ("0a:1b") or plain hex prints it -> upper-case hex without
// leading zeros, as the revocation channel carries it ("A1B").
Result<std::string> ParseCertificateSerial(std::string_view text);

}  // namespace cairn::ctl
