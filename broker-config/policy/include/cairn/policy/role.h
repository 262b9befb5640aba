// Roles a user holds per workspace, weakest first. A binding on workspace
// "*" is cluster-wide: it applies to every workspace, and a cluster-wide
// admin may also create workspaces and users.
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string_view>

namespace cairn::policy {

enum class Role { kNone = 0, kViewer = 1, kOperator = 2, kAdmin = 3 };

inline constexpr std::string_view kAllWorkspaces = "*";

// "viewer" | "operator" | "admin" (and "none" for kNone).
const char* RoleName(Role role);
// Parses "viewer", "operator" or "admin"; nullopt otherwise.
std::optional<Role> ParseRole(std::string_view text);
// True if holding `have` grants what `need` requires.
inline bool Grants(Role have, Role need) { return static_cast<int>(have) >= static_cast<int>(need); }

}  // namespace cairn::policy
