// FileRoots on a real temporary tree: what a pipeline may open, what it may
// not, and that a refusal leaves no trace. Every case runs with openat2 and
// with the component walk used on kernels without it.
#include "cairn/edge/file_roots.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace cairn::edge {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void Put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

std::string ReadFd(int fd) {
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

void WriteFd(int fd, const std::string& text) {
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
}

// The tree every test starts from:
//   data/            the node's data dir: identity files, bd_seq, state/, queue/
//     in/app.log  in/sub/deep.log  in/dir/  in/fifo
//     in/inside_link -> app.log            (stays inside: allowed)
//     in/out_link -> ../../outside/secret.txt
//     in/abs_link -> <abs>/outside/secret.txt
//     in/key_link -> ../node.key
//     out/existing.log  out/inside_link -> existing.log
//     out/out_link -> ../../outside/secret.txt  out/dangling -> nothere.log
//   outside/secret.txt
//   logs/app.log  logs/up_link -> ../outside/secret.txt
//   logs/data_link -> ../data  logs/key_hardlink (hard link of data/node.key)
class FileRootsTest : public ::testing::TestWithParam<ResolveMethod> {
 protected:
  void SetUp() override {
    if (GetParam() == ResolveMethod::kOpenat2 && !KernelHasOpenat2()) GTEST_SKIP() << "no openat2 in this kernel";
    char tmpl[] = "/tmp/cairn_file_roots_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    data_ = base_ / "data";
    for (const char* f : {"node.key", "node.crt", "ca.crt", "identity.yaml", "bd_seq"}) Put(data_ / f, "NODE-OWN");
    Put(data_ / "state/cache.pb", "CACHE");
    Put(data_ / "queue/seg-1", "QUEUE");
    Put(data_ / "in/app.log", "in-app\n");
    Put(data_ / "in/sub/deep.log", "deep\n");
    fs::create_directories(data_ / "in/dir");
    ASSERT_EQ(::mkfifo((data_ / "in/fifo").c_str(), 0600), 0);
    fs::create_symlink("app.log", data_ / "in/inside_link");
    fs::create_symlink("../../outside/secret.txt", data_ / "in/out_link");
    fs::create_symlink(base_ / "outside/secret.txt", data_ / "in/abs_link");
    fs::create_symlink("../node.key", data_ / "in/key_link");
    Put(data_ / "out/existing.log", "");
    fs::create_symlink("existing.log", data_ / "out/inside_link");
    fs::create_symlink("../../outside/secret.txt", data_ / "out/out_link");
    fs::create_symlink("nothere.log", data_ / "out/dangling");
    Put(base_ / "outside/secret.txt", "SECRET");
    Put(base_ / "logs/app.log", "logs-app\n");
    fs::create_symlink("../outside/secret.txt", base_ / "logs/up_link");
    fs::create_symlink("../data", base_ / "logs/data_link");
    fs::create_hard_link(data_ / "node.key", base_ / "logs/key_hardlink");
  }
  void TearDown() override {
    if (!base_.empty()) fs::remove_all(base_);
  }

  FileRoots Make(std::vector<std::string> read = {}, std::vector<std::string> write = {}) {
    FileRootsOptions o;
    o.data_dir = data_.string();
    o.allow_read = std::move(read);
    o.allow_write = std::move(write);
    o.method = GetParam();
    auto r = FileRoots::Make(o);
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return std::move(r).value();
  }
  bool Walk() const { return GetParam() == ResolveMethod::kWalk; }
  std::string P(const std::string& rel) const { return (base_ / rel).string(); }

  fs::path base_;
  fs::path data_;
};

INSTANTIATE_TEST_SUITE_P(Methods, FileRootsTest, ::testing::Values(ResolveMethod::kOpenat2, ResolveMethod::kWalk),
                         [](const auto& info) {
                           return info.param == ResolveMethod::kOpenat2 ? std::string("Openat2")
                                                                        : std::string("Walk");
                         });

struct ReadCase {
  const char* name;
  std::vector<std::string> allow_read;  // "{base}" is replaced by the temp dir
  std::string path;                     // same
  ErrorCode want;                       // kOk: opens and reads `content`
  std::string content_or_message;       // content, or a part of the message
  std::optional<ErrorCode> want_walk = std::nullopt;  // when the walk differs
  std::string walk_message = "";
};

std::string Expand(std::string s, const fs::path& base) {
  const std::string key = "{base}";
  for (size_t at; (at = s.find(key)) != std::string::npos;) s.replace(at, key.size(), base.string());
  return s;
}

TEST_P(FileRootsTest, ReadsOnlyWhatTheRulesAllow) {
  const std::vector<ReadCase> cases = {
      {"a relative path is below DATA_DIR/in", {}, "app.log", ErrorCode::kOk, "in-app\n"},
      {"a relative path may have directories", {}, "sub/deep.log", ErrorCode::kOk, "deep\n"},
      {"a leading in/ names DATA_DIR/in itself", {}, "in/app.log", ErrorCode::kOk, "in-app\n"},
      {"an absolute path in the default root", {}, "{base}/data/in/app.log", ErrorCode::kOk, "in-app\n"},
      {"an allowed root", {"{base}/logs"}, "{base}/logs/app.log", ErrorCode::kOk, "logs-app\n"},
      {"a root of / reaches ordinary files", {"/"}, "{base}/outside/secret.txt", ErrorCode::kOk, "SECRET"},
      {"dot-dot is refused", {}, "../node.key", ErrorCode::kPermissionDenied, "may not contain \"..\""},
      {"dot-dot is refused even when it stays inside", {}, "sub/../app.log", ErrorCode::kPermissionDenied, "\"..\""},
      {"the node key is outside the default roots", {}, "{base}/data/node.key", ErrorCode::kPermissionDenied,
       "outside the directories pipelines may read on this node"},
      {"an absolute path outside the roots names the setting", {}, "{base}/outside/secret.txt",
       ErrorCode::kPermissionDenied, "--allow-read DIR"},
      {"a symlink inside a root is followed", {}, "inside_link", ErrorCode::kOk, "in-app\n",
       ErrorCode::kPermissionDenied, "is a symbolic link"},
      {"a symlink out of the root is refused", {}, "out_link", ErrorCode::kPermissionDenied, "leads out of",
       ErrorCode::kPermissionDenied, "is a symbolic link"},
      {"an absolute symlink is refused", {}, "abs_link", ErrorCode::kPermissionDenied, "leads out of",
       ErrorCode::kPermissionDenied, "is a symbolic link"},
      {"an absolute symlink is followed below the root /", {"/"}, "{base}/data/in/abs_link", ErrorCode::kOk, "SECRET",
       ErrorCode::kPermissionDenied, "is a symbolic link"},
      {"a symlink to the node key is refused", {}, "key_link", ErrorCode::kPermissionDenied, "leads out of",
       ErrorCode::kPermissionDenied, "is a symbolic link"},
      {"a symlink up out of an allowed root is refused", {"{base}/logs"}, "{base}/logs/up_link",
       ErrorCode::kPermissionDenied, "leads out of {base}/logs", ErrorCode::kPermissionDenied, "symbolic link"},
      {"the node key with the data dir as a root", {"{base}/data"}, "{base}/data/node.key",
       ErrorCode::kPermissionDenied, "node's own files"},
      {"identity.yaml with / as a root", {"/"}, "{base}/data/identity.yaml", ErrorCode::kPermissionDenied,
       "node's own files"},
      {"the cache with / as a root", {"/"}, "{base}/data/state/cache.pb", ErrorCode::kPermissionDenied,
       "node's own files"},
      {"the queue with the data dir as a root", {"{base}/data"}, "{base}/data/queue/seg-1",
       ErrorCode::kPermissionDenied, "node's own files"},
      {"the cache through a symlink to the data dir with / as a root", {"/"},
       "{base}/logs/data_link/state/cache.pb", ErrorCode::kPermissionDenied, "node's own files",
       ErrorCode::kPermissionDenied, "symbolic link"},
      {"the key through a symlink to the data dir with / as a root", {"/"}, "{base}/logs/data_link/node.key",
       ErrorCode::kPermissionDenied, "node's own files", ErrorCode::kPermissionDenied, "symbolic link"},
      {"a hard link to the node key is recognised", {"{base}/logs"}, "{base}/logs/key_hardlink",
       ErrorCode::kPermissionDenied, "hard link"},
      {"a /proc magic link is refused with / as a root", {"/"}, "/proc/self/root{base}/outside/secret.txt",
       ErrorCode::kPermissionDenied, "magic link", ErrorCode::kPermissionDenied, "symbolic link"},
      {"the node's environment in /proc with / as a root", {"/"}, "/proc/self/environ",
       ErrorCode::kPermissionDenied, "is on /proc", ErrorCode::kPermissionDenied, "symbolic link"},
      {"another process's file in /proc", {"/proc"}, "/proc/1/environ", ErrorCode::kPermissionDenied, "is on /proc"},
      {"a file in /sys", {"/sys"}, "/sys/kernel/mm/transparent_hugepage/enabled", ErrorCode::kPermissionDenied,
       "is on sysfs"},
      {"a root that does not exist", {"{base}/nope"}, "{base}/nope/x.log", ErrorCode::kNotFound,
       "readable root {base}/nope (--allow-read) does not exist"},
      {"a file that does not exist yet", {}, "later.log", ErrorCode::kNotFound, "does not exist"},
      {"a directory is not a file", {}, "dir", ErrorCode::kPermissionDenied, "not a regular file"},
      {"a FIFO is not a file", {}, "fifo", ErrorCode::kPermissionDenied, "not a regular file"},
      {"a root itself is not a file", {}, "{base}/data/in", ErrorCode::kInvalidArgument, "is a directory"},
      {"an empty path", {}, "", ErrorCode::kInvalidArgument, "empty"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<std::string> read;
    for (const auto& r : c.allow_read) read.push_back(Expand(r, base_));
    FileRoots roots = Make(read);
    const ErrorCode want = Walk() && c.want_walk ? *c.want_walk : c.want;
    const std::string expect = Expand(Walk() && c.want_walk ? c.walk_message : c.content_or_message, base_);
    auto fd = roots.OpenForRead(Expand(c.path, base_));
    if (want == ErrorCode::kOk) {
      if (!fd.ok()) {
        ADD_FAILURE() << fd.error().ToString();
        continue;
      }
      EXPECT_EQ(ReadFd(fd->get()), expect);
      auto st = roots.StatForRead(Expand(c.path, base_));
      struct stat fst {};
      EXPECT_TRUE(st.ok() && ::fstat(fd->get(), &fst) == 0 && st->st_ino == fst.st_ino) << c.path;
    } else {
      if (fd.ok()) {
        ADD_FAILURE() << "opened " << c.path;
        continue;
      }
      EXPECT_EQ(ErrorCodeName(fd.error().code), std::string(ErrorCodeName(want))) << fd.error().message;
      EXPECT_NE(fd.error().message.find(expect), std::string::npos) << fd.error().message;
      auto st = roots.StatForRead(Expand(c.path, base_));
      EXPECT_FALSE(st.ok());
    }
  }
}

TEST_P(FileRootsTest, RefusalsNameThePathTheRuleAndTheSetting) {
  FileRoots roots = Make();
  auto outside = roots.OpenForRead(P("outside/secret.txt"));
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(outside.error().message,
            "\"" + P("outside/secret.txt") + "\" is outside the directories pipelines may read on this node (" +
                P("data/in") + "); the node's owner can add one with --allow-read DIR (or allow-read in the node's "
                               "config file)");
  FileRoots everything = Make({"/"}, {"/"});
  auto key = everything.OpenForAppend(P("data/node.key"));
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().message,
            "\"" + P("data/node.key") + "\" is one of the node's own files (identity and files directly in the data dir " +
                P("data") + ", the cache state/, the queue queue/): no pipeline may write it, whatever --allow-write says");
}

struct WriteCase {
  const char* name;
  std::vector<std::string> allow_write;
  std::string path;
  ErrorCode want;
  std::string file_or_message;  // kOk: the file that receives the line (relative to base)
  std::optional<ErrorCode> want_walk = std::nullopt;
  std::string walk_message = "";
};

TEST_P(FileRootsTest, WritesOnlyWhereTheRulesAllowAndRefusalsLeaveNoTrace) {
  const std::vector<WriteCase> cases = {
      {"a relative path is below DATA_DIR/out", {}, "result.log", ErrorCode::kOk, "data/out/result.log"},
      {"a leading out/ names DATA_DIR/out itself", {}, "out/existing.log", ErrorCode::kOk, "data/out/existing.log"},
      {"missing directories are created below the root", {}, "new/dir/r.log", ErrorCode::kOk,
       "data/out/new/dir/r.log"},
      {"an existing file is appended to", {}, "existing.log", ErrorCode::kOk, "data/out/existing.log"},
      {"a symlink inside the root is followed", {}, "inside_link", ErrorCode::kOk, "data/out/existing.log",
       ErrorCode::kPermissionDenied, "is a symbolic link"},
      {"an allowed root", {"{base}/logs"}, "{base}/logs/new.log", ErrorCode::kOk, "logs/new.log"},
      {"outside the write roots", {}, "{base}/data/in/x.log", ErrorCode::kPermissionDenied,
       "outside the directories pipelines may write on this node"},
      {"outside the write roots names the setting", {}, "{base}/outside/x.log", ErrorCode::kPermissionDenied,
       "--allow-write DIR"},
      {"dot-dot", {}, "../state/evil", ErrorCode::kPermissionDenied, "\"..\""},
      {"a symlink out of the root", {}, "out_link", ErrorCode::kPermissionDenied, "leads out of",
       ErrorCode::kPermissionDenied, "is a symbolic link"},
      {"a dangling symlink", {}, "dangling", ErrorCode::kPermissionDenied, "does not create files through symlinks",
       ErrorCode::kPermissionDenied, "is a symbolic link"},
      {"the node key with / as a root", {"/"}, "{base}/data/node.key", ErrorCode::kPermissionDenied,
       "node's own files"},
      {"a new file directly in the data dir", {"{base}/data"}, "{base}/data/lock", ErrorCode::kPermissionDenied,
       "node's own files"},
      {"a new file in the cache", {"/"}, "{base}/data/state/evil", ErrorCode::kPermissionDenied,
       "node's own files"},
      {"the queue through a symlink to the data dir", {"/"}, "{base}/logs/data_link/queue/evil",
       ErrorCode::kPermissionDenied, "node's own files", ErrorCode::kPermissionDenied, "symbolic link"},
      {"a new file directly in the data dir through a symlink", {"/"}, "{base}/logs/data_link/evil",
       ErrorCode::kPermissionDenied, "node's own files", ErrorCode::kPermissionDenied, "symbolic link"},
      {"a hard link to the node key", {"{base}/logs"}, "{base}/logs/key_hardlink", ErrorCode::kPermissionDenied,
       "hard link"},
      {"a file in /proc with / as a root", {"/"}, "/proc/self/comm", ErrorCode::kPermissionDenied, "is on /proc",
       ErrorCode::kPermissionDenied, "symbolic link"},
      {"a new directory in /sys", {"/sys"}, "/sys/cairn-file-roots-test/x", ErrorCode::kPermissionDenied,
       "is on sysfs"},
      {"a root that does not exist", {"{base}/nope"}, "{base}/nope/x.log", ErrorCode::kNotFound,
       "writable root {base}/nope (--allow-write) does not exist"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<std::string> write;
    for (const auto& r : c.allow_write) write.push_back(Expand(r, base_));
    FileRoots roots = Make({}, write);
    const ErrorCode want = Walk() && c.want_walk ? *c.want_walk : c.want;
    const std::string expect = Expand(Walk() && c.want_walk ? c.walk_message : c.file_or_message, base_);
    auto fd = roots.OpenForAppend(Expand(c.path, base_));
    if (want == ErrorCode::kOk) {
      if (!fd.ok()) {
        ADD_FAILURE() << fd.error().ToString();
        continue;
      }
      const std::string before = Slurp(base_ / expect);
      WriteFd(fd->get(), "line\n");
      EXPECT_EQ(Slurp(base_ / expect), before + "line\n");
    } else {
      if (fd.ok()) {
        ADD_FAILURE() << "opened " << c.path;
        continue;
      }
      EXPECT_EQ(ErrorCodeName(fd.error().code), std::string(ErrorCodeName(want))) << fd.error().message;
      EXPECT_NE(fd.error().message.find(expect), std::string::npos) << fd.error().message;
    }
  }
  // No refusal wrote or created anything.
  EXPECT_EQ(Slurp(base_ / "outside/secret.txt"), "SECRET");
  EXPECT_EQ(Slurp(data_ / "node.key"), "NODE-OWN");
  EXPECT_FALSE(fs::exists(data_ / "lock"));
  EXPECT_FALSE(fs::exists(data_ / "evil"));
  EXPECT_FALSE(fs::exists(data_ / "state/evil"));
  EXPECT_FALSE(fs::exists(data_ / "queue/evil"));
  EXPECT_FALSE(fs::exists(data_ / "out/nothere.log"));
  EXPECT_FALSE(fs::exists(base_ / "outside/x.log"));
  EXPECT_FALSE(fs::exists(data_ / "in/x.log"));
  EXPECT_FALSE(fs::exists("/sys/cairn-file-roots-test"));
}

TEST_P(FileRootsTest, RotationRenamesAndRemovesOnlyWithinAWritableDirectory) {
  FileRoots roots = Make({}, {"/"});
  Put(data_ / "out/r.log", "gen0");
  Put(data_ / "out/r.log.2", "old");
  ASSERT_TRUE(roots.Rename("r.log", "r.log.1").ok());
  EXPECT_EQ(Slurp(data_ / "out/r.log.1"), "gen0");
  EXPECT_FALSE(fs::exists(data_ / "out/r.log"));
  ASSERT_TRUE(roots.Remove("r.log.2").ok());
  EXPECT_FALSE(fs::exists(data_ / "out/r.log.2"));

  fs::create_directories(data_ / "out/new");
  auto across = roots.Rename("r.log.1", "new/r.log.1");
  ASSERT_FALSE(across.ok());
  EXPECT_NE(across.error().message.find("only within one directory"), std::string::npos) << across.error().message;
  auto key = roots.Rename(P("data/node.key"), P("data/node.key.old"));
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.error().message.find("node's own files"), std::string::npos);
  auto over_key = roots.Rename("r.log.1", P("data/node.key"));
  EXPECT_FALSE(over_key.ok());
  auto cache = roots.Remove(P("data/state/cache.pb"));
  EXPECT_FALSE(cache.ok());
  auto linked = roots.Remove(P("logs/data_link/bd_seq"));
  EXPECT_FALSE(linked.ok());
  auto symlink = roots.Remove("out_link");
  EXPECT_FALSE(symlink.ok());
  auto outside = Make().Remove(P("outside/secret.txt"));
  EXPECT_EQ(outside.error().code, ErrorCode::kPermissionDenied);
  for (const char* f : {"node.key", "bd_seq", "state/cache.pb"}) EXPECT_EQ(Slurp(data_ / f).empty(), false) << f;
  EXPECT_FALSE(fs::exists(data_ / "node.key.old"));
  EXPECT_EQ(Slurp(data_ / "node.key"), "NODE-OWN");
  EXPECT_TRUE(fs::is_symlink(data_ / "out/out_link"));
  EXPECT_EQ(Slurp(base_ / "outside/secret.txt"), "SECRET");
}

TEST_P(FileRootsTest, TheQueueNameIsReservedBeforeTheQueueExists) {
  fs::remove_all(data_ / "queue");
  FileRoots roots = Make({}, {"/"});
  auto direct = roots.OpenForAppend(P("data/queue/seg-1"));
  ASSERT_FALSE(direct.ok());
  EXPECT_NE(direct.error().message.find("node's own files"), std::string::npos) << direct.error().message;
  if (!Walk()) {
    // Through another name for the data dir, only the check on disk sees it.
    auto linked = roots.OpenForAppend(P("logs/data_link/queue/seg-1"));
    ASSERT_FALSE(linked.ok());
    EXPECT_NE(linked.error().message.find("node's own files"), std::string::npos) << linked.error().message;
  }
  EXPECT_FALSE(fs::exists(data_ / "queue"));
}

// Unix permissions still apply below a root, and the refusal says whose
// they are. As root (who reads anything) the check runs in a child that
// became "nobody".
TEST_P(FileRootsTest, AFileTheNodesUserMayNotReadIsRefusedNamingTheUser) {
  Put(base_ / "logs/private.log", "private");
  ASSERT_EQ(::chmod((base_ / "logs/private.log").c_str(), 0600), 0);
  for (const auto& d : {base_, base_ / "logs"}) ASSERT_EQ(::chmod(d.c_str(), 0755), 0);
  FileRoots roots = Make({P("logs")});
  // The readable app.log is the control: the same user opens it.
  auto attempt = [&]() -> std::string {
    auto control = roots.OpenForRead(P("logs/app.log"));
    if (!control.ok()) return "control refused: " + control.error().message;
    auto fd = roots.OpenForRead(P("logs/private.log"));
    return fd.ok() ? "opened" : std::string(ErrorCodeName(fd.error().code)) + " " + fd.error().message;
  };
  std::string got;
  if (::geteuid() != 0) {
    ASSERT_EQ(::chmod((base_ / "logs/private.log").c_str(), 0000), 0);
    got = attempt();
  } else {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(p[0]);
      std::string r = ::setgid(65534) == 0 && ::setuid(65534) == 0 ? attempt() : "setuid failed";
      (void)!::write(p[1], r.data(), r.size());
      ::_exit(0);
    }
    ::close(p[1]);
    got = ReadFd(p[0]);
    ::close(p[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  EXPECT_EQ(got.rfind("permission_denied \"" + P("logs/private.log") + "\": the node's user ", 0), 0u) << got;
  EXPECT_NE(got.find(" may not open it (Permission denied); give that user access to it"), std::string::npos) << got;
}

TEST_P(FileRootsTest, StatFollowsRotationAndNoticesAMissingFile) {
  FileRoots roots = Make();
  auto fd = roots.OpenForRead("app.log");
  ASSERT_TRUE(fd.ok()) << fd.error().ToString();
  struct stat open_st {};
  ASSERT_EQ(::fstat(fd->get(), &open_st), 0);
  fs::rename(data_ / "in/app.log", data_ / "in/app.log.1");
  auto gone = roots.StatForRead("app.log");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ErrorCode::kNotFound);
  Put(data_ / "in/app.log", "rotated\n");
  auto now = roots.StatForRead("app.log");
  ASSERT_TRUE(now.ok()) << now.error().ToString();
  EXPECT_NE(now->st_ino, open_st.st_ino);
  EXPECT_EQ(now->st_size, 8);
  auto reopened = roots.OpenForRead("app.log");
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(ReadFd(reopened->get()), "rotated\n");
}

// A directory on the way is swapped again and again between a real directory
// inside the root and a symlink that leads outside it. A check-then-open
// (realpath, compare, open) loses this race now and then; openat2 (and the
// O_NOFOLLOW walk) decides on the very inodes it opens, so no open may ever
// yield the outside file.
TEST_P(FileRootsTest, NoOpenEverEscapesWhileTheTreeIsSwappedUnderIt) {
  Put(base_ / "logs/d/f", "inside");
  Put(base_ / "outside/f", "outside");
  fs::create_symlink("../outside", base_ / "logs/d_alt");
  FileRoots roots = Make({P("logs")});
  std::atomic<bool> stop{false};
  std::atomic<int> swaps{0};
  std::thread flipper([&] {
    const std::string a = P("logs/d"), b = P("logs/d_alt");
    while (!stop) {
      if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) == 0) ++swaps;
    }
  });
  int inside = 0, escaped = 0, refused = 0;
  // At least 3000 opens, and on until both outcomes were seen (the swaps
  // really happened under the opens), with a cap so a failure cannot hang.
  for (int i = 0; i < 3000 || ((inside == 0 || refused == 0) && i < 300000); ++i) {
    auto fd = roots.OpenForRead(P("logs/d/f"));
    if (!fd.ok()) {
      ++refused;
      continue;
    }
    const std::string got = ReadFd(fd->get());
    if (got == "inside") ++inside;
    else ++escaped;
  }
  stop = true;
  flipper.join();
  EXPECT_EQ(escaped, 0);
  EXPECT_GT(inside, 0);
  EXPECT_GT(refused, 0);
  EXPECT_GT(swaps.load(), 0);
}

