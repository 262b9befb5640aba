// Password hashing for users and integrator credentials: PBKDF2-HMAC-SHA256
// (OpenSSL) with a random 16-byte salt, encoded as
//   pbkdf2-sha256$<iterations>$<salt, base64url>$<hash, base64url>
// The registry hashes; the broker plugin verifies. Plain SHA-256 is never
// used for people's passwords (service secrets are random 192-bit strings and
// keep their SHA-256 lines in the broker's credentials file).
// Thread-safety: pure functions (OpenSSL's RNG is thread-safe).
#pragma once

#include <string>
#include <string_view>

#include "cairn/common/result.h"

namespace cairn::policy {

// Cost of new hashes. About 30-60 ms of one core on the 2-core dev machine
// (see docs/security.md); the plugin caches successful checks.
inline constexpr int kDefaultIterations = 100000;
inline constexpr int kMinIterations = 1000;
inline constexpr int kMaxIterations = 10000000;

// Hashes `password` with a fresh salt.
Result<std::string> HashPassword(std::string_view password, int iterations = kDefaultIterations);
// True if `password` matches `encoded` (constant-time compare); false for a
// malformed `encoded`.
bool VerifyPassword(std::string_view encoded, std::string_view password);
// True if `encoded` is a well-formed hash string (iterations in range).
bool IsWellFormedHash(std::string_view encoded);
// A new random password: 24 random bytes, base64url (32 characters).
Result<std::string> GeneratePassword();

}  // namespace cairn::policy
