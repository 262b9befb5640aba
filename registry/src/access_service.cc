// RegistryService: users, role bindings, WhoAmI, integrator credentials, the
// first admin and the broker's access snapshot. Passwords and hashes are
// never logged and never written to the audit log.
#include <spdlog/spdlog.h>

#include "cairn/common/files.h"
#include "cairn/common/topics.h"
#include "cairn/policy/password.h"
#include "cairn/policy/principal.h"
#include "cairn/registry/access.h"
#include "cairn/registry/registry_service.h"
#include "queries.h"

namespace cairn::registry {
namespace {

using policy::Role;
using sql::kInsertAudit;

constexpr char kFirstAdmin[] = "admin";

constexpr char kSelectUsers[] = "SELECT name, password_hash FROM users ORDER BY name";
constexpr char kSelectBindings[] =
    "SELECT user_name, workspace, role FROM role_bindings ORDER BY user_name, workspace";
constexpr char kSelectCredentials[] =
    "SELECT workspace, name, password_hash, expires_ms, revoked FROM integrator_credentials";
// Serialises first-admin creation between replicas starting together.
constexpr char kLockUsers[] = "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE";
constexpr char kCountUsers[] = "SELECT count(*) FROM users";
constexpr char kInsertUser[] =
    "INSERT INTO users (name, password_hash, created_ms) VALUES ($1, $2, $3)"
    " ON CONFLICT (name) DO NOTHING RETURNING created_ms";
constexpr char kUserExists[] = "SELECT 1 FROM users WHERE name = $1";
constexpr char kDeleteUser[] = "DELETE FROM users WHERE name = $1 RETURNING name";
constexpr char kSetPassword[] = "UPDATE users SET password_hash = $2 WHERE name = $1 RETURNING name";
constexpr char kListUsers[] = "SELECT name, created_ms FROM users ORDER BY name";
constexpr char kUpsertBinding[] =
    "INSERT INTO role_bindings (user_name, workspace, role, created_ms, created_by)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_name, workspace)"
    " DO UPDATE SET role = EXCLUDED.role, created_ms = EXCLUDED.created_ms, created_by = EXCLUDED.created_by";
constexpr char kDeleteBinding[] =
    "DELETE FROM role_bindings WHERE user_name = $1 AND workspace = $2 RETURNING role";
constexpr char kIsClusterAdmin[] =
    "SELECT 1 FROM role_bindings WHERE user_name = $1 AND workspace = '*' AND role = 'admin'";
constexpr char kOtherClusterAdmins[] =
    "SELECT count(*) FROM role_bindings WHERE workspace = '*' AND role = 'admin' AND user_name <> $1";
constexpr char kWorkspaceExists[] = "SELECT 1 FROM workspaces WHERE name = $1";
// A name is free again once its credential was revoked or expired.
constexpr char kInsertCredential[] =
    "INSERT INTO integrator_credentials AS c"
    " (workspace, name, password_hash, created_ms, expires_ms, created_by)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace, name) DO UPDATE SET"
    " password_hash = EXCLUDED.password_hash, created_ms = EXCLUDED.created_ms,"
    " expires_ms = EXCLUDED.expires_ms, created_by = EXCLUDED.created_by, revoked = false"
    " WHERE c.revoked OR (c.expires_ms <> 0 AND c.expires_ms <= EXCLUDED.created_ms)"
    " RETURNING name";
constexpr char kListCredentials[] =
    "SELECT workspace, name, created_ms, expires_ms, revoked, created_by"
    " FROM integrator_credentials WHERE workspace = $1 ORDER BY name";
constexpr char kRevokeCredential[] =
    "UPDATE integrator_credentials SET revoked = true WHERE workspace = $1 AND name = $2 RETURNING name";

Error NoSuchUser(const std::string& name) { return Error::NotFound("user \"" + name + "\" does not exist"); }

Error NoSuchWorkspace(const std::string& ws) {
  return Error::NotFound("workspace \"" + ws + "\" does not exist");
}

// Refuses a change that would leave the cluster without a cluster-wide
// admin (nobody could manage users or create workspaces any more).
Status KeepAClusterAdmin(pqxx::work& tx, const std::string& user) {
  if (tx.exec_params(kIsClusterAdmin, user).empty()) return OkStatus();
  if (tx.exec_params(kOtherClusterAdmins, user)[0][0].as<int64_t>() > 0) return OkStatus();
  return Error::FailedPrecondition("user \"" + user +
                                   "\" is the last cluster-wide admin; grant role admin on workspace * "
                                   "to another user first");
}

// A password the caller chose, or a generated one (returned to the caller).
Result<std::string> ChosenOrGenerated(const std::string& chosen, bool* generated) {
  *generated = chosen.empty();
  if (!chosen.empty()) {
    if (auto st = ValidatePassword(chosen); !st.ok()) return st.error();
    return chosen;
  }
  return policy::GeneratePassword();
}

v1::RoleBinding ToProto(const authz::Binding& b) {
  v1::RoleBinding out;
  out.set_workspace(b.workspace);
  out.set_role(policy::RoleName(b.role));
  return out;
}

}  // namespace

// ---- the access snapshot and the first admin

Status RegistryService::PrepareAccess() {
  if (!options_.admin_password_file.empty()) {
    auto password = policy::GeneratePassword();
    if (!password.ok()) return password.error();
    auto hash = policy::HashPassword(*password);
    if (!hash.ok()) return hash.error();
    bool created = false;
    int64_t now = clock_.NowMs();
    auto st = db_.Tx([&](pqxx::work& tx) -> Status {
      created = false;
      tx.exec(kLockUsers);
      if (tx.exec(kCountUsers)[0][0].as<int64_t>() > 0) return OkStatus();
      tx.exec_params(kInsertUser, kFirstAdmin, *hash, now);
      tx.exec_params(kUpsertBinding, kFirstAdmin, std::string(policy::kAllWorkspaces), "admin", now,
                     "cairn-registry");
      tx.exec_params(kInsertAudit, now, "svc:registry", "user.create", "", kFirstAdmin, "first admin");
      // Written before the commit: if this fails, no admin exists whose
      // password nobody knows, and the next start tries again.
      if (auto w = WriteFileAtomic(options_.admin_password_file, *password + "\n", 0600); !w.ok()) {
        return Error::FailedPrecondition("cannot write admin-password-file " + options_.admin_password_file +
                                         ": " + w.error().message);
      }
      created = true;
      return OkStatus();
    });
    if (!st.ok()) return st;
    if (created) {
      spdlog::info("created the first user \"{}\" (cluster-wide admin); its password is in {}", kFirstAdmin,
                   options_.admin_password_file);
    }
  } else {
    spdlog::info("admin-password-file is not set: no first admin is created when there is no user");
  }
  if (options_.access_file.empty()) {
    spdlog::warn("broker-access-file is not set: users and integrator credentials cannot log in to the broker");
    return OkStatus();
  }
  auto st = WriteAccessSnapshot();
  if (!st.ok()) return Error::FailedPrecondition("broker-access-file: " + st.error().message);
  spdlog::info("access snapshot written to {}", options_.access_file);
  return OkStatus();
}

Status RegistryService::WriteAccessSnapshot() {
  if (options_.access_file.empty()) return OkStatus();
  std::lock_guard lock(snapshot_mu_);
  AccessRows rows;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    rows = AccessRows{};
    for (const auto& r : tx.exec(kSelectUsers)) {
      rows.users.push_back({r[0].as<std::string>(), r[1].as<std::string>()});
    }
    for (const auto& r : tx.exec(kSelectBindings)) {
      rows.bindings.push_back({r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>()});
    }
    for (const auto& r : tx.exec(kSelectCredentials)) {
      rows.credentials.push_back({r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>(),
                                  r[3].as<int64_t>(), r[4].as<bool>()});
    }
    return OkStatus();
  });
  if (st.ok()) {
    int64_t now = clock_.NowMs();
    st = policy::WriteAccessFile(options_.access_file, BuildAccessSnapshot(rows, now));
    if (st.ok()) snapshot_next_expiry_ms_ = NextCredentialExpiry(rows, now);
  }
  snapshot_stale_ = !st.ok();
  if (!st.ok()) {
    auto n = metrics_.Add("access_snapshot_failed");
    spdlog::error("access snapshot {} not written: {} (failures so far: {}; retrying)", options_.access_file,
                  st.error().message, n);
  }
  return st;
}

