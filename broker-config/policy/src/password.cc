#include "cairn/policy/password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <charconv>
#include <string>
#include <vector>

#include "cairn/common/text.h"

namespace cairn::policy {
namespace {

constexpr std::string_view kScheme = "pbkdf2-sha256";
constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kHashBytes = 32;

std::string_view AsText(const unsigned char* data, std::size_t n) {
  return {reinterpret_cast<const char*>(data), n};
}

struct Parsed {
  int iterations = 0;
  std::vector<unsigned char> salt;
  std::vector<unsigned char> hash;
};

bool Parse(std::string_view encoded, Parsed* p) {
  std::string_view parts[4];
  for (int i = 0; i < 3; ++i) {
    std::size_t d = encoded.find('$');
    if (d == std::string_view::npos) return false;
    parts[i] = encoded.substr(0, d);
    encoded.remove_prefix(d + 1);
  }
  parts[3] = encoded;
  if (parts[0] != kScheme) return false;
  auto [end, ec] = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), p->iterations);
  if (ec != std::errc() || end != parts[1].data() + parts[1].size()) return false;
  if (p->iterations < kMinIterations || p->iterations > kMaxIterations) return false;
  auto salt = Base64UrlDecode(parts[2]);
  auto hash = Base64UrlDecode(parts[3]);
  if (!salt.ok() || salt->size() < 8 || salt->size() > 64) return false;
  if (!hash.ok() || hash->size() != kHashBytes) return false;
  p->salt.assign(salt->begin(), salt->end());
  p->hash.assign(hash->begin(), hash->end());
  return true;
}

bool Derive(std::string_view password, const std::vector<unsigned char>& salt, int iterations,
            unsigned char* out) {
  return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(),
                           static_cast<int>(salt.size()), iterations, EVP_sha256(),
                           static_cast<int>(kHashBytes), out) == 1;
}

}  // namespace

Result<std::string> HashPassword(std::string_view password, int iterations) {
  if (iterations < kMinIterations || iterations > kMaxIterations) {
    return Error::InvalidArgument("PBKDF2 iterations out of range");
  }
  std::vector<unsigned char> salt(kSaltBytes);
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
    return Error::Internal("no randomness for a password salt");
  }
  unsigned char hash[kHashBytes];
  if (!Derive(password, salt, iterations, hash)) return Error::Internal("PBKDF2 failed");
  return std::string(kScheme) + "$" + std::to_string(iterations) + "$" + Base64UrlEncode(AsText(salt.data(), salt.size())) +
         "$" + Base64UrlEncode(AsText(hash, kHashBytes));
}

bool VerifyPassword(std::string_view encoded, std::string_view password) {
  Parsed p;
  if (!Parse(encoded, &p)) return false;
  unsigned char hash[kHashBytes];
  if (!Derive(password, p.salt, p.iterations, hash)) return false;
  return CRYPTO_memcmp(hash, p.hash.data(), kHashBytes) == 0;
}

bool IsWellFormedHash(std::string_view encoded) {
  Parsed p;
  return Parse(encoded, &p);
}

Result<std::string> GeneratePassword() {
  unsigned char raw[24];
  if (RAND_bytes(raw, sizeof raw) != 1) return Error::Internal("no randomness for a password");
  return Base64UrlEncode(AsText(raw, sizeof raw));
}

}  // namespace cairn::policy