TEST_P(FileRootsTest, ResolvePlacesRelativePathsBelowTheDefaultRoots) {
  FileRoots roots = Make();
  auto r = roots.Resolve("a/b.log", FileAccess::kRead);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, P("data/in/a/b.log"));
  auto w = roots.Resolve("./c.log", FileAccess::kWrite);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(*w, P("data/out/c.log"));
  EXPECT_EQ(*roots.Resolve("out/app-errors.log", FileAccess::kWrite), P("data/out/app-errors.log"));
  EXPECT_EQ(*roots.Resolve("out/x.log", FileAccess::kRead), P("data/in/out/x.log"));
  EXPECT_EQ(roots.Resolve("/etc/passwd", FileAccess::kRead).error().code, ErrorCode::kPermissionDenied);
}

TEST_P(FileRootsTest, EnsureDefaultRootsCreatesInAndOut) {
  fs::remove_all(data_ / "in");
  fs::remove_all(data_ / "out");
  FileRoots roots = Make();
  ASSERT_TRUE(roots.EnsureDefaultRoots().ok());
  EXPECT_TRUE(fs::is_directory(data_ / "in"));
  EXPECT_TRUE(fs::is_directory(data_ / "out"));
}

TEST_P(FileRootsTest, CheckRootsWarnsAboutMissingRootsAndRootsOverTheDataDir) {
  FileRoots roots = Make({P("nope")}, {"/"});
  auto warnings = roots.CheckRoots();
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("readable root " + P("nope") + " (--allow-read) does not exist"), std::string::npos);
  EXPECT_NE(warnings[1].find("--allow-write / covers the data dir"), std::string::npos);
  EXPECT_NE(roots.Describe().find("read below " + P("data/in") + ", " + P("nope")), std::string::npos);
}