void RegistryService::AccessChanged() { (void)WriteAccessSnapshot(); }

void RegistryService::RewriteSnapshotIfDue() {
  if (options_.access_file.empty()) return;
  bool due = false;
  {
    std::lock_guard lock(snapshot_mu_);
    due = snapshot_stale_ || (snapshot_next_expiry_ms_ != 0 && clock_.NowMs() >= snapshot_next_expiry_ms_);
  }
  if (due) (void)WriteAccessSnapshot();
}

// ---- users

Result<v1::CreateUserResponse> RegistryService::CreateUser(const v1::CreateUserRequest& req,
                                                           const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::ClusterRole(Role::kAdmin)); !c.ok()) return c.error();
  if (auto st = topics::ValidateName("user", req.name()); !st.ok()) return st.error();
  bool generated = false;
  auto password = ChosenOrGenerated(req.password(), &generated);
  if (!password.ok()) return password.error();
  auto hash = policy::HashPassword(*password);
  if (!hash.ok()) return hash.error();
  int64_t now = clock_.NowMs();
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    if (tx.exec_params(kInsertUser, req.name(), *hash, now).empty()) {
      return Error::AlreadyExists("user \"" + req.name() + "\" already exists");
    }
    tx.exec_params(kInsertAudit, now, ctx.principal, "user.create", "", req.name(), "");
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  AccessChanged();
  spdlog::info("user {} created by {}", req.name(), ctx.principal);
  v1::CreateUserResponse resp;
  resp.mutable_user()->set_name(req.name());
  resp.mutable_user()->set_created_ms(now);
  resp.set_username(policy::UserPrincipal(req.name()));
  if (generated) resp.set_password(*password);
  return resp;
}

