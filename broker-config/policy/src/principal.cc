#include "cairn/policy/principal.h"

#include "cairn/common/topics.h"

namespace cairn::policy {
namespace {

constexpr std::size_t kMaxUsernameLength = 512;

// Splits "a:b" into two DNS labels; false if it is not exactly that.
bool SplitPair(std::string_view rest, std::string* a, std::string* b) {
  std::size_t colon = rest.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view first = rest.substr(0, colon);
  std::string_view second = rest.substr(colon + 1);
  if (!topics::IsValidName(first) || !topics::IsValidName(second)) return false;
  *a = std::string(first);
  *b = std::string(second);
  return true;
}

}  // namespace

bool IsAcceptableUsername(std::string_view name) {
  if (name.empty() || name.size() > kMaxUsernameLength) return false;
  for (unsigned char c : name) {
    if (c == '+' || c == '#' || c == '/' || c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

Principal ParsePrincipal(std::string_view username) {
  Principal p;
  if (!IsAcceptableUsername(username)) return p;
  if (username == kBootstrapPrincipal) {
    p.kind = PrincipalKind::kBootstrap;
  } else if (username.starts_with("svc:")) {
    std::string_view name = username.substr(4);
    if (!topics::IsValidName(name)) return p;
    p.kind = PrincipalKind::kService;
    p.name = std::string(name);
  } else if (username.starts_with("user:")) {
    std::string_view name = username.substr(5);
    if (!topics::IsValidName(name)) return p;
    p.kind = PrincipalKind::kUser;
    p.name = std::string(name);
  } else if (username.starts_with("cred:")) {
    if (!SplitPair(username.substr(5), &p.ws, &p.name)) return Principal{};
    p.kind = PrincipalKind::kIntegrator;
  } else if (username.starts_with("node:")) {
    if (!SplitPair(username.substr(5), &p.ws, &p.name)) return Principal{};
    p.kind = PrincipalKind::kNode;
  }
  return p;
}

std::string UserPrincipal(std::string_view name) { return "user:" + std::string(name); }

std::string CredentialPrincipal(std::string_view ws, std::string_view name) {
  return "cred:" + std::string(ws) + ":" + std::string(name);
}

std::string NodePrincipal(std::string_view ws, std::string_view node) {
  return topics::NodePrincipal(ws, node);
}

const char* KindName(PrincipalKind kind) {
  switch (kind) {
    case PrincipalKind::kService: return "service";
    case PrincipalKind::kUser: return "user";
    case PrincipalKind::kIntegrator: return "integrator";
    case PrincipalKind::kBootstrap: return "bootstrap";
    case PrincipalKind::kNode: return "node";
    case PrincipalKind::kUnknown: break;
  }
  return "unknown";
}

}  // namespace cairn::policy
