#include "cairn/edge/system_stats.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>
#include <vector>

namespace cairn::edge {
namespace {

struct CpuTimes {
  uint64_t total = 0;
  uint64_t idle = 0;  // idle + iowait
};

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    const int err = errno;
    return Error::Unavailable("cannot read " + path + ": " +
                              (err ? std::strerror(err) : "open failed"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error::Unavailable("cannot read " + path);
  return text.str();
}

// The aggregate "cpu" line of /proc/stat: user nice system idle iowait irq
// softirq steal [guest guest_nice]. guest time is already part of user/nice,
// so only the first eight fields make up the total.
Result<CpuTimes> ParseProcStat(const std::string& text, const std::string& path) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string label;
    fields >> label;
    if (label != "cpu") continue;
    std::vector<uint64_t> values;
    uint64_t v = 0;
    while (values.size() < 8 && fields >> v) values.push_back(v);
    if (values.size() < 4) return Error::Internal(path + ": malformed \"cpu\" line");
    CpuTimes t;
    for (uint64_t x : values) t.total += x;
    t.idle = values[3] + (values.size() > 4 ? values[4] : 0);
    return t;
  }
  return Error::Internal(path + ": no \"cpu\" line");
}

struct MemInfo {
  uint64_t total_bytes = 0;
  uint64_t used_bytes = 0;
};

Result<MemInfo> ParseMeminfo(const std::string& text, const std::string& path) {
  std::istringstream lines(text);
  std::string line;
  bool have_total = false, have_available = false;
  uint64_t total_kb = 0, available_kb = 0, free_kb = 0, buffers_kb = 0, cached_kb = 0;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string key;
    uint64_t kb = 0;
    if (!(fields >> key >> kb)) continue;
    if (key == "MemTotal:") {
      total_kb = kb;
      have_total = true;
    } else if (key == "MemAvailable:") {
      available_kb = kb;
      have_available = true;
    } else if (key == "MemFree:") {
      free_kb = kb;
    } else if (key == "Buffers:") {
      buffers_kb = kb;
    } else if (key == "Cached:") {
      cached_kb = kb;
    }
  }
  if (!have_total) return Error::Internal(path + ": no MemTotal");
  // Kernels before 3.14 lack MemAvailable; free + buffers + cache is the
  // customary estimate there.
  if (!have_available) available_kb = free_kb + buffers_kb + cached_kb;
  if (available_kb > total_kb) available_kb = total_kb;
  return MemInfo{total_kb * 1024, (total_kb - available_kb) * 1024};
}

}  // namespace

Result<SystemSample> SystemStats::Sample(const std::string& disk_path) {
  const std::string stat_path = proc_root_ + "/stat";
  auto stat_text = ReadFile(stat_path);
  if (!stat_text.ok()) return stat_text.error();
  auto cpu = ParseProcStat(*stat_text, stat_path);
  if (!cpu.ok()) return cpu.error();

  const std::string meminfo_path = proc_root_ + "/meminfo";
  auto meminfo_text = ReadFile(meminfo_path);
  if (!meminfo_text.ok()) return meminfo_text.error();
  auto mem = ParseMeminfo(*meminfo_text, meminfo_path);
  if (!mem.ok()) return mem.error();

  struct statvfs fs {};
  if (::statvfs(disk_path.c_str(), &fs) != 0) {
    const int err = errno;
    return Error::Unavailable("cannot statvfs " + disk_path + ": " + std::strerror(err));
  }

  SystemSample s;
  // Counters only grow, except that iowait may step back a little; a delta
  // that makes no sense yields 0 rather than a wild figure.
  if (prev_total_ != 0 && cpu->total > prev_total_) {
    const double total = static_cast<double>(cpu->total - prev_total_);
    const double idle = cpu->idle > prev_idle_ ? static_cast<double>(cpu->idle - prev_idle_) : 0.0;
    s.cpu_percent = idle >= total ? 0.0 : 100.0 * (total - idle) / total;
  }
  prev_total_ = cpu->total;
  prev_idle_ = cpu->idle;

  s.memory_total_bytes = mem->total_bytes;
  s.memory_used_bytes = mem->used_bytes;
  const uint64_t frsize = fs.f_frsize;
  s.disk_total_bytes = static_cast<uint64_t>(fs.f_blocks) * frsize;
  s.disk_used_bytes =
      fs.f_bfree <= fs.f_blocks ? static_cast<uint64_t>(fs.f_blocks - fs.f_bfree) * frsize : 0;
  return s;
}

}  // namespace cairn::edge