Result<v1::UserList> RegistryService::ListUsers(const v1::ListUsersRequest&, const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::ClusterRole(Role::kViewer)); !c.ok()) return c.error();
  v1::UserList out;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    out.Clear();
    std::map<std::string, v1::User*> by_name;
    for (const auto& r : tx.exec(kListUsers)) {
      auto* u = out.add_users();
      u->set_name(r[0].as<std::string>());
      u->set_created_ms(r[1].as<int64_t>());
      by_name[u->name()] = u;
    }
    for (const auto& r : tx.exec(kSelectBindings)) {
      auto it = by_name.find(r[0].as<std::string>());
      if (it == by_name.end()) continue;
      auto* b = it->second->add_bindings();
      b->set_workspace(r[1].as<std::string>());
      b->set_role(r[2].as<std::string>());
    }
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  return out;
}

Result<v1::Empty> RegistryService::DeleteUser(const v1::DeleteUserRequest& req, const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::ClusterRole(Role::kAdmin)); !c.ok()) return c.error();
  if (auto st = topics::ValidateName("user", req.name()); !st.ok()) return st.error();
  int64_t now = clock_.NowMs();
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    if (tx.exec_params(kUserExists, req.name()).empty()) return NoSuchUser(req.name());
    if (auto s = KeepAClusterAdmin(tx, req.name()); !s.ok()) return s;
    tx.exec_params(kDeleteUser, req.name());  // its bindings go with it (ON DELETE CASCADE)
    tx.exec_params(kInsertAudit, now, ctx.principal, "user.delete", "", req.name(), "");
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  AccessChanged();
  spdlog::info("user {} deleted by {}", req.name(), ctx.principal);
  return v1::Empty();
}

