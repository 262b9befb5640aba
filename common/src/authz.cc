#include "cairn/common/authz.h"

#include <spdlog/spdlog.h>

#include "cairn/common/topics.h"

namespace cairn::authz {
namespace {

using policy::PrincipalKind;
using policy::Role;

// The registry's migrations create the view; both services read only it.
constexpr char kBindingsOfUser[] =
    "SELECT workspace, role FROM access_bindings WHERE user_name = $1 ORDER BY workspace";
constexpr char kInsertDenied[] =
    "INSERT INTO audit_log (at_ms, actor, action, workspace, detail)"
    " VALUES ($1, $2, $3, $4, $5)";

std::string Refused(std::string_view principal, std::string_view call, std::string_view why) {
  return std::string(principal) + " may not call " + std::string(call) + ": " + std::string(why);
}

}  // namespace

Role EffectiveRole(const std::vector<Binding>& bindings, std::string_view workspace) {
  Role best = Role::kNone;
  for (const auto& b : bindings) {
    if (b.workspace == policy::kAllWorkspaces || b.workspace == workspace) {
      if (static_cast<int>(b.role) > static_cast<int>(best)) best = b.role;
    }
  }
  return best;
}

Status Decide(std::string_view principal, const Need& need, const std::vector<Binding>& bindings,
              std::string_view call) {
  policy::Principal who = policy::ParsePrincipal(principal);
  switch (who.kind) {
    case PrincipalKind::kService:
      if (need.kind == Need::Kind::kNode) {
        return Error::PermissionDenied(Refused(principal, call, "only nodes may call it"));
      }
      return OkStatus();
    case PrincipalKind::kNode:
      if (need.kind == Need::Kind::kNode) return OkStatus();
      return Error::PermissionDenied(
          Refused(principal, call, "nodes may call only registry.RenewCertificate"));
    case PrincipalKind::kBootstrap:
      if (need.kind == Need::Kind::kBootstrap) return OkStatus();
      return Error::PermissionDenied(Refused(principal, call, "bootstrap may call only registry.Bootstrap"));
    case PrincipalKind::kIntegrator:
      return Error::PermissionDenied(
          Refused(principal, call, "integrator credentials are read-only and call no RPC"));
    case PrincipalKind::kUnknown:
      return Error::PermissionDenied(Refused(principal.empty() ? "(no principal)" : principal, call,
                                             "unknown principal"));
    case PrincipalKind::kUser:
      break;
  }
  switch (need.kind) {
    case Need::Kind::kAnyUser:
    case Need::Kind::kBootstrap:
      return OkStatus();
    case Need::Kind::kNode:
      return Error::PermissionDenied(Refused(principal, call, "only nodes may call it"));
    case Need::Kind::kRole:
      break;
  }
  Role has = EffectiveRole(bindings, need.workspace);
  if (policy::Grants(has, need.role)) return OkStatus();
  std::string where = need.workspace == policy::kAllWorkspaces
                          ? std::string("cluster-wide (workspace *)")
                          : "in workspace " + need.workspace;
  return Error::PermissionDenied(std::string(principal) + " needs role " + policy::RoleName(need.role) +
                                 " " + where + " (has " + policy::RoleName(has) + ")");
}

Result<std::vector<Binding>> PgAccessStore::BindingsOf(const std::string& user) {
  std::vector<Binding> out;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    out.clear();
    for (const auto& r : tx.exec_params(kBindingsOfUser, user)) {
      auto role = policy::ParseRole(r[1].as<std::string>());
      if (!role) continue;  // the table's CHECK makes this unreachable
      out.push_back({r[0].as<std::string>(), *role});
    }
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  return out;
}

Status PgAccessStore::RecordDenied(int64_t at_ms, const std::string& actor, const std::string& action,
                                   const std::string& workspace, const std::string& detail) {
  return db_.Tx([&](pqxx::work& tx) -> Status {
    tx.exec_params(kInsertDenied, at_ms, actor, action, workspace, detail);
    return OkStatus();
  });
}

Result<Caller> Authorizer::Require(const std::string& principal, const std::string& method,
                                   const Need& need) {
  std::string call = service_ + "." + method;
  if (need.kind == Need::Kind::kRole && need.workspace != policy::kAllWorkspaces) {
    if (auto st = topics::ValidateName("workspace", need.workspace); !st.ok()) return st.error();
  }
  Caller caller;
  caller.principal = principal;
  caller.who = policy::ParsePrincipal(principal);
  if (caller.who.kind == policy::PrincipalKind::kUser) {
    auto bindings = store_.BindingsOf(caller.who.name);
    if (!bindings.ok()) {
      spdlog::error("cannot read the role bindings of {}: {}", principal, bindings.error().message);
      return Error::Unavailable("cannot check permissions right now; try again");
    }
    caller.bindings = std::move(*bindings);
  }
  auto decision = Decide(principal, need, caller.bindings, call);
  if (decision.ok()) return caller;
  auto n = metrics_.Add("rpc_denied");
  spdlog::warn("refused {}: {} (refused calls so far: {})", call, decision.error().message, n);
  std::string ws = need.kind == Need::Kind::kRole ? need.workspace : "";
  if (auto st = store_.RecordDenied(clock_.NowMs(), principal, call, ws, "denied: " + decision.error().message); !st.ok()) {
    spdlog::error("refused call of {} not written to the audit log: {}", principal, st.error().message);
  }
  return decision.error();
}

}  // namespace cairn::authz
