// Fuzz target: the broker policy's inputs. Usernames come from any MQTT
// client (CONNECT), the access snapshot from the registry's file, password
// hashes from that snapshot. Byte 0 selects:
//   0: ParsePrincipal / IsAcceptableUsername / ParseRole on the rest; a
//      parsed principal rebuilt from its parts gives the same username;
//   1: ParseAccess on the rest; an accepted snapshot serializes to a text that
//      parses to the same snapshot, and every hash in it is well formed;
//   2: the hash parser (IsWellFormedHash, VerifyPassword) on line 1 with the
//      password on line 2; a fresh HashPassword of that password verifies.
// VerifyPassword runs only for at most 4000 iterations (the parser allows
// 10 million, which a fuzzer would spend seconds on per input).
#include <charconv>
#include <cstdint>
#include <string>

#include "cairn/policy/access.h"
#include "cairn/policy/password.h"
#include "cairn/policy/principal.h"
#include "cairn/policy/role.h"
#include "fuzz_input.h"

namespace {

using namespace cairn::policy;

void Principals(const std::string& name) {
  (void)IsAcceptableUsername(name);
  (void)ParseRole(name);
  Principal p = ParsePrincipal(name);
  (void)KindName(p.kind);
  std::string rebuilt;
  switch (p.kind) {
    case PrincipalKind::kUser: rebuilt = UserPrincipal(p.name); break;
    case PrincipalKind::kIntegrator: rebuilt = CredentialPrincipal(p.ws, p.name); break;
    case PrincipalKind::kNode: rebuilt = NodePrincipal(p.ws, p.name); break;
    case PrincipalKind::kService: rebuilt = "svc:" + p.name; break;
    case PrincipalKind::kBootstrap: rebuilt = std::string(kBootstrapPrincipal); break;
    case PrincipalKind::kUnknown: return;
  }
  CAIRN_FUZZ_CHECK(rebuilt == name, "principal '" + name + "' rebuilds as '" + rebuilt + "'");
  CAIRN_FUZZ_CHECK(IsAcceptableUsername(name), "parsed principal is no acceptable username: " + name);
}

bool SameSnapshot(const AccessSnapshot& a, const AccessSnapshot& b) {
  if (a.generated_ms != b.generated_ms || a.users.size() != b.users.size() ||
      a.credentials.size() != b.credentials.size()) {
    return false;
  }
  for (const auto& [name, u] : a.users) {
    auto it = b.users.find(name);
    if (it == b.users.end() || it->second.password_hash != u.password_hash || it->second.roles != u.roles) return false;
  }
  for (const auto& [principal, c] : a.credentials) {
    auto it = b.credentials.find(principal);
    if (it == b.credentials.end() || it->second.ws != c.ws || it->second.name != c.name ||
        it->second.password_hash != c.password_hash || it->second.expires_ms != c.expires_ms) {
      return false;
    }
  }
  return true;
}

void Access(const std::string& text) {
  auto s = ParseAccess(text);
  if (!s.ok()) return;
  std::string out = SerializeAccess(*s);
  auto again = ParseAccess(out);
  CAIRN_FUZZ_CHECK(again.ok(), "serialized snapshot does not parse:\n" + out);
  CAIRN_FUZZ_CHECK(SameSnapshot(*s, *again), "snapshot changes in a round trip:\n" + out);
  for (const auto& [name, u] : s->users) {
    (void)RoleIn(u, "demo");
    (void)RoleIn(u, "*");
  }
}

int Iterations(const std::string& encoded) {
  auto d1 = encoded.find('$');
  if (d1 == std::string::npos) return 0;
  auto d2 = encoded.find('$', d1 + 1);
  if (d2 == std::string::npos) return 0;
  int n = 0;
  std::from_chars(encoded.data() + d1 + 1, encoded.data() + d2, n);
  return n;
}

void Hashes(cairn::fuzz::FuzzInput& in) {
  std::string encoded = in.Line();
  std::string password = in.Rest();
  bool ok = IsWellFormedHash(encoded);
  if (ok && Iterations(encoded) <= 4000) (void)VerifyPassword(encoded, password);
  if (!ok) CAIRN_FUZZ_CHECK(!VerifyPassword(encoded, password), "a malformed hash verified: " + encoded);
  auto fresh = HashPassword(password, kMinIterations);
  CAIRN_FUZZ_CHECK(fresh.ok() && IsWellFormedHash(*fresh), "HashPassword made a malformed hash");
  CAIRN_FUZZ_CHECK(VerifyPassword(*fresh, password), "a fresh hash does not verify its password");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::fuzz::FuzzInput in(data, size);
  switch (in.Byte() % 3) {
    case 0: Principals(in.Rest()); break;
    case 1: Access(in.Rest()); break;
    default: Hashes(in); break;
  }
  return 0;
}
