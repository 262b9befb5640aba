// Small text helpers for error messages.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "cairn/common/result.h"

namespace cairn {

// `text` in double quotes, with '"' and '\' escaped and control bytes as \xNN,
// so that whatever a user or the network sent prints safely in a message.
std::string Quoted(std::string_view text);

// base64url (RFC 4648 section 5) without padding. Decoding is strict:
// URL-safe alphabet only, canonical (unused bits zero).
std::string Base64UrlEncode(std::string_view data);
Result<std::string> Base64UrlDecode(std::string_view text);

// The offset of the first byte of `text` that does not belong to a
// well-formed UTF-8 sequence (overlong forms, surrogates and code points
// above U+10FFFF count as malformed), or npos if all of it is UTF-8.
size_t FirstInvalidUtf8(std::string_view text);

}  // namespace cairn
