#include "cairn/registry/access.h"

#include "cairn/policy/principal.h"

namespace cairn::registry {
namespace {

constexpr uint64_t kMaxTtlSeconds = 10ULL * 365 * 24 * 3600;

bool Expired(const CredentialRow& c, int64_t now_ms) { return c.expires_ms != 0 && now_ms >= c.expires_ms; }

}  // namespace

policy::AccessSnapshot BuildAccessSnapshot(const AccessRows& rows, int64_t now_ms) {
  policy::AccessSnapshot s;
  s.generated_ms = now_ms;
  for (const auto& u : rows.users) s.users[u.name].password_hash = u.password_hash;
  for (const auto& b : rows.bindings) {
    auto user = s.users.find(b.user);
    auto role = policy::ParseRole(b.role);
    if (user == s.users.end() || !role) continue;
    user->second.roles[b.workspace] = *role;
  }
  for (const auto& c : rows.credentials) {
    if (c.revoked || Expired(c, now_ms)) continue;
    s.credentials[policy::CredentialPrincipal(c.workspace, c.name)] =
        policy::AccessCredential{c.workspace, c.name, c.password_hash, c.expires_ms};
  }
  return s;
}

int64_t NextCredentialExpiry(const AccessRows& rows, int64_t now_ms) {
  int64_t next = 0;
  for (const auto& c : rows.credentials) {
    if (c.revoked || c.expires_ms == 0 || Expired(c, now_ms)) continue;
    if (next == 0 || c.expires_ms < next) next = c.expires_ms;
  }
  return next;
}

Status ValidatePassword(std::string_view password) {
  if (password.size() < 8) return Error::InvalidArgument("password must have at least 8 characters");
  if (password.size() > 1024) return Error::InvalidArgument("password longer than 1024 bytes");
  for (unsigned char c : password) {
    if (c < 0x20 || c == 0x7f) return Error::InvalidArgument("password must not contain control characters");
  }
  return OkStatus();
}

Result<int64_t> CredentialExpiry(int64_t now_ms, uint64_t ttl_seconds) {
  if (ttl_seconds == 0) return int64_t{0};
  if (ttl_seconds > kMaxTtlSeconds) return Error::InvalidArgument("ttl longer than 10 years");
  return now_ms + static_cast<int64_t>(ttl_seconds) * 1000;
}

}  // namespace cairn::registry
