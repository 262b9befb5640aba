#include "cairn/policy/credentials.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cairn/policy/password.h"

namespace cairn::policy {
namespace {

std::string_view Trim(std::string_view s) {
  const char* ws = " \t\r\n";
  std::size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<Sha256Digest> ParseHex(std::string_view hex) {
  Sha256Digest out{};
  if (hex.size() != out.size() * 2) return std::nullopt;
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return out;
}

Sha256Digest Sha256(std::string_view data) {
  Sha256Digest out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1) out.fill(0);
  return out;
}

bool SameDigest(const Sha256Digest& a, const Sha256Digest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

ServiceCredentials ParseServiceCredentials(std::string_view text) {
  ServiceCredentials out;
  int lineno = 0;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++lineno;
    if (line.empty() || line.front() == '#') continue;
    std::size_t sep = line.find_first_of(" \t");
    std::string_view name = line.substr(0, sep);
    std::string_view rest = sep == std::string_view::npos ? "" : Trim(line.substr(sep));
    std::size_t end = rest.find_first_of(" \t");
    std::string_view hash = rest.substr(0, end);
    std::string_view tail = end == std::string_view::npos ? "" : Trim(rest.substr(end));
    std::optional<Sha256Digest> digest = ParseHex(hash);
    if (ParsePrincipal(name).kind != PrincipalKind::kService || !digest ||
        (!tail.empty() && tail.front() != '#')) {
      out.skipped.push_back(lineno);
      continue;
    }
    out.by_principal[std::string(name)] = *digest;
  }
  return out;
}

std::optional<std::string> CurrentHash(const AccessSnapshot* access, const Principal& p, int64_t wall_ms) {
  if (access == nullptr) return std::nullopt;
  if (p.kind == PrincipalKind::kUser) {
    auto it = access->users.find(p.name);
    if (it == access->users.end()) return std::nullopt;
    return it->second.password_hash;
  }
  if (p.kind == PrincipalKind::kIntegrator) {
    auto it = access->credentials.find(CredentialPrincipal(p.ws, p.name));
    if (it == access->credentials.end()) return std::nullopt;
    if (it->second.expires_ms != 0 && wall_ms >= it->second.expires_ms) return std::nullopt;
    return it->second.password_hash;
  }
  return std::nullopt;
}

PasswordChecker::PasswordChecker(const Limits& limits)
    : limits_(limits), checks_(limits.password_checks_per_second, limits.password_check_burst) {
  Result<std::string> pepper = GeneratePassword();
  pepper_ = pepper.ok() ? *pepper : std::string("cairn");
}

void PasswordChecker::SetAccess(std::shared_ptr<const AccessSnapshot> access) {
  access_ = std::move(access);
}

Sha256Digest PasswordChecker::Peppered(std::string_view hash, std::string_view password) const {
  std::string data = pepper_;
  data += '\0';
  data += hash;
  data += '\0';
  data += password;
  Sha256Digest d = Sha256(data);
  OPENSSL_cleanse(data.data(), data.size());
  return d;
}

LoginResult PasswordChecker::Check(const Principal& p, std::string_view username, std::string_view password,
                                   int64_t now_ms, int64_t wall_ms) {
  LoginResult result;
  if (p.kind == PrincipalKind::kService) {
    auto it = services_.by_principal.find(std::string(username));
    if (it == services_.by_principal.end()) {
      result.refusal = Refusal::kUnknownPrincipal;
    } else if (!SameDigest(Sha256(password), it->second)) {
      result.refusal = Refusal::kWrongPassword;
    }
    return result;
  }
  if (p.kind != PrincipalKind::kUser && p.kind != PrincipalKind::kIntegrator) {
    result.refusal = Refusal::kUnknownPrincipal;
    return result;
  }
  if (access_ == nullptr) {
    result.refusal = Refusal::kAccessUnavailable;
    return result;
  }
  std::optional<std::string> hash = CurrentHash(access_.get(), p, wall_ms);
  if (!hash) {
    bool expired = p.kind == PrincipalKind::kIntegrator &&
                   access_->credentials.count(CredentialPrincipal(p.ws, p.name)) != 0;
    result.refusal = expired ? Refusal::kCredentialExpired : Refusal::kUnknownPrincipal;
    return result;
  }
  std::string key(username);
  Sha256Digest digest = Peppered(*hash, password);
  auto known = remembered_.find(key);
  if (known != remembered_.end() && known->second.hash == *hash && now_ms < known->second.until_ms &&
      SameDigest(known->second.digest, digest)) {
    result.password_hash = *hash;
    return result;
  }
  auto [fail, inserted] =
      failures_.try_emplace(key, limits_.login_failures_per_second, limits_.login_failure_burst);
  if (!fail->second.Available(now_ms)) {
    result.refusal = Refusal::kLoginThrottled;
    return result;
  }
  if (!checks_.Take(now_ms)) {
    result.refusal = Refusal::kLoginBusy;
    return result;
  }
  ++slow_checks_;
  if (!VerifyPassword(*hash, password)) {
    fail->second.Take(now_ms);
    result.refusal = Refusal::kWrongPassword;
    return result;
  }
  remembered_[key] = Remembered{*hash, digest, now_ms + limits_.login_cache_seconds * 1000};
  result.password_hash = *hash;
  return result;
}

}  // namespace cairn::policy
