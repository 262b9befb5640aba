// Small text helpers for error messages.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace cairn {

// `text` in double quotes, with '"' and '\' escaped and control bytes as \xNN,
// so that whatever a user or the network sent prints safely in a message.
std::string Quoted(std::string_view text);

}  // namespace cairn
