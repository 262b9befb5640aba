#include "cairn/edge/data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "cairn/common/files.h"
#include "cairn/common/text.h"

namespace cairn::edge {
namespace {

// The pid recorded in the lock file, as text ("" when unreadable or empty:
// the holder may not have written it yet).
std::string RecordedPid(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return "";
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char c : s) {
    if (c < '0' || c > '9') return "";
  }
  return s;
}

std::string LabelList(const std::map<std::string, std::string>& labels) {
  std::string s;
  for (const auto& [k, v] : labels) s += (s.empty() ? "" : ",") + k + "=" + v;
  return s.empty() ? "<none>" : s;
}

}  // namespace

DataDirLock::DataDirLock(DataDirLock&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

DataDirLock& DataDirLock::operator=(DataDirLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

Result<DataDirLock> AcquireDataDirLock(const std::string& data_dir, int pid) {
  if (auto st = MakeDirs(data_dir, 0700); !st.ok()) return st.error();
  std::string path = data_dir + "/" + kDataDirLockFile;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return Error::FailedPrecondition("cannot open the data dir lock " + path + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder = RecordedPid(fd);
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Error::FailedPrecondition(
          "data dir " + data_dir + " is in use by another cairn-edge (" +
          (holder.empty() ? std::string("pid unknown") : "pid " + holder) +
          "); one data dir serves one node process: stop that one, or give this one its own --data-dir");
    }
    return Error::FailedPrecondition("cannot lock " + path + ": " + std::strerror(err));
  }
  std::string text = std::to_string(pid < 0 ? static_cast<int>(::getpid()) : pid) + "\n";
  // Best effort: the pid is a hint for the message above, the flock is the lock.
  if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, text.data(), text.size(), 0);
  return DataDirLock(std::move(path), fd);
}

std::optional<IdentityNotice> IdentityRequestNotice(const ExistingIdentity& existing,
                                                    const RequestedIdentity& requested) {
  if (!requested.token_given && requested.name.empty() && requested.labels.empty()) return std::nullopt;
  std::vector<std::string> differs;
  if (!requested.name.empty() && requested.name != existing.node) differs.push_back("--name " + Quoted(requested.name));
  std::map<std::string, std::string> other_labels;
  for (const auto& [k, v] : requested.labels) {
    auto it = existing.labels.find(k);
    if (it == existing.labels.end() || it->second != v) other_labels[k] = v;
  }
  if (!other_labels.empty()) differs.push_back("--label " + LabelList(other_labels));

  const std::string held = "node " + Quoted(existing.node) + " of workspace " + Quoted(existing.workspace) +
                           " (labels " + LabelList(existing.labels) + ")";
  IdentityNotice n;
  if (differs.empty()) {
    n.message = "data dir " + existing.data_dir + " already holds " + held + "; running as it" +
                (requested.token_given ? " (the bootstrap token was not needed and is not used)" : "");
    return n;
  }
  std::string asked;
  for (const auto& d : differs) asked += (asked.empty() ? "" : " and ") + d;
  n.warning = true;
  n.message = "data dir " + existing.data_dir + " already holds " + held + ", not the node asked for with " +
              asked + "; running as the existing " + Quoted(existing.node) + " and ignoring " +
              (requested.token_given ? "the bootstrap token, " : "") + "the name and labels given" +
              " (a new node needs its own --data-dir; labels of an existing node change with"
              " `cairnctl node label`)";
  return n;
}

}  // namespace cairn::edge
