// Password logins: services ("svc:*") against the broker's static
// credentials file (SHA-256 of a random secret), users and integrator
// credentials against the access snapshot (PBKDF2, see password.h).
//
// A PBKDF2 check costs tens of milliseconds of the broker's only thread, so
// the checker (1) remembers successful checks (username + password hash +
// a peppered digest of the password) for Limits::login_cache_seconds, so
// reconnects are cheap; (2) after Limits::login_failure_burst wrong passwords
// for one username refuses further tries of it without a check, regaining
// one try per 1/login_failures_per_second seconds (a remembered correct
// password still works); (3) runs at most password_checks_per_second checks
// overall. A flood of wrong passwords therefore cannot stall the broker.
// Thread-safety: none; one caller at a time.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/result.h"
#include "cairn/policy/access.h"
#include "cairn/policy/limits.h"
#include "cairn/policy/principal.h"
#include "cairn/policy/refusals.h"

namespace cairn::policy {

using Sha256Digest = std::array<unsigned char, 32>;

// Parsed credentials file: "<principal> <sha256 hex>" lines ('#' comments,
// blank lines). Only service principals ("svc:{name}") are taken; other or
// malformed lines are skipped and listed in `skipped` (line numbers).
struct ServiceCredentials {
  std::map<std::string, Sha256Digest> by_principal;
  std::vector<int> skipped;
};
ServiceCredentials ParseServiceCredentials(std::string_view text);

struct LoginResult {
  Refusal refusal = Refusal::kNone;
  // For users and integrators: the password hash the login was checked
  // against (a session whose hash later changes or disappears is kicked).
  std::string password_hash;
};

class PasswordChecker {
 public:
  explicit PasswordChecker(const Limits& limits);

  void SetServices(ServiceCredentials services) { services_ = std::move(services); }
  // The current access snapshot; nullptr if it is missing or invalid (user
  // and integrator logins are then refused).
  void SetAccess(std::shared_ptr<const AccessSnapshot> access);
  const AccessSnapshot* access() const { return access_.get(); }

  // Checks `password` for `principal` (a service, user or integrator)
  // at steady time `now_ms` and wall time `wall_ms` (integrator expiry).
  LoginResult Check(const Principal& principal, std::string_view username, std::string_view password,
                    int64_t now_ms, int64_t wall_ms);

  // How many PBKDF2 checks ran (for tests).
  uint64_t slow_checks() const { return slow_checks_; }

 private:
  struct Remembered {
    std::string hash;
    Sha256Digest digest;
    int64_t until_ms;
  };
  Sha256Digest Peppered(std::string_view hash, std::string_view password) const;

  const Limits& limits_;
  ServiceCredentials services_;
  std::shared_ptr<const AccessSnapshot> access_;
  std::string pepper_;
  std::map<std::string, Remembered> remembered_;
  std::map<std::string, TokenBucket> failures_;
  TokenBucket checks_;
  uint64_t slow_checks_ = 0;
};

// The password hash a live session of `principal` must still match, or
// nullopt if the snapshot no longer lets it log in (removed, expired, no
// snapshot). Only for users and integrators.
std::optional<std::string> CurrentHash(const AccessSnapshot* access, const Principal& principal,
                                       int64_t wall_ms);

}  // namespace cairn::policy