Result<v1::SetPasswordResponse> RegistryService::SetPassword(const v1::SetPasswordRequest& req,
                                                             const CallContext& ctx) {
  policy::Principal who = policy::ParsePrincipal(ctx.principal);
  bool own = who.kind == policy::PrincipalKind::kUser && (req.name().empty() || req.name() == who.name);
  std::string target = own ? who.name : req.name();
  auto need = own ? authz::Need::AnyUser() : authz::Need::ClusterRole(Role::kAdmin);
  if (auto c = Authorize(ctx, need); !c.ok()) return c.error();
  if (target.empty()) return Error::InvalidArgument("name is required: " + ctx.principal + " is not a user");
  if (auto st = topics::ValidateName("user", target); !st.ok()) return st.error();
  bool generated = false;
  auto password = ChosenOrGenerated(req.password(), &generated);
  if (!password.ok()) return password.error();
  auto hash = policy::HashPassword(*password);
  if (!hash.ok()) return hash.error();
  int64_t now = clock_.NowMs();
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    if (tx.exec_params(kSetPassword, target, *hash).empty()) return NoSuchUser(target);
    tx.exec_params(kInsertAudit, now, ctx.principal, "user.password", "", target, "");
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  AccessChanged();
  spdlog::info("password of user {} changed by {}", target, ctx.principal);
  v1::SetPasswordResponse resp;
  if (generated) resp.set_password(*password);
  return resp;
}

// ---- role bindings

Result<v1::Empty> RegistryService::GrantRole(const v1::GrantRoleRequest& req, const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::RoleIn(Role::kAdmin, req.workspace())); !c.ok()) return c.error();
  auto role = policy::ParseRole(req.role());
  if (!role) return Error::InvalidArgument("role must be viewer, operator or admin (got \"" + req.role() + "\")");
  if (auto st = topics::ValidateName("user", req.user()); !st.ok()) return st.error();
  bool cluster = req.workspace() == policy::kAllWorkspaces;
  int64_t now = clock_.NowMs();
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    if (tx.exec_params(kUserExists, req.user()).empty()) return NoSuchUser(req.user());
    if (!cluster && tx.exec_params(kWorkspaceExists, req.workspace()).empty()) {
      return NoSuchWorkspace(req.workspace());
    }
    if (cluster && *role != Role::kAdmin) {
      if (auto s = KeepAClusterAdmin(tx, req.user()); !s.ok()) return s;
    }
    tx.exec_params(kUpsertBinding, req.user(), req.workspace(), req.role(), now, ctx.principal);
    tx.exec_params(kInsertAudit, now, ctx.principal, "role.grant", req.workspace(), req.user(), req.role());
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  AccessChanged();
  spdlog::info("user {} has role {} in workspace {} (granted by {})", req.user(), req.role(), req.workspace(),
               ctx.principal);
  return v1::Empty();
}

Result<v1::Empty> RegistryService::RevokeRole(const v1::RevokeRoleRequest& req, const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::RoleIn(Role::kAdmin, req.workspace())); !c.ok()) return c.error();
  if (auto st = topics::ValidateName("user", req.user()); !st.ok()) return st.error();
  int64_t now = clock_.NowMs();
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    if (tx.exec_params(kUserExists, req.user()).empty()) return NoSuchUser(req.user());
    if (req.workspace() == policy::kAllWorkspaces) {
      if (auto s = KeepAClusterAdmin(tx, req.user()); !s.ok()) return s;
    }
    auto r = tx.exec_params(kDeleteBinding, req.user(), req.workspace());
    if (r.empty()) {
      return Error::NotFound("user \"" + req.user() + "\" has no role in workspace \"" + req.workspace() + "\"");
    }
    tx.exec_params(kInsertAudit, now, ctx.principal, "role.revoke", req.workspace(), req.user(),
                   r[0][0].as<std::string>());
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  AccessChanged();
  spdlog::info("user {} lost its role in workspace {} (revoked by {})", req.user(), req.workspace(), ctx.principal);
  return v1::Empty();
}

