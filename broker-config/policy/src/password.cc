#include "cairn/policy/password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <charconv>
#include <string>
#include <vector>

namespace cairn::policy {
namespace {

constexpr std::string_view kScheme = "pbkdf2-sha256";
constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kHashBytes = 32;
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string B64(const unsigned char* data, std::size_t n) {
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (n - i == 1) {
    uint32_t v = uint32_t{data[i]} << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (n - i == 2) {
    uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

int B64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

bool UnB64(std::string_view text, std::vector<unsigned char>* out) {
  if (text.size() % 4 == 1) return false;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = B64Value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<unsigned char>((acc >> bits) & 0xff));
    }
  }
  return true;
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
  if (!UnB64(parts[2], &p->salt) || p->salt.size() < 8 || p->salt.size() > 64) return false;
  if (!UnB64(parts[3], &p->hash) || p->hash.size() != kHashBytes) return false;
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
  return std::string(kScheme) + "$" + std::to_string(iterations) + "$" + B64(salt.data(), salt.size()) +
         "$" + B64(hash, kHashBytes);
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
  return B64(raw, sizeof raw);
}

}  // namespace cairn::policy
