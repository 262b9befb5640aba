#include "cairn/edge/data_dir_lock.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "cairn/common/files.h"

namespace cairn::edge {
namespace {

namespace fs = std::filesystem;

class DataDirLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-lock-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/data";
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string root_;
  std::string dir_;
};

TEST_F(DataDirLockTest, CreatesTheDataDirAndRecordsThePid) {
  auto lock = AcquireDataDirLock(dir_, 4242);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  EXPECT_EQ(lock->path(), dir_ + "/lock");
  struct stat st {};
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(*ReadFile(dir_ + "/lock"), "4242\n");
}

TEST_F(DataDirLockTest, ASecondHolderIsRefusedWithTheFirstOnesPid) {
  auto first = AcquireDataDirLock(dir_, 4242);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = AcquireDataDirLock(dir_, 5353);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(second.error().message.find("data dir " + dir_ + " is in use by another cairn-edge (pid 4242)"),
            std::string::npos)
      << second.error().message;
  // The refused attempt leaves the holder's pid in place.
  EXPECT_EQ(*ReadFile(dir_ + "/lock"), "4242\n");
}

TEST_F(DataDirLockTest, IsFreeAgainOnceTheHolderIsGone) {
  { auto first = AcquireDataDirLock(dir_, 1); ASSERT_TRUE(first.ok()); }
  auto again = AcquireDataDirLock(dir_, 2);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*ReadFile(dir_ + "/lock"), "2\n");
}

TEST_F(DataDirLockTest, AMovedLockKeepsHoldingAndReleasesOnce) {
  auto first = AcquireDataDirLock(dir_, 1);
  ASSERT_TRUE(first.ok());
  DataDirLock moved = std::move(*first);
  EXPECT_FALSE(AcquireDataDirLock(dir_, 2).ok());
  { DataDirLock gone = std::move(moved); }
  EXPECT_TRUE(AcquireDataDirLock(dir_, 3).ok());
}

TEST_F(DataDirLockTest, AnotherProcessIsRefusedAndNamesThisOnesPid) {
  auto mine = AcquireDataDirLock(dir_);
  ASSERT_TRUE(mine.ok()) << mine.error().message;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    auto theirs = AcquireDataDirLock(dir_);
    std::string msg = theirs.ok() ? "acquired" : theirs.error().message;
    (void)!::write(fds[1], msg.data(), msg.size());
    ::_exit(theirs.ok() ? 0 : 3);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) msg.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3) << msg;
  EXPECT_NE(msg.find("(pid " + std::to_string(::getpid()) + ")"), std::string::npos) << msg;
}

TEST_F(DataDirLockTest, AKilledHolderLeavesNoStaleLock) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    auto held = AcquireDataDirLock(dir_);
    (void)!::write(fds[1], held.ok() ? "y" : "n", 1);
    ::pause();  // until killed
    ::_exit(0);
  }
  ::close(fds[1]);
  char c = 0;
  ASSERT_EQ(::read(fds[0], &c, 1), 1);
  ::close(fds[0]);
  ASSERT_EQ(c, 'y');
  auto while_held = AcquireDataDirLock(dir_);
  ASSERT_FALSE(while_held.ok());
  EXPECT_NE(while_held.error().message.find("(pid " + std::to_string(child) + ")"), std::string::npos);
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  auto after = AcquireDataDirLock(dir_);
  EXPECT_TRUE(after.ok()) << after.error().message;
}

TEST_F(DataDirLockTest, TheLockIsNotInheritedByExec) {
  auto mine = AcquireDataDirLock(dir_);
  ASSERT_TRUE(mine.ok());
  // A command started by the node (an exec input) must not see the lock's
  // descriptor: list the child's open descriptors after exec.
  std::string out_file = root_ + "/fds";
  std::string cmd = "ls -l /proc/self/fd/ > " + out_file + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto listing = ReadFile(out_file);
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->find(dir_ + "/lock"), std::string::npos) << *listing;
}

// --- IdentityRequestNotice -------------------------------------------------

ExistingIdentity Existing() {
  return ExistingIdentity{"/var/lib/cairn-edge", "demo", "edge-1", {{"site", "north"}}};
}

TEST(IdentityRequestNotice, SaysNothingWhenNothingWasAsked) {
  EXPECT_FALSE(IdentityRequestNotice(Existing(), RequestedIdentity{}).has_value());
}

TEST(IdentityRequestNotice, NotesAnUnneededTokenWithoutWarning) {
  auto n = IdentityRequestNotice(Existing(), RequestedIdentity{true, "", {}});
  ASSERT_TRUE(n.has_value());
  EXPECT_FALSE(n->warning);
  EXPECT_NE(n->message.find("already holds node \"edge-1\" of workspace \"demo\""), std::string::npos) << n->message;
  EXPECT_NE(n->message.find("bootstrap token was not needed"), std::string::npos) << n->message;
}

TEST(IdentityRequestNotice, AgreesWhenNameAndLabelsMatch) {
  auto n = IdentityRequestNotice(Existing(), RequestedIdentity{true, "edge-1", {{"site", "north"}}});
  ASSERT_TRUE(n.has_value());
  EXPECT_FALSE(n->warning);
}

TEST(IdentityRequestNotice, WarnsNamingBothWhenTheNameDiffers) {
  auto n = IdentityRequestNotice(Existing(), RequestedIdentity{true, "edge-2", {}});
  ASSERT_TRUE(n.has_value());
  EXPECT_TRUE(n->warning);
  EXPECT_NE(n->message.find("\"edge-1\""), std::string::npos) << n->message;
  EXPECT_NE(n->message.find("--name \"edge-2\""), std::string::npos) << n->message;
  EXPECT_NE(n->message.find("ignoring the bootstrap token"), std::string::npos) << n->message;
}

TEST(IdentityRequestNotice, WarnsAboutLabelsTheIdentityDoesNotHave) {
  auto n = IdentityRequestNotice(Existing(), RequestedIdentity{false, "", {{"site", "south"}, {"tier", "a"}}});
  ASSERT_TRUE(n.has_value());
  EXPECT_TRUE(n->warning);
  EXPECT_NE(n->message.find("--label site=south,tier=a"), std::string::npos) << n->message;
  EXPECT_NE(n->message.find("labels site=north"), std::string::npos) << n->message;
  EXPECT_EQ(n->message.find("bootstrap token"), std::string::npos) << n->message;
}

}  // namespace
}  // namespace cairn::edge
