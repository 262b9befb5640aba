// `cairnctl login` and `cairnctl logout`: check a credential with the
// registry and store it in the login config, or remove it. Private to ctl/.
// Thread-safety: single-threaded use.
#pragma once

#include <istream>
#include <ostream>
#include <string>

#include "cairn/ctl/command_line.h"
#include "cairn/ctl/connection.h"
#include "session.h"

namespace cairn::ctl {

// Returns the exit code. `interactive`: stdin is a terminal, so a missing
// user or password may be asked for (the password without echo).
int Login(const CommandLine& cl, const ConnectionSettings& env, const LoginState& login, std::istream& in,
          bool interactive, std::ostream& out, std::ostream& err);
int Logout(const CommandLine& cl, const std::string& path, std::ostream& out, std::ostream& err);

}  // namespace cairn::ctl
