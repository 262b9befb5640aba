// Broker principals: the MQTT username of every Cairn client, as the broker
// plugin authenticates it and stamps it on messages (cairn-principal).
//   svc:{name}          a service (registry, scheduler), password login
//   user:{name}         a person (cairnctl, console), password login, roles per workspace
//   cred:{ws}:{name}    an integrator credential, read-only, one workspace
//   bootstrap           a node that is bootstrapping (any password)
//   node:{ws}:{node}    a node, client certificate only (CN = principal)
// {name}, {ws} and {node} are DNS labels (cairn::topics::IsValidName), so a
// principal never holds '/', '+', '#' and can be one topic level.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace cairn::policy {

enum class PrincipalKind { kUnknown, kService, kUser, kIntegrator, kBootstrap, kNode };

struct Principal {
  PrincipalKind kind = PrincipalKind::kUnknown;
  std::string name;  // service, user or credential name; node name for kNode
  std::string ws;    // kIntegrator and kNode only
};

inline constexpr std::string_view kBootstrapPrincipal = "bootstrap";
inline constexpr std::string_view kRegistryPrincipal = "svc:registry";

// Parses `username`; kUnknown if it is none of the forms above.
Principal ParsePrincipal(std::string_view username);

// "user:{name}", "cred:{ws}:{name}", "node:{ws}:{node}".
std::string UserPrincipal(std::string_view name);
std::string CredentialPrincipal(std::string_view ws, std::string_view name);
std::string NodePrincipal(std::string_view ws, std::string_view node);

// "user", "service", "integrator", "bootstrap", "node" or "unknown".
const char* KindName(PrincipalKind kind);

// True if `name` may be logged and used as one topic level: 1-512 bytes, no
// '+', '#', '/', control characters or DEL.
bool IsAcceptableUsername(std::string_view name);

}  // namespace cairn::policy