TEST(FileRootsMake, RefusesARootInsideTheNodesStateOrQueue) {
  FileRootsOptions o;
  o.data_dir = "/var/lib/cairn-edge";
  o.allow_read = {"/var/lib/cairn-edge/state/"};
  auto r = FileRoots::Make(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "--allow-read /var/lib/cairn-edge/state: is inside the node's cache (state/), which no pipeline may ever use");
  o.allow_read = {};
  o.allow_write = {"/var/lib/cairn-edge/queue"};
  EXPECT_FALSE(FileRoots::Make(o).ok());
}

TEST(FileRootsMake, DefaultsAreDataDirInAndOutAndSettingsAreAdded) {
  FileRootsOptions o;
  o.data_dir = "/var/lib/cairn-edge/";
  o.allow_read = {"/var/log/", "/var/lib/cairn-edge/in"};
  auto r = FileRoots::Make(o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(r->read_roots().size(), 2u);
  EXPECT_EQ(r->read_roots()[0].dir, "/var/lib/cairn-edge/in");
  EXPECT_TRUE(r->read_roots()[0].is_default);
  EXPECT_EQ(r->read_roots()[1].dir, "/var/log");
  ASSERT_EQ(r->write_roots().size(), 1u);
  EXPECT_EQ(r->write_roots()[0].dir, "/var/lib/cairn-edge/out");
}

TEST(FileRootsMake, ReportsWhichResolutionItUses) {
  FileRootsOptions o;
  o.data_dir = "/var/lib/cairn-edge";
  auto r = FileRoots::Make(o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->method(), KernelHasOpenat2() ? ResolveMethod::kOpenat2 : ResolveMethod::kWalk);
}

struct ParseCase {
  std::vector<std::string> values;
  std::vector<std::string> want;  // empty with an error
  std::string error = "";
};

TEST(ParseAllowedRoots, NormalisesAbsoluteDirectoriesAndRefusesTheRest) {
  const std::vector<ParseCase> cases = {
      {{"/var/log/"}, {"/var/log"}},
      {{"//var//log/./"}, {"/var/log"}},
      {{"/"}, {"/"}},
      {{"/a", "/a/", "/b"}, {"/a", "/b"}},
      {{}, {}},
      {{"var/log"}, {}, "--allow-read \"var/log\": must be an absolute directory (e.g. /var/log)"},
      {{""}, {}, "--allow-read \"\": a directory is required"},
      {{"/var/../etc"}, {}, "--allow-read \"/var/../etc\": may not contain \"..\"; give the directory itself"},
      {{"/a\nb"}, {}, "contains a control character"},
  };
  for (const auto& c : cases) {
    auto r = ParseAllowedRoots("allow-read", c.values);
    if (c.error.empty()) {
      ASSERT_TRUE(r.ok()) << r.error().ToString();
      EXPECT_EQ(*r, c.want);
    } else {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
      EXPECT_NE(r.error().message.find(c.error), std::string::npos) << r.error().message;
    }
  }
}

}  // namespace
}  // namespace cairn::edge
