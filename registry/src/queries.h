// SQL statements that more than one file of the registry runs. Private to
// registry/src. Parameters are always bound ($n), never concatenated.
#pragma once

namespace cairn::registry::sql {

// $1 at_ms, $2 actor, $3 action, $4 workspace, $5 target, $6 detail
inline constexpr char kInsertAudit[] =
    "INSERT INTO audit_log (at_ms, actor, action, workspace, target, detail) VALUES ($1, $2, $3, $4, $5, $6)";

}  // namespace cairn::registry::sql
