// Small file helpers. WriteFileAtomic writes a temp file in the same
// directory, fsyncs and renames it over `path`, so readers never see a partial
// file (and a crash leaves the old one).
// Thread-safety: thread-safe (no shared state).
#pragma once

#include <string>
#include <sys/types.h>

#include "cairn/common/result.h"

namespace cairn {

Result<std::string> ReadFile(const std::string& path);
Status WriteFileAtomic(const std::string& path, const std::string& content, mode_t mode = 0644);
// mkdir -p with `mode` for created directories.
Status MakeDirs(const std::string& path, mode_t mode = 0755);
bool FileExists(const std::string& path);

}  // namespace cairn
