// Named counters (e.g. malformed messages per topic kind). Services log a
// counter's new value when they bump it and can report all of them.
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace cairn {

class Metrics {
 public:
  // Adds `delta` to counter `name`; returns the new value.
  uint64_t Add(const std::string& name, uint64_t delta = 1);
  uint64_t Get(const std::string& name) const;
  std::map<std::string, uint64_t> Snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> counters_;
};

}  // namespace cairn
