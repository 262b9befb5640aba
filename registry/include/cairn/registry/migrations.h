// The numbered SQL migrations in registry/sql, embedded at build time.
#pragma once
#include <vector>
#include "cairn/common/db.h"
namespace cairn {
std::vector<Migration> SchemaMigrations();
}  // namespace cairn
