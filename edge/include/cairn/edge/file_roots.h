// Which files a pipeline may touch on this node, and opening them safely.
//
// A pipeline comes from the control plane; the node's owner decides, in local
// settings only (cairn-edge run --allow-read DIR / --allow-write DIR, the
// allow-read / allow-write lists of the config file, or CAIRN_EDGE_ALLOW_READ /
// CAIRN_EDGE_ALLOW_WRITE), which directories it may read and write. Never from
// the control plane.
//
// Rules, in the order they are checked:
//  1. A path may not contain a ".." component, a NUL byte, or be empty.
//  2. A relative path is below DATA_DIR/in (read) or DATA_DIR/out (write); a
//     leading "in/" (read) or "out/" (write) names that same directory, so
//     "out/app-errors.log" (the form pipelines used so far, relative to the
//     data dir) and "app-errors.log" are one file.
//  3. The path must be a root or below one, lexically: the readable roots are
//     DATA_DIR/in plus every --allow-read DIR; the writable roots are
//     DATA_DIR/out plus every --allow-write DIR. Reading and writing are
//     separate: a writable root is not readable unless it is also listed with
//     --allow-read.
//  4. It is resolved below the root by the kernel, without following a
//     symlink out of the root: openat2(2) with RESOLVE_BENEATH |
//     RESOLVE_NO_MAGICLINKS on an O_PATH descriptor of the root. A symlink
//     inside a root that stays inside it (relative target, no climbing above
//     the root) is followed; an absolute symlink target is refused (except
//     below the root "/", resolved with RESOLVE_IN_ROOT, where an absolute
//     target means what it says). Kernels
//     without openat2 (before 5.6, or seccomp filters answering ENOSYS/EPERM)
//     get a walk component by component with O_NOFOLLOW, which refuses every
//     symlink below a root.
//  5. The node's own files are never reachable, whatever the roots (also when
//     a root is the data dir or "/"): every non-directory directly in the
//     data dir (node.key, node.crt, ca.crt, identity.yaml, *.next, bd_seq,
//     the lock file...), and everything below DATA_DIR/state (the cache) and
//     DATA_DIR/queue (the outbound queue; the name is reserved even before
//     the directory exists). This is checked on what was actually opened
//     (device and inode of its parent chain, walked with ".."), so symlinks,
//     bind mounts and other names for the data dir do not get around it; a
//     hard link to an identity file is recognised by its inode.
//  6. Only regular files on ordinary file systems are opened: no devices,
//     FIFOs, sockets or directories, and nothing on the kernel's own file
//     systems (/proc -- every process's environment and memory --, /sys,
//     cgroupfs, debugfs, tracefs, securityfs, ...), where a read can leak
//     secrets and a write or mkdir (as root) changes the kernel.
//
// Why this is race-free: the whole resolution happens inside one openat2()
// call, which checks every component (and every symlink it follows) against
// the root while it walks; there is no window between "check the path" and
// "open the path" in which a symlink could be swapped in, as there is with
// realpath() followed by open(). The result is a descriptor of the inode that
// was checked; the node's-own-files check runs on that descriptor, and the
// descriptor handed out is a reopening of that same inode (/proc/self/fd/N),
// never a second lookup by name. Files are created with O_CREAT | O_EXCL |
// O_NOFOLLOW inside a directory descriptor that was checked first. What this
// does not defend against is the node's own user moving files inside the
// data dir while a pipeline opens one (it could read node.key anyway).
//
// Needs /proc mounted (the check reads /proc/self/fd); without it every open
// fails closed with a message saying so.
//
// Errors: kPermissionDenied for a refusal by the rules above, kNotFound when
// the file (or a root) does not exist yet (a tail waits for it),
// kInvalidArgument for a malformed path, kUnavailable for other I/O errors.
// Every message names the path and the rule, and, where the owner can change
// it, the setting.
//
// Thread-safety: FileRoots is immutable after Make(); all const methods are
// thread-safe. OwnedFd is a plain move-only value.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/result.h"

namespace cairn::edge {

// A file descriptor that closes itself. Move-only.
class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) : fd_(fd) {}
  OwnedFd(OwnedFd&& other) noexcept : fd_(other.release()) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept;
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership: the caller closes the descriptor.
  int release();

 private:
  int fd_ = -1;
};

enum class FileAccess { kRead, kWrite };

enum class ResolveMethod {
  kAuto,     // openat2 when the kernel has it, else kWalk
  kOpenat2,  // openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS); Make fails without it
  kWalk,     // component by component with O_NOFOLLOW: symlinks below a root refused
};

// Whether openat2(2) works here (tried once, then remembered). ENOSYS (kernel
// before 5.6) and EPERM (a seccomp filter) both count as "no".
bool KernelHasOpenat2();