Result<v1::WhoAmIResponse> RegistryService::WhoAmI(const v1::WhoAmIRequest&, const CallContext& ctx) {
  auto caller = Authorize(ctx, authz::Need::AnyUser());
  if (!caller.ok()) return caller.error();
  v1::WhoAmIResponse resp;
  resp.set_principal(ctx.principal);
  resp.set_kind(policy::KindName(caller->who.kind));
  for (const auto& b : caller->bindings) *resp.add_bindings() = ToProto(b);
  return resp;
}

// ---- integrator credentials

Result<v1::CreateCredentialResponse> RegistryService::CreateCredential(const v1::CreateCredentialRequest& req,
                                                                       const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::RoleIn(Role::kOperator, req.workspace())); !c.ok()) {
    return c.error();
  }
  if (auto st = topics::ValidateName("credential", req.name()); !st.ok()) return st.error();
  int64_t now = clock_.NowMs();
  auto expires = CredentialExpiry(now, req.ttl_seconds());
  if (!expires.ok()) return expires.error();
  auto password = policy::GeneratePassword();
  if (!password.ok()) return password.error();
  auto hash = policy::HashPassword(*password);
  if (!hash.ok()) return hash.error();
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    if (tx.exec_params(kWorkspaceExists, req.workspace()).empty()) return NoSuchWorkspace(req.workspace());
    if (tx.exec_params(kInsertCredential, req.workspace(), req.name(), *hash, now, *expires, ctx.principal)
            .empty()) {
      return Error::AlreadyExists("credential \"" + req.name() + "\" already exists in workspace \"" +
                                  req.workspace() + "\"; revoke it first or choose another name");
    }
    tx.exec_params(kInsertAudit, now, ctx.principal, "credential.create", req.workspace(), req.name(),
                   *expires ? "expires_ms " + std::to_string(*expires) : "never expires");
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  AccessChanged();
  spdlog::info("credential {} created in workspace {} by {}", req.name(), req.workspace(), ctx.principal);
  v1::CreateCredentialResponse resp;
  auto* c = resp.mutable_credential();
  c->set_workspace(req.workspace());
  c->set_name(req.name());
  c->set_created_ms(now);
  c->set_expires_ms(*expires);
  c->set_created_by(ctx.principal);
  c->set_username(policy::CredentialPrincipal(req.workspace(), req.name()));
  resp.set_username(c->username());
  resp.set_password(*password);
  return resp;
}

Result<v1::CredentialList> RegistryService::ListCredentials(const v1::ListCredentialsRequest& req,
                                                            const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::RoleIn(Role::kViewer, req.workspace())); !c.ok()) return c.error();
  v1::CredentialList out;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    out.Clear();
    if (tx.exec_params(kWorkspaceExists, req.workspace()).empty()) return NoSuchWorkspace(req.workspace());
    for (const auto& r : tx.exec_params(kListCredentials, req.workspace())) {
      auto* c = out.add_credentials();
      c->set_workspace(r[0].as<std::string>());
      c->set_name(r[1].as<std::string>());
      c->set_created_ms(r[2].as<int64_t>());
      c->set_expires_ms(r[3].as<int64_t>());
      c->set_revoked(r[4].as<bool>());
      c->set_created_by(r[5].as<std::string>());
      c->set_username(policy::CredentialPrincipal(c->workspace(), c->name()));
    }
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  return out;
}

Result<v1::Empty> RegistryService::RevokeCredential(const v1::RevokeCredentialRequest& req,
                                                    const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::RoleIn(Role::kOperator, req.workspace())); !c.ok()) {
    return c.error();
  }
  int64_t now = clock_.NowMs();
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    if (tx.exec_params(kRevokeCredential, req.workspace(), req.name()).empty()) {
      return Error::NotFound("credential \"" + req.name() + "\" does not exist in workspace \"" +
                             req.workspace() + "\"");
    }
    tx.exec_params(kInsertAudit, now, ctx.principal, "credential.revoke", req.workspace(), req.name(), "");
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  AccessChanged();
  spdlog::info("credential {} of workspace {} revoked by {}", req.name(), req.workspace(), ctx.principal);
  return v1::Empty();
}

}  // namespace cairn::registry
