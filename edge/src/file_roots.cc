#include "cairn/edge/file_roots.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <utility>

#include "cairn/common/files.h"
#include "cairn/common/text.h"

#ifndef SYS_openat2
#define SYS_openat2 437  // the same number on every architecture
#endif

namespace cairn::edge {
namespace {

namespace fs = std::filesystem;

// Names the node keeps directly in its data dir as directories of its own.
constexpr const char* kStateDir = "state";
constexpr const char* kQueueDir = "queue";
constexpr int kMaxDepth = 4096;

std::string ErrnoText(int err) { return std::strerror(err); }

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// Splits on '/', dropping empty and "." components. Sets *dotdot when a ".."
// component is present.
std::vector<std::string> Components(std::string_view path, bool* dotdot) {
  std::vector<std::string> out;
  *dotdot = false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view c = path.substr(start, slash - start);
    if (c == "..") *dotdot = true;
    if (!c.empty() && c != ".") out.emplace_back(c);
    start = slash + 1;
  }
  return out;
}

std::string Join(const std::vector<std::string>& comps, size_t n) {
  std::string out;
  for (size_t i = 0; i < n && i < comps.size(); ++i) {
    if (i > 0) out += '/';
    out += comps[i];
  }
  return out;
}

std::string AbsoluteFrom(const std::vector<std::string>& comps) { return "/" + Join(comps, comps.size()); }

bool Below(const std::string& path, const std::string& dir) {
  if (dir == "/") return !path.empty() && path[0] == '/';
  return path == dir ||
         (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

std::string Parent(const std::string& abs) {
  const size_t slash = abs.rfind('/');
  if (slash == 0 || slash == std::string::npos) return "/";
  return abs.substr(0, slash);
}

bool HasControlByte(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

const char* Verb(FileAccess a) { return a == FileAccess::kRead ? "read" : "write"; }
std::string Setting(FileAccess a) { return a == FileAccess::kRead ? "allow-read" : "allow-write"; }

std::string RootList(const std::vector<FileRoots::Root>& roots) {
  std::string out;
  for (const auto& r : roots) {
    if (!out.empty()) out += ", ";
    out += r.dir;
  }
  return out;
}

// "the node's user cairn-edge" (or "uid 999" without a passwd entry).
std::string NodeUser() {
  const uid_t uid = ::geteuid();
  struct passwd pw {};
  struct passwd* found = nullptr;
  char buf[1024];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr) {
    return std::string("the node's user ") + found->pw_name;
  }
  return "the node's user (uid " + std::to_string(uid) + ")";
}

std::string NoAccess(const std::string& display, int err) {
  return Quoted(display) + ": " + NodeUser() + " may not open it (" + ErrnoText(err) +
         "); give that user access to it (docs/deploy-node.md, \"Files a pipeline may touch\")";
}

// The kernel's own file systems: /proc (every process's memory, environment
// and, as root, /proc/sysrq-trigger), /sys, cgroups (a mkdir there makes a
// cgroup), debugfs and friends. A pipeline reads and writes data files.
const char* KernelFileSystem(int fd) {
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0) return nullptr;
  switch (static_cast<unsigned long>(fs.f_type)) {
    case PROC_SUPER_MAGIC:
      return "/proc";
    case SYSFS_MAGIC:
      return "sysfs";
    case CGROUP_SUPER_MAGIC:
    case CGROUP2_SUPER_MAGIC:
      return "cgroupfs";
    case DEBUGFS_MAGIC:
      return "debugfs";
    case TRACEFS_MAGIC:
      return "tracefs";
    case SECURITYFS_MAGIC:
      return "securityfs";
    case SELINUX_MAGIC:
      return "selinuxfs";
    case SMACK_MAGIC:
      return "smackfs";
    case PSTOREFS_MAGIC:
      return "pstore";
    case EFIVARFS_MAGIC:
      return "efivarfs";
    case BPF_FS_MAGIC:
      return "bpffs";
    case BINFMTFS_MAGIC:
      return "binfmt_misc";
    case 0x62656570UL:
      return "configfs";
    default:
      return nullptr;
  }
}

Status CheckFileSystem(int fd, const std::string& display) {
  if (const char* kind = KernelFileSystem(fd)) {
    return Error::PermissionDenied(
        Quoted(display) + " is on " + kind +
        ", one of the kernel's own file systems; pipelines read and write files on disk "
        "only, whatever the roots");
  }
  return OkStatus();
}

std::string ProcFd(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

Result<OwnedFd> Dup(int fd) {
  const int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0) return Error::Unavailable(std::string("cannot duplicate a descriptor: ") + ErrnoText(errno));
  return OwnedFd(d);
}

// Devices and inodes of the node's own places, looked up at each check (the
// state and queue directories may appear at any time, renewal replaces the
// identity files).
struct NodePlaces {
  bool have_data = false, have_state = false, have_queue = false;
  struct stat data {
  }, state{}, queue{};
};

NodePlaces StatNodePlaces(const std::string& data_dir) {
  NodePlaces p;
  p.have_data = ::stat(data_dir.c_str(), &p.data) == 0 && S_ISDIR(p.data.st_mode);
  if (!p.have_data) return p;
  p.have_state = ::stat((data_dir + "/" + kStateDir).c_str(), &p.state) == 0;
  p.have_queue = ::stat((data_dir + "/" + kQueueDir).c_str(), &p.queue) == 0;
  return p;
}

}  // namespace

// ---------------------------------------------------------------------------
// OwnedFd

OwnedFd& OwnedFd::operator=(OwnedFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

OwnedFd::~OwnedFd() {
  if (fd_ >= 0) ::close(fd_);
}

int OwnedFd::release() { return std::exchange(fd_, -1); }

// ---------------------------------------------------------------------------

bool KernelHasOpenat2() {
  static const bool has = [] {
    const int dir = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return false;
    struct open_how how {};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    const long fd = ::syscall(SYS_openat2, dir, ".", &how, sizeof how);
    const int err = errno;
    ::close(dir);
    if (fd >= 0) {
      ::close(static_cast<int>(fd));
      return true;
    }
    return err != ENOSYS && err != EPERM;
  }();
  return has;
}

Result<std::vector<std::string>> ParseAllowedRoots(std::string_view setting,
                                                   const std::vector<std::string>& values) {
  std::vector<std::string> out;
  const std::string flag = "--" + std::string(setting);
  for (const auto& v : values) {
    if (v.empty()) return Error::InvalidArgument(flag + " \"\": a directory is required");
    if (v.find('\0') != std::string::npos || HasControlByte(v)) {
      return Error::InvalidArgument(flag + " " + Quoted(v) + ": contains a control character");
    }
    if (v[0] != '/') {
      return Error::InvalidArgument(flag + " " + Quoted(v) +
                                    ": must be an absolute directory (e.g. /var/log)");
    }
    bool dotdot = false;
    auto comps = Components(v, &dotdot);
    if (dotdot) {
      return Error::InvalidArgument(flag + " " + Quoted(v) +
                                    ": may not contain \"..\"; give the directory itself");
    }
    std::string norm = AbsoluteFrom(comps);
    bool seen = false;
    for (const auto& o : out) seen = seen || o == norm;
    if (!seen) out.push_back(std::move(norm));
  }
  return out;
}

// ---------------------------------------------------------------------------
// FileRoots: set-up

Result<FileRoots> FileRoots::Make(const FileRootsOptions& options) {
  if (options.data_dir.empty()) return Error::InvalidArgument("file roots: the data dir is empty");
  FileRoots r;
  {
    std::error_code ec;
    fs::path abs = fs::absolute(options.data_dir, ec);
    if (ec) return Error::InvalidArgument("data dir " + Quoted(options.data_dir) + ": " + ec.message());
    bool dotdot = false;
    auto comps = Components(abs.lexically_normal().string(), &dotdot);
    if (dotdot)
      return Error::InvalidArgument("data dir " + Quoted(options.data_dir) + ": may not contain \"..\"");
    r.data_dir_ = AbsoluteFrom(comps);
  }
  auto read = ParseAllowedRoots("allow-read", options.allow_read);
  if (!read.ok()) return read.error();
  auto write = ParseAllowedRoots("allow-write", options.allow_write);
  if (!write.ok()) return write.error();

  const std::string state = r.data_dir_ + "/" + kStateDir;
  const std::string queue = r.data_dir_ + "/" + kQueueDir;
  auto add = [&](std::vector<Root>* roots, const std::string& dflt, const std::vector<std::string>& given,
                 const std::string& setting) -> Status {
    roots->push_back(Root{dflt, true});
    for (const auto& dir : given) {
      if (Below(dir, state) || Below(dir, queue)) {
        return Error::InvalidArgument("--" + setting + " " + dir + ": is inside the node's " +
                                      (Below(dir, state) ? "cache (state/)" : "queue (queue/)") +
                                      ", which no pipeline may ever use");
      }
      if (dir != dflt) roots->push_back(Root{dir, false});
    }
    return OkStatus();
  };
  if (auto s = add(&r.read_roots_, r.data_dir_ + "/in", *read, "allow-read"); !s.ok()) return s.error();
  if (auto s = add(&r.write_roots_, r.data_dir_ + "/out", *write, "allow-write"); !s.ok()) return s.error();

  switch (options.method) {
    case ResolveMethod::kAuto:
      r.method_ = KernelHasOpenat2() ? ResolveMethod::kOpenat2 : ResolveMethod::kWalk;
      break;
    case ResolveMethod::kOpenat2:
      if (!KernelHasOpenat2()) {
        return Error::FailedPrecondition(
            "file roots: this kernel has no openat2(2) (Linux 5.6 or later needed)");
      }
      r.method_ = ResolveMethod::kOpenat2;
      break;
    case ResolveMethod::kWalk:
      r.method_ = ResolveMethod::kWalk;
      break;
  }
  return r;
}

Status FileRoots::EnsureDefaultRoots() const {
  for (const auto* dir : {&read_roots_.front().dir, &write_roots_.front().dir}) {
    if (auto s = MakeDirs(*dir, 0750); !s.ok()) return s;
  }
  return OkStatus();
}

std::vector<std::string> FileRoots::CheckRoots() const {
  std::vector<std::string> warnings;
  auto check = [&](const std::vector<Root>& roots, FileAccess access) {
    for (const auto& r : roots) {
      struct stat st {};
      if (::stat(r.dir.c_str(), &st) != 0) {
        warnings.push_back(std::string(access == FileAccess::kRead ? "readable" : "writable") + " root " +
                           r.dir + (r.is_default ? " (the default)" : " (--" + Setting(access) + ")") +
                           " does not exist: pipelines that use it wait until it does");
      } else if (!S_ISDIR(st.st_mode)) {
        warnings.push_back(std::string(access == FileAccess::kRead ? "readable" : "writable") + " root " +
                           r.dir + " (--" + Setting(access) + ") is not a directory");
      }
      if (Below(data_dir_, r.dir)) {
        warnings.push_back("--" + Setting(access) + " " + r.dir + " covers the data dir " + data_dir_ +
                           ": pipelines still cannot touch the node's identity files, state/ and queue/");
      }
    }
  };
  check(read_roots_, FileAccess::kRead);
  check(write_roots_, FileAccess::kWrite);
  return warnings;
}

std::string FileRoots::Describe() const {
  return "pipelines may read below " + RootList(read_roots_) + " and write below " + RootList(write_roots_) +
         (method_ == ResolveMethod::kOpenat2
              ? " (resolved with openat2 RESOLVE_BENEATH)"
              : " (resolved component by component; this kernel has no openat2, so symlinks below a root are "
                "refused)");
}

// ---------------------------------------------------------------------------
// Lexical rules (1-3, and 5 by name)

Result<FileRoots::Target> FileRoots::Locate(std::string_view path, FileAccess access) const {
  if (path.empty()) return Error::InvalidArgument("file path is empty");
  if (path.find('\0') != std::string_view::npos) {
    return Error::InvalidArgument("file path " + Quoted(path) + " contains a NUL byte");
  }
  bool dotdot = false;
  auto comps = Components(path, &dotdot);
  if (dotdot) {
    return Error::PermissionDenied(
        Quoted(path) + ": a pipeline's file path may not contain \"..\" (relative paths are below " +
        read_roots_.front().dir + " for reading and " + write_roots_.front().dir + " for writing)");
  }
  const auto& roots = access == FileAccess::kRead ? read_roots_ : write_roots_;
  std::string abs;
  if (path[0] == '/') {
    abs = AbsoluteFrom(comps);
  } else {
    // "out/x.log" and "x.log" are the same file (pipelines written before the
    // roots named the data dir's out/ like that).
    const char* dflt = access == FileAccess::kRead ? "in" : "out";
    if (!comps.empty() && comps.front() == dflt) comps.erase(comps.begin());
    abs = roots.front().dir;
    for (const auto& c : comps) abs += "/" + c;
  }
  // The broadest root that holds the path: whatever a narrower root allows
  // below it, the broader one allows too.
  const Root* best = nullptr;
  for (const auto& r : roots) {
    if (Below(abs, r.dir) && (best == nullptr || r.dir.size() < best->dir.size())) best = &r;
  }
  if (best == nullptr) {
    return Error::PermissionDenied(Quoted(abs) + " is outside the directories pipelines may " + Verb(access) +
                                   " on this node (" + RootList(roots) +
                                   "); the node's owner can add one with --" + Setting(access) + " DIR (or " +
                                   Setting(access) + " in the node's config file)");
  }
  if (abs == best->dir) {
    return Error::InvalidArgument(Quoted(abs) + " is a directory (a root); name a file below it");
  }
  const std::string state = data_dir_ + "/" + kStateDir;
  const std::string queue = data_dir_ + "/" + kQueueDir;
  if (abs == data_dir_ || Parent(abs) == data_dir_ || Below(abs, state) || Below(abs, queue)) {
    return Error::PermissionDenied(
        Quoted(abs) + " is one of the node's own files (identity and files directly in the data dir " +
        data_dir_ + ", the cache state/, the queue queue/): no pipeline may " + Verb(access) +
        " it, whatever --" + Setting(access) + " says");
  }
  Target t;
  t.display = abs;
  t.root = best;
  t.rel = best->dir == "/" ? abs.substr(1) : abs.substr(std::min(abs.size(), best->dir.size() + 1));
  return t;
}

Result<std::string> FileRoots::Resolve(std::string_view path, FileAccess access) const {
  auto t = Locate(path, access);
  if (!t.ok()) return t.error();
  return t->display;
}

// ---------------------------------------------------------------------------
// Resolution on the file system (rule 4)

Result<OwnedFd> FileRoots::OpenRoot(const Target& t, FileAccess access) const {
  const int fd = ::open(t.root->dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) return OwnedFd(fd);
  const int err = errno;
  const std::string what = std::string(access == FileAccess::kRead ? "readable" : "writable") + " root " +
                           t.root->dir +
                           (t.root->is_default ? " (the default)" : " (--" + Setting(access) + ")");
  if (err == ENOENT) {
    return Error::NotFound(Quoted(t.display) + ": the " + what + " does not exist; create it or change --" +
                           Setting(access));
  }
  if (err == ENOTDIR)
    return Error::FailedPrecondition(Quoted(t.display) + ": the " + what + " is not a directory");
  return Error::Unavailable(Quoted(t.display) + ": cannot open the " + what + ": " + ErrnoText(err));
}

namespace {

Error ResolveError(int err, const std::string& display, const std::string& root, FileAccess access) {
  switch (err) {
    case ENOENT:
      return Error::NotFound(Quoted(display) + " does not exist");
    case ENOTDIR:
      return Error::NotFound(Quoted(display) + " does not exist (a component of it is not a directory)");
    case EXDEV:
      return Error::PermissionDenied(Quoted(display) + " leads out of " + root +
                                     " through a symlink (a symlink below a root must have a relative target "
                                     "that stays below the root); "
                                     "the node's owner can allow the target's directory with --" +
                                     Setting(access) + " DIR, and the pipeline can name the file there");
    case ELOOP:
      return Error::PermissionDenied(Quoted(display) +
                                     ": too many symlinks, or a /proc magic link, on the way (refused)");
    case EACCES:
    case EPERM:
      return Error::PermissionDenied(NoAccess(display, err));
    default:
      return Error::Unavailable("cannot open " + Quoted(display) + ": " + ErrnoText(err));
  }
}

}  // namespace

Result<OwnedFd> FileRoots::ResolveBeneath(int root_fd, const std::string& rel, const Target& t,
                                          FileAccess access) const {
  if (rel.empty()) return Dup(root_fd);
  if (method_ == ResolveMethod::kOpenat2) {
    struct open_how how {};
    how.flags = O_PATH | O_CLOEXEC;
    // Below "/", an absolute symlink (/var/run -> /run) means what it says,
    // and RESOLVE_IN_ROOT resolves it so; below any other root it would be
    // re-rooted to another file, so it is refused (RESOLVE_BENEATH).
    how.resolve = (t.root->dir == "/" ? RESOLVE_IN_ROOT : RESOLVE_BENEATH) | RESOLVE_NO_MAGICLINKS;
    for (int attempt = 0;; ++attempt) {
      const long fd = ::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how);
      if (fd >= 0) return OwnedFd(static_cast<int>(fd));
      // EAGAIN: a rename raced with resolution; the kernel asks to retry.
      if ((errno == EAGAIN || errno == EINTR) && attempt < 16) continue;
      return ResolveError(errno, t.display, t.root->dir, access);
    }
  }
  // Without openat2: one component at a time, never following a symlink, so
  // the walk cannot leave the root ("..", refused earlier, is the only other way).
  bool dotdot = false;
  const auto comps = Components(rel, &dotdot);
  if (dotdot) return Error::Internal("file roots: \"..\" reached the walk");
  auto cur = Dup(root_fd);
  if (!cur.ok()) return cur.error();
  for (size_t i = 0; i < comps.size(); ++i) {
    const int fd = ::openat(cur->get(), comps[i].c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ResolveError(errno, t.display, t.root->dir, access);
    OwnedFd next(fd);
    struct stat st {};
    if (::fstat(next.get(), &st) != 0) return ResolveError(errno, t.display, t.root->dir, access);
    if (S_ISLNK(st.st_mode)) {
      return Error::PermissionDenied(
          Quoted(t.display) + ": " +
          Quoted(t.root->dir == "/" ? "/" + Join(comps, i + 1) : t.root->dir + "/" + Join(comps, i + 1)) +
          " is a symbolic link; this kernel has no openat2(2), so the node refuses every symlink below a "
          "root: "
          "name the file the link points to");
    }
    if (i + 1 < comps.size() && !S_ISDIR(st.st_mode))
      return ResolveError(ENOTDIR, t.display, t.root->dir, access);
    cur = std::move(next);
  }
  return cur;
}

// ---------------------------------------------------------------------------
// The node's own files (rule 5, on what was opened)

namespace {

// Whether the entry `name` of directory `dir_fd` is the node's own: walks
// the directory's parents with "..". `is_file`: the entry is (or will be) a
// non-directory.
Status CheckPlace(int dir_fd, const std::string& name, bool is_file, const NodePlaces& places,
                  const std::string& display, const std::string& data_dir, FileAccess access) {
  if (!places.have_data) return OkStatus();
  auto refused = [&] {
    return Error::PermissionDenied(
        Quoted(display) + " is one of the node's own files (identity and files directly in the data dir " +
        data_dir + ", the cache state/, the queue queue/): no pipeline may " + Verb(access) +
        " it, whatever --" + Setting(access) + " says");
  };
  auto cur = Dup(dir_fd);
  if (!cur.ok()) return cur.error();
  for (int depth = 0; depth < kMaxDepth; ++depth) {
    struct stat st {};
    if (::fstat(cur->get(), &st) != 0) {
      return Error::Unavailable("cannot check " + Quoted(display) + ": " + ErrnoText(errno));
    }
    if (SameFile(st, places.data)) {
      if (depth == 0 && (is_file || name == kStateDir || name == kQueueDir)) return refused();
      return OkStatus();  // below the data dir, in a directory of its own
    }
    if ((places.have_state && SameFile(st, places.state)) ||
        (places.have_queue && SameFile(st, places.queue))) {
      return refused();
    }
    const int up = ::openat(cur->get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (up < 0) return Error::Unavailable("cannot check " + Quoted(display) + ": " + ErrnoText(errno));
    OwnedFd parent(up);
    struct stat pst {};
    if (::fstat(parent.get(), &pst) != 0) {
      return Error::Unavailable("cannot check " + Quoted(display) + ": " + ErrnoText(errno));
    }
    if (SameFile(pst, st)) return OkStatus();  // reached "/"
    *cur = std::move(parent);
  }
  return Error::Unavailable("cannot check " + Quoted(display) + ": directories nested too deep");
}

}  // namespace

Status FileRoots::CheckNotNodeFile(int fd, const struct stat& st, const Target& t, FileAccess access) const {
  const NodePlaces places = StatNodePlaces(data_dir_);
  if (!places.have_data) return OkStatus();
  // Where the opened inode really is: its parent directory, by the path the
  // kernel keeps for the descriptor, verified to hold this very inode.
  char buf[PATH_MAX + 1];
  const ssize_t n = ::readlink(ProcFd(fd).c_str(), buf, PATH_MAX);
  if (n < 0) {
    return Error::Unavailable("cannot check " + Quoted(t.display) + ": " + ProcFd(fd) + ": " +
                              ErrnoText(errno) +
                              " (the node needs /proc mounted to check a pipeline's files)");
  }
  const std::string real(buf, static_cast<size_t>(n));
  const size_t slash = real.rfind('/');
  if (real.empty() || real[0] != '/' || slash == std::string::npos || slash + 1 == real.size()) {
    return Error::Unavailable(Quoted(t.display) + " was moved or deleted while being opened; try again");
  }
  const std::string dir = slash == 0 ? "/" : real.substr(0, slash);
  const std::string base = real.substr(slash + 1);
  const int dfd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return Error::Unavailable(Quoted(t.display) + " was moved or deleted while being opened; try again");
  OwnedFd parent(dfd);
  struct stat cst {};
  if (::fstatat(parent.get(), base.c_str(), &cst, AT_SYMLINK_NOFOLLOW) != 0 || !SameFile(cst, st)) {
    return Error::Unavailable(Quoted(t.display) + " was moved or deleted while being opened; try again");
  }
  if (auto s = CheckPlace(parent.get(), base, !S_ISDIR(st.st_mode), places, t.display, data_dir_, access);
      !s.ok()) {
    return s;
  }
  // Another name for one of the files directly in the data dir (hard link).
  if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
    DIR* d = ::opendir(data_dir_.c_str());
    if (d == nullptr) {
      return Error::Unavailable("cannot check " + Quoted(t.display) + ": " + data_dir_ + ": " +
                                ErrnoText(errno));
    }
    bool same = false;
    while (const dirent* e = ::readdir(d)) {
      struct stat est {};
      if (::fstatat(::dirfd(d), e->d_name, &est, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(est.st_mode) &&
          SameFile(est, st)) {
        same = true;
        break;
      }
    }
    ::closedir(d);
    if (same) {
      return Error::PermissionDenied(
          Quoted(t.display) + " is another name (hard link) for one of the node's own files in " + data_dir_ +
          ": no pipeline may " + Verb(access) + " it, whatever --" + Setting(access) + " says");
    }
  }
  return OkStatus();
}

Result<OwnedFd> FileRoots::OpenChecked(const Target& t, FileAccess access) const {
  auto root = OpenRoot(t, access);
  if (!root.ok()) return root.error();
  auto fd = ResolveBeneath(root->get(), t.rel, t, access);
  if (!fd.ok()) return fd.error();
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return ResolveError(errno, t.display, t.root->dir, access);
  if (auto s = CheckFileSystem(fd->get(), t.display); !s.ok()) return s.error();
  if (auto s = CheckNotNodeFile(fd->get(), st, t, access); !s.ok()) return s.error();
  if (!S_ISREG(st.st_mode)) {
    return Error::PermissionDenied(Quoted(t.display) +
                                   " is not a regular file (pipelines read and write regular files only)");
  }
  return fd;
}

namespace {

// Opens the very inode behind an O_PATH descriptor, without a lookup by name.
Result<OwnedFd> Reopen(int path_fd, int flags, const std::string& display) {
  const int fd = ::open(ProcFd(path_fd).c_str(), flags | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    const int err = errno;
    if (err == EACCES || err == EPERM) {
      return Error::PermissionDenied(NoAccess(display, err));
    }
    return Error::Unavailable("cannot open " + Quoted(display) + ": " + ErrnoText(err));
  }
  return OwnedFd(fd);
}

}  // namespace

Result<OwnedFd> FileRoots::OpenForRead(std::string_view path) const {
  auto t = Locate(path, FileAccess::kRead);
  if (!t.ok()) return t.error();
  auto fd = OpenChecked(*t, FileAccess::kRead);
  if (!fd.ok()) return fd.error();
  return Reopen(fd->get(), O_RDONLY, t->display);
}

Result<struct stat> FileRoots::StatForRead(std::string_view path) const {
  auto t = Locate(path, FileAccess::kRead);
  if (!t.ok()) return t.error();
  auto fd = OpenChecked(*t, FileAccess::kRead);
  if (!fd.ok()) return fd.error();
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0)
    return Error::Unavailable("cannot stat " + Quoted(t->display) + ": " + ErrnoText(errno));
  return st;
}

Result<OwnedFd> FileRoots::OpenParent(int root_fd, const Target& t, bool create) const {
  bool dotdot = false;
  const auto comps = Components(t.rel, &dotdot);
  const size_t ndirs = comps.size() - 1;
  auto as_dir = [&](Result<OwnedFd> fd) -> Result<OwnedFd> {
    if (!fd.ok()) return fd;
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Error::FailedPrecondition(Quoted(t.display) + ": its parent is not a directory");
    }
    return fd;
  };
  auto whole = as_dir(ResolveBeneath(root_fd, Join(comps, ndirs), t, FileAccess::kWrite));
  if (!create || whole.ok() || whole.error().code != ErrorCode::kNotFound) return whole;
  // Create what is missing, one directory at a time, each inside a directory
  // that was resolved below the root and checked first.
  const NodePlaces places = StatNodePlaces(data_dir_);
  auto cur = Dup(root_fd);
  if (!cur.ok()) return cur.error();
  for (size_t i = 0; i < ndirs; ++i) {
    auto next = as_dir(ResolveBeneath(root_fd, Join(comps, i + 1), t, FileAccess::kWrite));
    if (!next.ok() && next.error().code == ErrorCode::kNotFound) {
      if (auto s = CheckFileSystem(cur->get(), t.display); !s.ok()) return s.error();
      if (auto s = CheckPlace(cur->get(), comps[i], false, places, t.display, data_dir_, FileAccess::kWrite);
          !s.ok()) {
        return s.error();
      }
      if (::mkdirat(cur->get(), comps[i].c_str(), 0755) != 0 && errno != EEXIST) {
        return Error::Unavailable("cannot create the directories of " + Quoted(t.display) + ": " +
                                  ErrnoText(errno));
      }
      next = as_dir(ResolveBeneath(root_fd, Join(comps, i + 1), t, FileAccess::kWrite));
    }
    if (!next.ok()) return next.error();
    cur = std::move(next);
  }
  return cur;
}

Result<OwnedFd> FileRoots::OpenForAppend(std::string_view path, mode_t mode) const {
  auto t = Locate(path, FileAccess::kWrite);
  if (!t.ok()) return t.error();
  auto root = OpenRoot(*t, FileAccess::kWrite);
  if (!root.ok()) return root.error();
  auto parent = OpenParent(root->get(), *t, /*create=*/true);
  if (!parent.ok()) return parent.error();
  if (auto s = CheckFileSystem(parent->get(), t->display); !s.ok()) return s.error();
  bool dotdot = false;
  const std::string base = Components(t->rel, &dotdot).back();
  if (auto s = CheckPlace(parent->get(), base, true, StatNodePlaces(data_dir_), t->display, data_dir_,
                          FileAccess::kWrite);
      !s.ok()) {
    return s.error();
  }
  constexpr int kAppend = O_WRONLY | O_APPEND;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const int pfd = ::openat(parent->get(), base.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (pfd >= 0) {
      OwnedFd existing(pfd);
      struct stat st {};
      if (::fstat(existing.get(), &st) != 0)
        return ResolveError(errno, t->display, t->root->dir, FileAccess::kWrite);
      if (S_ISLNK(st.st_mode)) {
        // A symlink: follow it only below the root, as a read would.
        auto target = OpenChecked(*t, FileAccess::kWrite);
        if (!target.ok()) {
          if (target.error().code == ErrorCode::kNotFound) {
            return Error::PermissionDenied(
                Quoted(t->display) +
                " is a symlink to a file that does not exist; the node does not create "
                "files through symlinks");
          }
          return target.error();
        }
        return Reopen(target->get(), kAppend, t->display);
      }
      if (auto s = CheckFileSystem(existing.get(), t->display); !s.ok()) return s.error();
      if (auto s = CheckNotNodeFile(existing.get(), st, *t, FileAccess::kWrite); !s.ok()) return s.error();
      if (!S_ISREG(st.st_mode)) {
        return Error::PermissionDenied(
            Quoted(t->display) + " is not a regular file (pipelines read and write regular files only)");
      }
      return Reopen(existing.get(), kAppend, t->display);
    }
    if (errno != ENOENT) return ResolveError(errno, t->display, t->root->dir, FileAccess::kWrite);
    const int fd = ::openat(parent->get(), base.c_str(),
                            kAppend | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode);
    if (fd >= 0) return OwnedFd(fd);
    if (errno != EEXIST) return ResolveError(errno, t->display, t->root->dir, FileAccess::kWrite);
    // Created by someone else in between: open what is there now.
  }
  return Error::Unavailable("cannot open " + Quoted(t->display) + ": it keeps changing; try again");
}

Result<FileRoots::Placed> FileRoots::PlaceForChange(std::string_view path) const {
  auto t = Locate(path, FileAccess::kWrite);
  if (!t.ok()) return t.error();
  auto root = OpenRoot(*t, FileAccess::kWrite);
  if (!root.ok()) return root.error();
  auto parent = OpenParent(root->get(), *t, /*create=*/false);
  if (!parent.ok()) return parent.error();
  if (auto s = CheckFileSystem(parent->get(), t->display); !s.ok()) return s.error();
  bool dotdot = false;
  Placed p{*t, std::move(parent).value(), Components(t->rel, &dotdot).back()};
  if (auto s = CheckPlace(p.parent.get(), p.base, true, StatNodePlaces(data_dir_), p.target.display,
                          data_dir_, FileAccess::kWrite);
      !s.ok()) {
    return s.error();
  }
  return p;
}

Status FileRoots::Rename(std::string_view from, std::string_view to) const {
  auto a = PlaceForChange(from);
  if (!a.ok()) return a.error();
  auto b = PlaceForChange(to);
  if (!b.ok()) return b.error();
  struct stat sa {
  }, sb{};
  if (::fstat(a->parent.get(), &sa) != 0 || ::fstat(b->parent.get(), &sb) != 0 || !SameFile(sa, sb)) {
    return Error::InvalidArgument("cannot rename " + Quoted(a->target.display) + " to " +
                                  Quoted(b->target.display) +
                                  ": a pipeline renames files only within one directory");
  }
  struct stat st {};
  if (::fstatat(a->parent.get(), a->base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return ResolveError(errno, a->target.display, a->target.root->dir, FileAccess::kWrite);
  }
  if (!S_ISREG(st.st_mode)) {
    return Error::PermissionDenied(Quoted(a->target.display) +
                                   " is not a regular file (pipelines read and write regular files only)");
  }
  // Names inside one checked directory: renameat follows no symlink.
  if (::renameat(a->parent.get(), a->base.c_str(), b->parent.get(), b->base.c_str()) != 0) {
    return Error::Unavailable("cannot rename " + Quoted(a->target.display) + " to " +
                              Quoted(b->target.display) + ": " + ErrnoText(errno));
  }
  return OkStatus();
}

Status FileRoots::Remove(std::string_view path) const {
  auto p = PlaceForChange(path);
  if (!p.ok()) return p.error();
  struct stat st {};
  if (::fstatat(p->parent.get(), p->base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return ResolveError(errno, p->target.display, p->target.root->dir, FileAccess::kWrite);
  }
  if (!S_ISREG(st.st_mode)) {
    return Error::PermissionDenied(Quoted(p->target.display) +
                                   " is not a regular file (pipelines read and write regular files only)");
  }
  if (::unlinkat(p->parent.get(), p->base.c_str(), 0) != 0) {
    return Error::Unavailable("cannot remove " + Quoted(p->target.display) + ": " + ErrnoText(errno));
  }
  return OkStatus();
}

}  // namespace cairn::edge
