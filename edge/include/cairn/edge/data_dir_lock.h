// One node per data dir: one process (DataDirLock) and one identity
// (IdentityRequestNotice).
//
// DataDirLock holds an exclusive flock(2) on DATA_DIR/lock for as long as it
// lives, and keeps the holder's pid in that file so that a second process is
// refused at once with a message naming the first. Semantics (flock, not
// POSIX record locks):
//   - the lock belongs to the open file description, so two DataDirLocks on
//     one dir conflict even inside one process (what the unit tests use);
//   - the kernel drops it when the holder exits, however it exits (kill -9
//     included): a stale lock file never blocks a restart;
//   - the descriptor is close-on-exec, so commands a pipeline starts do not
//     inherit it and cannot keep the dir locked after the node has died;
//   - the lock file stays behind on exit (removing it would race with a
//     process that is opening it); its content is only a hint for messages.
// Thread-safety: a DataDirLock is a move-only value; AcquireDataDirLock is
// thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "cairn/common/result.h"

namespace cairn::edge {

inline constexpr char kDataDirLockFile[] = "lock";

class DataDirLock {
 public:
  DataDirLock(DataDirLock&& other) noexcept;
  DataDirLock& operator=(DataDirLock&& other) noexcept;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;
  ~DataDirLock();  // releases the lock

  const std::string& path() const { return path_; }

 private:
  friend Result<DataDirLock> AcquireDataDirLock(const std::string& data_dir, int pid);
  DataDirLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_ = -1;
};

// Creates `data_dir` (0700) if missing, then locks DATA_DIR/lock without
// waiting and writes `pid` into it. Fails with FailedPrecondition when
// another holder has it: "data dir D is in use by another cairn-edge (pid N);
// ...". `pid` < 0 means this process.
Result<DataDirLock> AcquireDataDirLock(const std::string& data_dir, int pid = -1);

// What a run was asked to bootstrap as, beside an identity that already
// exists: the token (given or not), --name ("" = not given) and --label.
struct RequestedIdentity {
  bool token_given = false;
  std::string name;
  std::map<std::string, std::string> labels;
};

struct ExistingIdentity {
  std::string data_dir;
  std::string workspace;
  std::string node;
  std::map<std::string, std::string> labels;
};

struct IdentityNotice {
  bool warning = false;  // true: the request differs from the identity
  std::string message;
};

// What to tell the user when `run` finds an identity in the data dir and was
// also given a token, a name or labels (which only a bootstrap uses): a
// warning naming both identities when the name or a label asked for differs
// from the one the data dir holds, a note when they agree; nothing when
// nothing was asked. The existing identity is the one used either way.
// (A token does not name its workspace, so only name and labels compare.)
std::optional<IdentityNotice> IdentityRequestNotice(const ExistingIdentity& existing,
                                                    const RequestedIdentity& requested);

}  // namespace cairn::edge