// Validates one setting's values (flag values or the config list) for
// `setting` ("allow-read" or "allow-write"): each must be an absolute path
// without "..", NUL or control characters; returns them normalised ("//"
// and "/./" collapsed, no trailing "/", "/" kept) without duplicates, in the
// given order. The directories need not exist.
// Example error: `--allow-read "var/log": must be an absolute directory (e.g. /var/log)`.
Result<std::vector<std::string>> ParseAllowedRoots(std::string_view setting,
                                                   const std::vector<std::string>& values);

struct FileRootsOptions {
  std::string data_dir;                  // made absolute and normalised
  std::vector<std::string> allow_read;   // raw values of --allow-read / allow-read
  std::vector<std::string> allow_write;  // raw values of --allow-write / allow-write
  ResolveMethod method = ResolveMethod::kAuto;
};

class FileRoots {
 public:
  struct Root {
    std::string dir;  // absolute, normalised
    bool is_default;  // DATA_DIR/in or DATA_DIR/out
  };

  // Validates the settings (ParseAllowedRoots) and refuses a root inside the
  // data dir's state/ or queue/ (never usable). Does no I/O except resolving
  // a relative data dir against the working directory and, for kAuto /
  // kOpenat2, probing the kernel.
  static Result<FileRoots> Make(const FileRootsOptions& options);

  // Creates DATA_DIR/in and DATA_DIR/out (0750) when missing. Call at start,
  // after the data dir exists.
  Status EnsureDefaultRoots() const;

  // Start-up warnings for the log: roots that do not exist, roots that cover
  // the data dir (its own files stay out of reach all the same).
  std::vector<std::string> CheckRoots() const;

  // "pipelines may read below /d/in, /var/log and write below /d/out
  // (openat2 RESOLVE_BENEATH)" -- one line for the start-up log.
  std::string Describe() const;

  // Where `path` from a pipeline spec points, lexically (no I/O): the
  // absolute normalised path. Fails for rules 1-3 and for the data dir's own
  // names (rule 5, by name). Use it to validate a spec early; the Open
  // functions check everything again on the real file system.
  Result<std::string> Resolve(std::string_view path, FileAccess access) const;

  // Opens an existing regular file for reading (O_RDONLY | O_CLOEXEC).
  Result<OwnedFd> OpenForRead(std::string_view path) const;

  // Opens a regular file for appending (O_WRONLY | O_APPEND | O_CLOEXEC),
  // creating it with `mode` (minus the umask) if missing, and creating
  // missing parent directories (0755) below its root.
  Result<OwnedFd> OpenForAppend(std::string_view path, mode_t mode = 0644) const;

  // What `path` names now, through the read rules: for a tail that follows
  // rotation (compare st_dev/st_ino with the open file's fstat, then
  // OpenForRead again) and truncation (st_size). kNotFound while it is
  // missing (rotated away, not yet re-created).
  Result<struct stat> StatForRead(std::string_view path) const;

  // For an output's size rotation ("out.log" -> "out.log.1"): renames a
  // regular file within one directory below a writable root (both names
  // through the write rules; a rename across directories is refused). An
  // existing `to` is replaced. Symlinks are renamed, never followed.
  Status Rename(std::string_view from, std::string_view to) const;

  // Removes a regular file below a writable root (the oldest rotated
  // generation). A symlink is not followed (and not removed: refused).
  Status Remove(std::string_view path) const;

  const std::string& data_dir() const { return data_dir_; }
  const std::vector<Root>& read_roots() const { return read_roots_; }
  const std::vector<Root>& write_roots() const { return write_roots_; }
  // kOpenat2 or kWalk: what this instance uses.
  ResolveMethod method() const { return method_; }

 private:
  struct Target {
    std::string display;  // the absolute path, for messages
    const Root* root;
    std::string rel;  // below root->dir; "" is the root itself
  };
  FileRoots() = default;
  Result<Target> Locate(std::string_view path, FileAccess access) const;
  Result<OwnedFd> OpenRoot(const Target& t, FileAccess access) const;
  Result<OwnedFd> ResolveBeneath(int root_fd, const std::string& rel, const Target& t,
                                 FileAccess access) const;
  // O_PATH descriptor of an existing regular file, all rules checked.
  Result<OwnedFd> OpenChecked(const Target& t, FileAccess access) const;
  Status CheckNotNodeFile(int fd, const struct stat& st, const Target& t, FileAccess access) const;
  // The directory that holds the target, below its root; `create` makes
  // missing directories (each in a checked directory).
  Result<OwnedFd> OpenParent(int root_fd, const Target& t, bool create) const;
  struct Placed {
    Target target;
    OwnedFd parent;
    std::string base;
  };
  // Target, parent and last name of a write path, its place checked.
  Result<Placed> PlaceForChange(std::string_view path) const;

  std::string data_dir_;
  std::vector<Root> read_roots_;
  std::vector<Root> write_roots_;
  ResolveMethod method_ = ResolveMethod::kWalk;
};

}  // namespace cairn::edge
