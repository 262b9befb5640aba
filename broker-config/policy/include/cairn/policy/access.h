// The access snapshot: users with their password hashes and role bindings,
// and integrator credentials. cairn-registry owns the data (PostgreSQL) and
// writes this snapshot to a file after every change and at start-up; the
// broker plugin re-reads the file when it changes. Format (text, one record
// per line, fields separated by one space; nothing may contain spaces):
//   cairn-access 1
//   generated_ms <ms>
//   user <name> <password hash>
//   role <user> <workspace or *> <viewer|operator|admin>
//   cred <ws> <name> <expires_ms, 0 = never> <password hash>
//   end
// A snapshot without the final "end" line, with an unknown record or a
// malformed field is rejected as a whole (the plugin then refuses user and
// integrator logins: fail closed).
// Thread-safety: pure functions; WriteAccessFile is safe to call from one
// writer at a time.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "cairn/common/result.h"
#include "cairn/policy/role.h"

namespace cairn::policy {

struct AccessUser {
  std::string password_hash;
  std::map<std::string, Role> roles;  // workspace (or "*") -> role
};

struct AccessCredential {
  std::string ws;
  std::string name;
  std::string password_hash;
  int64_t expires_ms = 0;  // 0 = never
};

struct AccessSnapshot {
  int64_t generated_ms = 0;
  std::map<std::string, AccessUser> users;              // by user name (not principal)
  std::map<std::string, AccessCredential> credentials;  // by principal "cred:{ws}:{name}"
};

std::string SerializeAccess(const AccessSnapshot& snapshot);
Result<AccessSnapshot> ParseAccess(std::string_view text);

// The role `user` holds in `ws`: the stronger of its binding on `ws` and its
// cluster-wide binding.
Role RoleIn(const AccessUser& user, std::string_view ws);

// Writes the snapshot to `path` atomically (temporary file, fsync, rename),
// mode 0640. When running as root it gives the file the owner and group of
// its directory, so a broker that dropped to its own user (mosquitto) can
// read it.
Status WriteAccessFile(const std::string& path, const AccessSnapshot& snapshot);

}  // namespace cairn::policy
