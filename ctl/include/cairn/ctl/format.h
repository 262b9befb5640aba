// Output formatting for cairnctl: aligned tables and relative ages.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cairn::ctl {

// Columns padded to the widest cell, two spaces apart, header first.
std::string Table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
// "5s", "3m", "2h", "4d"; "-" for 0 (never).
std::string Age(int64_t then_ms, int64_t now_ms);
// "k=v,k2=v2" (sorted by key); "<none>" when empty.
std::string LabelString(const std::map<std::string, std::string>& labels);
// "12.5MiB"
std::string Bytes(uint64_t n);

}  // namespace cairn::ctl
