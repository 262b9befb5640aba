// Small text helpers for error messages.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace cairn {

// `text` in double quotes, with '"' and '\' escaped and control bytes as \xNN,
// so that whatever a user or the network sent prints safely in a message.
std::string Quoted(std::string_view text);

// The offset of the first byte of `text` that does not belong to a
// well-formed UTF-8 sequence (overlong forms, surrogates and code points
// above U+10FFFF count as malformed), or npos if all of it is UTF-8.
size_t FirstInvalidUtf8(std::string_view text);

}  // namespace cairn
