// Logging setup (spdlog). Every binary calls InitLogging once in main.
// Secrets (token secrets, passwords, private keys) are never passed to a
// logger; RedactToken() shortens a token to something safe to print.
#pragma once

#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "cairn/common/result.h"

namespace cairn {

// level: trace|debug|info|warn|error. Logs to stderr, or to `file` if set.
Status InitLogging(const std::string& component, const std::string& level,
                   const std::string& file = "");

// "cairn1.abc…(redacted)": at most the first 10 characters (at most half of
// a short token) — enough to tell tokens apart in a log.
std::string RedactToken(std::string_view token);

}  // namespace cairn
