// Machine figures for NodeHealth: CPU use (from /proc/stat deltas between
// calls), memory (/proc/meminfo: total and total - available), disk
// (statvfs of the data dir). The proc root is injectable for tests.
// Thread-safety: not thread-safe; one owner calls Sample().
#pragma once

#include <cstdint>
#include <string>

#include "cairn/common/result.h"

namespace cairn::edge {

struct SystemSample {
  double cpu_percent = 0;  // 0..100 since the previous Sample() (0 on first)
  uint64_t memory_total_bytes = 0;
  uint64_t memory_used_bytes = 0;
  uint64_t disk_total_bytes = 0;
  uint64_t disk_used_bytes = 0;
};

class SystemStats {
 public:
  explicit SystemStats(std::string proc_root = "/proc") : proc_root_(std::move(proc_root)) {}
  Result<SystemSample> Sample(const std::string& disk_path);

 private:
  std::string proc_root_;
  uint64_t prev_total_ = 0;
  uint64_t prev_idle_ = 0;
};

}  // namespace cairn::edge
