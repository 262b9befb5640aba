// Authorisation of RPCs: who may make which call, from the broker-stamped
// principal (cairn-principal) and the caller's role bindings.
//
// The decision is a pure function, Decide(), of the principal, what the call
// needs (Need) and the bindings; Authorizer adds what it cannot do purely:
// reading the bindings (AccessStore) and writing each refusal to the audit
// log. The rules (docs/security.md):
//   svc:*               every call
//   user:*              by role in the call's workspace: viewer (read),
//                       operator, admin; a binding on "*" is cluster-wide and
//                       counts in every workspace; cluster-wide calls
//                       (create workspace, users) need that binding
//   node:{ws}:{node}    only Need::Node() calls (RenewCertificate)
//   bootstrap           only Need::Bootstrap() calls (Bootstrap)
//   cred:{ws}:{name}    nothing (integrator credentials call no RPC)
// A refusal is PermissionDenied naming the role needed, e.g.
//   user:bob needs role operator in workspace demo (has viewer)
// Thread-safety: Decide and the helpers are pure; Authorizer is as
// thread-safe as its AccessStore (PgAccessStore: thread-safe, Db serialises).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/clock.h"
#include "cairn/common/db.h"
#include "cairn/common/metrics.h"
#include "cairn/common/result.h"
#include "cairn/policy/principal.h"
#include "cairn/policy/role.h"

namespace cairn::authz {

// A user's role in one workspace, or cluster-wide (workspace "*").
struct Binding {
  std::string workspace;
  policy::Role role = policy::Role::kNone;
  bool operator==(const Binding&) const = default;
};

// What a call needs of its caller.
struct Need {
  enum class Kind {
    kRole,       // a user with `role` in `workspace` ("*": a cluster-wide binding)
    kAnyUser,    // any user (WhoAmI, own password)
    kBootstrap,  // the bootstrap principal, a user or a service (the token authorises)
    kNode,       // a node principal (the handler checks which node)
  };
  Kind kind = Kind::kRole;
  policy::Role role = policy::Role::kAdmin;
  std::string workspace;

  static Need RoleIn(policy::Role role, std::string workspace) {
    return {Kind::kRole, role, std::move(workspace)};
  }
  static Need ClusterRole(policy::Role role) {
    return {Kind::kRole, role, std::string(policy::kAllWorkspaces)};
  }
  static Need AnyUser() { return {Kind::kAnyUser, policy::Role::kNone, ""}; }
  static Need Bootstrap() { return {Kind::kBootstrap, policy::Role::kNone, ""}; }
  static Need Node() { return {Kind::kNode, policy::Role::kNone, ""}; }
};

// The role `bindings` give in `workspace`: the stronger of the binding on
// `workspace` and the cluster-wide one. For workspace "*" only the
// cluster-wide binding counts.
policy::Role EffectiveRole(const std::vector<Binding>& bindings, std::string_view workspace);

// True if a caller with `bindings` may see workspace `ws` at all (viewer).
inline bool CanSee(const std::vector<Binding>& bindings, std::string_view ws) {
  return policy::Grants(EffectiveRole(bindings, ws), policy::Role::kViewer);
}

// Decides one call. `principal` is the stamped principal as text (for
// messages); `bindings` matter for users only. `call` names the call in
// messages ("registry.ListNodes"). OK or PermissionDenied.
Status Decide(std::string_view principal, const Need& need, const std::vector<Binding>& bindings,
              std::string_view call);

// Where bindings come from and refusals go.
class AccessStore {
 public:
  virtual ~AccessStore() = default;
  // The bindings of user `user` (the name, not "user:name"); empty when the
  // user has none or does not exist (deleted users lose their rights at once).
  virtual Result<std::vector<Binding>> BindingsOf(const std::string& user) = 0;
  // Appends a refused call to the audit log: actor, action, workspace, detail
  // ("denied: ...").
  virtual Status RecordDenied(int64_t at_ms, const std::string& actor, const std::string& action,
                              const std::string& workspace, const std::string& detail) = 0;
};

// Reads bindings through the read-only view `access_bindings` (created by the
// registry's migrations; the scheduler reads it, never the tables) and writes
// audit_log rows.
class PgAccessStore final : public AccessStore {
 public:
  explicit PgAccessStore(Db& db) : db_(db) {}
  Result<std::vector<Binding>> BindingsOf(const std::string& user) override;
  Status RecordDenied(int64_t at_ms, const std::string& actor, const std::string& action,
                      const std::string& workspace, const std::string& detail) override;

 private:
  Db& db_;
};

// The caller of an allowed call, with its bindings (users only; empty for
// services, which may do everything).
struct Caller {
  std::string principal;
  policy::Principal who;
  std::vector<Binding> bindings;

  bool IsService() const { return who.kind == policy::PrincipalKind::kService; }
  // True if this caller may see workspace `ws` (services: always).
  bool Sees(std::string_view ws) const { return IsService() || CanSee(bindings, ws); }
};

class Authorizer {
 public:
  // `service` names calls in messages and the audit log ("registry").
  Authorizer(AccessStore& store, Clock& clock, Metrics& metrics, std::string service)
      : store_(store), clock_(clock), metrics_(metrics), service_(std::move(service)) {}

  // Allows the call (returning the caller and its bindings) or refuses it
  // with PermissionDenied, audited as action "{service}.{method}" with detail
  // "denied: {message}" and counted (rpc_denied). A workspace name that is
  // not a DNS label is InvalidArgument; a store failure is Unavailable
  // (fail closed).
  Result<Caller> Require(const std::string& principal, const std::string& method, const Need& need);

 private:
  AccessStore& store_;
  Clock& clock_;
  Metrics& metrics_;
  std::string service_;
};

}  // namespace cairn::authz
