// cairnctl: the operator CLI. Talks to the registry and scheduler over MQTT v5
// RPC as a user principal.
// Thread-safety: single-threaded use.
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

namespace cairn::ctl {

// Runs one cairnctl command line (without argv[0]); returns the exit code.
// Results go to `out`, errors to `err`.
int Main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
// The same, reading --password-stdin from `in`; a password or user prompt
// happens only when `in` is std::cin and a terminal.
int Main(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace cairn::ctl
