// Where `cairn-edge bootstrap` and `cairn-edge run` take the bootstrap token
// from. A token on the command line is visible to every user of the machine
// (ps, /proc/PID/cmdline), so a file or the environment is preferred:
//   1. --bootstrap-token-file FILE (also CAIRN_EDGE_BOOTSTRAP_TOKEN_FILE or the
//      config file's bootstrap-token-file key)
//   2. the environment: CAIRN_EDGE_BOOTSTRAP_TOKEN (or CAIRN_EDGE_TOKEN)
//   3. the command line: --token / --bootstrap-token (works, with a warning)
//   4. the config file's token / bootstrap-token key
// Thread-safety: pure functions (ChooseBootstrapToken reads the token file).
#pragma once

#include <string>
#include <vector>

#include "cairn/common/result.h"

namespace cairn::edge {

struct TokenInputs {
  std::string file;    // path of a file holding the token
  std::string env;     // value of CAIRN_EDGE_BOOTSTRAP_TOKEN / CAIRN_EDGE_TOKEN
  std::string argv;    // value of --token / --bootstrap-token on the command line
  std::string config;  // the loaded token / bootstrap-token value (any origin)
};

struct ChosenToken {
  std::string token;   // empty: no token was given
  std::string source;  // e.g. "--bootstrap-token-file /run/secrets/t", "CAIRN_EDGE_BOOTSTRAP_TOKEN"
  std::vector<std::string> warnings;  // to log, one line each
};

// Picks the token by the order above. Fails when the file cannot be read or
// holds no token.
Result<ChosenToken> ChooseBootstrapToken(const TokenInputs& inputs);

// The value of the last --token / --bootstrap-token flag in `args` (as
// "--flag VALUE", "--flag=VALUE" or the single-dash forms), "" if none.
std::string TokenOnCommandLine(const std::vector<std::string>& args);

}  // namespace cairn::edge
