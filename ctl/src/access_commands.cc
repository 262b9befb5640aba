// cairnctl commands for access control: whoami, users, roles, integrator
// credentials and certificate revocation. What each may do is decided by
// the registry; its refusals (naming the role needed) are printed as sent.
#include <algorithm>
#include <iterator>

#include "cairn/common/clock.h"
#include "cairn/common/topics.h"
#include "cairn/ctl/command_line.h"
#include "cairn/ctl/format.h"
#include "cairn/policy/principal.h"
#include "cairn/policy/role.h"
#include "cairn/v1/rpc.pb.h"
#include "session.h"

namespace cairn::ctl {
namespace {

// "*=admin,demo=viewer" (cluster-wide first, then by workspace); "<none>".
std::string BindingString(const google::protobuf::RepeatedPtrField<v1::RoleBinding>& bindings) {
  std::vector<std::pair<std::string, std::string>> sorted;
  for (const auto& b : bindings) sorted.emplace_back(b.workspace(), b.role());
  std::sort(sorted.begin(), sorted.end());  // "*" sorts before letters and digits
  if (sorted.empty()) return "<none>";
  std::string out;
  for (const auto& [ws, role] : sorted) out += (out.empty() ? "" : ",") + ws + "=" + role;
  return out;
}

// A user name as given ("alice" or "user:alice"), checked locally so a typo
// fails before connecting.
Result<std::string> UserArg(const std::string& text) {
  std::string name = UserName(text);
  if (!topics::IsValidName(name)) {
    return Error::InvalidArgument(Printable(text) +
                                  " is not a user name (a DNS label: a-z, 0-9 and '-', e.g. alice)");
  }
  return name;
}

// The workspace of a role binding: -w exactly as given, never
// CAIRN_WORKSPACE, so a grant cannot land in a workspace the command line
// does not show.
Result<std::string> GrantWorkspace(const Args& a, const std::string& usage) {
  const std::string& ws = a.cl.workspace;
  if (ws.empty()) {
    return Error::InvalidArgument("usage: cairnctl " + usage +
                                  " (-w is required here: a workspace, or '*' for cluster-wide; "
                                  "CAIRN_WORKSPACE is not used)");
  }
  if (ws != policy::kAllWorkspaces) {
    if (auto st = topics::ValidateName("workspace", ws); !st.ok()) return st.error();
  }
  return ws;
}

std::string WhereText(const std::string& ws) {
  return ws == policy::kAllWorkspaces ? "cluster-wide (*)" : "in workspace " + ws;
}

// Reads one password from stdin (all of it, trailing newlines dropped).

}  // namespace

void Ctl::PrintSecret(const std::string& username, const std::string& password) {
  if (Json()) {
    out_ << SecretJson(username, password) << "\n";
  } else {
    out_ << Printable(password) << "\n";  // alone on stdout, like `token create`
  }
}

Status Ctl::WhoAmICmd(const Args& a) {
  CAIRN_TRY(NeedArgs(a, 0, "whoami"));
  auto r = Call<v1::WhoAmIResponse>("registry", "WhoAmI", v1::WhoAmIRequest());
  if (!r.ok()) return r.error();
  if (Json()) {
    PrintJson(*r);
    return OkStatus();
  }
  out_ << "principal:  " << Printable(r->principal()) << "\nkind:       " << Printable(r->kind())
       << "\nroles:      " << Printable(BindingString(r->bindings())) << "\nbroker:     " << Printable(conn_.broker_url)
       << "\n";
  return OkStatus();
}

Status Ctl::UserCmd(const std::string& verb, const Args& a) {
  int64_t now = SystemClock::Instance().NowMs();
  if (verb == "create") {
    CAIRN_TRY(NeedArgs(a, 1, "user create NAME"));
    auto name = UserArg(a.pos[0]);
    if (!name.ok()) return name.error();
    v1::CreateUserRequest req;
    req.set_name(*name);
    auto r = Call<v1::CreateUserResponse>("registry", "CreateUser", req);
    if (!r.ok()) return r.error();
    std::string username = r->username().empty() ? policy::UserPrincipal(*name) : r->username();
    PrintSecret(username, r->password());
    return OkStatus();
  }
  if (verb == "list") {
    CAIRN_TRY(NeedArgs(a, 0, "user list"));
    auto r = Call<v1::UserList>("registry", "ListUsers", v1::ListUsersRequest());
    if (!r.ok()) return r.error();
    if (Json()) {
      PrintJson(*r);
      return OkStatus();
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& u : r->users()) {
      rows.push_back({u.name(), policy::UserPrincipal(u.name()), BindingString(u.bindings()), Age(u.created_ms(), now)});
    }
    out_ << Table({"NAME", "USERNAME", "ROLES", "AGE"}, rows);
    return OkStatus();
  }
  if (verb == "delete") {
    CAIRN_TRY(NeedArgs(a, 1, "user delete NAME"));
    auto name = UserArg(a.pos[0]);
    if (!name.ok()) return name.error();
    v1::DeleteUserRequest req;
    req.set_name(*name);
    auto r = Call<v1::Empty>("registry", "DeleteUser", req);
    if (!r.ok()) return r.error();
    out_ << "user " << *name << " deleted\n";
    return OkStatus();
  }
  if (verb == "passwd") {
    if (a.pos.size() > 1) return Error::InvalidArgument("usage: cairnctl user passwd [NAME] [--password-stdin]");
    std::string name;
    if (!a.pos.empty()) {
      auto n = UserArg(a.pos[0]);
      if (!n.ok()) return n.error();
      name = *n;
    }
    const bool own = name.empty() || name == conn_.user;
    v1::SetPasswordRequest req;
    req.set_name(own ? "" : name);  // empty: the caller's own, which any user may change
    const bool chosen = a.Bool("password-stdin");
    if (chosen) {
      auto pw = PasswordFromText(std::string(std::istreambuf_iterator<char>(in_), {}), "--password-stdin");
      if (!pw.ok()) return pw.error();
      req.set_password(*pw);
    }
    auto r = Call<v1::SetPasswordResponse>("registry", "SetPassword", req);
    if (!r.ok()) return r.error();
    const std::string password = chosen ? req.password() : r->password();
    const std::string who = own ? conn_.user : name;
    // Keep a stored login working: it holds the old password otherwise.
    if (own && conn_.password_source == Source::kLoginConfig && login_.stored) {
      LoginConfig updated = *login_.stored;
      updated.password = password;
      if (auto st = SaveLoginConfig(login_.path, updated); !st.ok()) {
        err_ << "cairnctl: warning: password changed, but the login config was not updated (" << st.error().message
             << "): run `cairnctl login` again\n";
      } else {
        err_ << "updated the stored login in " << login_.path << "\n";
      }
    }
    if (Json()) {
      std::vector<std::pair<std::string, std::string>> fields = {{"username", policy::UserPrincipal(who)}};
      if (!chosen) fields.emplace_back("password", password);
      out_ << JsonObject(fields) << "\n";
    } else if (chosen) {
      out_ << "password of " << policy::UserPrincipal(who) << " changed\n";
    } else {
      out_ << Printable(password) << "\n";
    }
    return OkStatus();
  }
  return Error::InvalidArgument("unknown command: user " + verb + " (try: cairnctl user --help)");
}

Status Ctl::RoleCmd(const std::string& verb, const Args& a) {
  if (verb == "grant") {
    const std::string usage = "role grant USER ROLE -w WORKSPACE|'*'";
    CAIRN_TRY(NeedArgs(a, 2, usage));
    auto user = UserArg(a.pos[0]);
    if (!user.ok()) return user.error();
    if (!policy::ParseRole(a.pos[1])) {
      return Error::InvalidArgument("unknown role " + Printable(a.pos[1]) + ": expected viewer, operator or admin");
    }
    auto ws = GrantWorkspace(a, usage);
    if (!ws.ok()) return ws.error();
    v1::GrantRoleRequest req;
    req.set_user(*user);
    req.set_workspace(*ws);
    req.set_role(a.pos[1]);
    auto r = Call<v1::Empty>("registry", "GrantRole", req);
    if (!r.ok()) return r.error();
    out_ << policy::UserPrincipal(*user) << " is now " << a.pos[1] << " " << WhereText(*ws) << "\n";
    return OkStatus();
  }
  if (verb == "revoke") {
    const std::string usage = "role revoke USER -w WORKSPACE|'*'";
    CAIRN_TRY(NeedArgs(a, 1, usage));
    auto user = UserArg(a.pos[0]);
    if (!user.ok()) return user.error();
    auto ws = GrantWorkspace(a, usage);
    if (!ws.ok()) return ws.error();
    v1::RevokeRoleRequest req;
    req.set_user(*user);
    req.set_workspace(*ws);
    auto r = Call<v1::Empty>("registry", "RevokeRole", req);
    if (!r.ok()) return r.error();
    out_ << policy::UserPrincipal(*user) << " has no role " << WhereText(*ws) << " any more\n";
    return OkStatus();
  }
  return Error::InvalidArgument("unknown command: role " + verb + " (try: cairnctl role --help)");
}

Status Ctl::CredentialCmd(const std::string& verb, const Args& a) {
  auto ws = Workspace();
  if (!ws.ok()) return ws.error();
  int64_t now = SystemClock::Instance().NowMs();
  if (verb == "create") {
    CAIRN_TRY(NeedArgs(a, 1, "credential create NAME -w WORKSPACE [--ttl DURATION]"));
    CAIRN_TRY(topics::ValidateName("credential", a.pos[0]));
    v1::CreateCredentialRequest req;
    req.set_workspace(*ws);
    req.set_name(a.pos[0]);
    auto ttl = ParseTtlSeconds(a.Flag("ttl", "0"));
    if (!ttl.ok()) return ttl.error();
    req.set_ttl_seconds(*ttl);
    auto r = Call<v1::CreateCredentialResponse>("registry", "CreateCredential", req);
    if (!r.ok()) return r.error();
    std::string username = r->username().empty() ? policy::CredentialPrincipal(*ws, a.pos[0]) : r->username();
    PrintSecret(username, r->password());
    return OkStatus();
  }
  if (verb == "list") {
    CAIRN_TRY(NeedArgs(a, 0, "credential list -w WORKSPACE"));
    v1::ListCredentialsRequest req;
    req.set_workspace(*ws);
    auto r = Call<v1::CredentialList>("registry", "ListCredentials", req);
    if (!r.ok()) return r.error();
    if (Json()) {
      PrintJson(*r);
      return OkStatus();
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& c : r->credentials()) {
      std::string state = c.revoked() ? "revoked" : (c.expires_ms() && c.expires_ms() <= now) ? "expired" : "valid";
      std::string expires = c.expires_ms() ? (c.expires_ms() > now ? "in " + Age(now, c.expires_ms()) : "expired")
                                           : "never";
      std::string username = c.username().empty() ? policy::CredentialPrincipal(c.workspace(), c.name()) : c.username();
      rows.push_back({c.name(), username, state, expires, c.created_by(), Age(c.created_ms(), now)});
    }
    out_ << Table({"NAME", "USERNAME", "STATE", "EXPIRES", "CREATED BY", "AGE"}, rows);
    return OkStatus();
  }
  if (verb == "revoke") {
    CAIRN_TRY(NeedArgs(a, 1, "credential revoke NAME -w WORKSPACE"));
    v1::RevokeCredentialRequest req;
    req.set_workspace(*ws);
    req.set_name(a.pos[0]);
    auto r = Call<v1::Empty>("registry", "RevokeCredential", req);
    if (!r.ok()) return r.error();
    out_ << "credential " << Printable(policy::CredentialPrincipal(*ws, a.pos[0])) << " revoked\n";
    return OkStatus();
  }
  return Error::InvalidArgument("unknown command: credential " + verb + " (try: cairnctl credential --help)");
}

Status Ctl::CertCmd(const std::string& verb, const Args& a) {
  if (verb == "revoke") {
    CAIRN_TRY(NeedArgs(a, 1, "cert revoke SERIAL -w WORKSPACE"));
    auto ws = Workspace();
    if (!ws.ok()) return ws.error();
    auto serial = ParseCertificateSerial(a.pos[0]);
    if (!serial.ok()) return serial.error();
    v1::RevokeCertificateRequest req;
    req.set_workspace(*ws);
    req.set_serial(*serial);
    auto r = Call<v1::Empty>("registry", "RevokeCertificate", req);
    if (!r.ok()) return r.error();
    out_ << "certificate " << *serial << " revoked in workspace " << *ws << "\n";
    return OkStatus();
  }
  return Error::InvalidArgument("unknown command: cert " + verb + " (try: cairnctl cert --help)");
}

}  // namespace cairn::ctl
