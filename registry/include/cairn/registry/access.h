// The registry's access rules that need no database: building the broker's
// access snapshot from the rows of users, role bindings and integrator
// credentials, when the snapshot must be rewritten because a credential
// expired, and the checks on passwords and credential lifetimes.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/result.h"
#include "cairn/policy/access.h"

namespace cairn::registry {

struct UserRow {
  std::string name;
  std::string password_hash;
};
struct BindingRow {
  std::string user;
  std::string workspace;  // or "*"
  std::string role;
};
struct CredentialRow {
  std::string workspace;
  std::string name;
  std::string password_hash;
  int64_t expires_ms = 0;  // 0 = never
  bool revoked = false;
};
struct AccessRows {
  std::vector<UserRow> users;
  std::vector<BindingRow> bindings;
  std::vector<CredentialRow> credentials;
};

// The snapshot the broker must see at `now_ms`: every user with its bindings,
// every credential that is neither revoked nor expired (expired: expires_ms
// != 0 and now_ms >= expires_ms). Rows with an unknown role or a binding of
// an unknown user are left out.
policy::AccessSnapshot BuildAccessSnapshot(const AccessRows& rows, int64_t now_ms);

// The earliest expiry after `now_ms` among the credentials the snapshot
// holds, or 0 if none expires: the time at which the snapshot must be
// written again to drop that credential.
int64_t NextCredentialExpiry(const AccessRows& rows, int64_t now_ms);

// A password a person or a caller chose: 8 to 1024 bytes, no control
// characters. (Generated passwords are 32 characters.)
Status ValidatePassword(std::string_view password);

// When a credential created at `now_ms` with `ttl_seconds` (0 = never)
// expires: 0 for never; InvalidArgument for more than 10 years.
Result<int64_t> CredentialExpiry(int64_t now_ms, uint64_t ttl_seconds);

}  // namespace cairn::registry
