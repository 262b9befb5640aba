// Small helpers of the Cairn Mosquitto plugin that touch the outside world:
// files (stamps, reading, atomic writes) and the peer certificate of a
// client. No decisions here: those are in cairn_policy.
// Thread-safety: free functions; called from the broker's main thread.
#pragma once

#include <sys/stat.h>

#include <ctime>
#include <optional>
#include <string>

#include "cairn/policy/broker_policy.h"

struct mosquitto;

namespace cairn::plugin {

// What identifies one version of a file: changes when it is replaced or
// rewritten (mtime, size, inode).
struct FileStamp {
  bool exists = false;
  struct timespec mtime {};
  off_t size = 0;
  ino_t inode = 0;
  bool operator==(const FileStamp& o) const {
    return exists == o.exists && mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec &&
           size == o.size && inode == o.inode;
  }
};
FileStamp StampOf(const std::string& path);

// The whole file, or nullopt (errno set) if it cannot be read.
std::optional<std::string> ReadFile(const std::string& path);
// Writes `content` to `path` atomically (temporary file, fsync, rename).
bool WriteFileAtomically(const std::string& path, const std::string& content);

// The client's certificate (CN, serial), or nullopt if it presented none.
std::optional<policy::Certificate> CertificateOf(const struct mosquitto* client);

// Steady and wall clocks in milliseconds.
int64_t SteadyMs();
int64_t WallMs();

}  // namespace cairn::plugin
