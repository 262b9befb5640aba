#include "cairn/edge/system_stats.h"

#include <sys/statvfs.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cairn::edge {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// user nice system idle iowait irq softirq steal guest guest_nice
constexpr char kStat1[] =
    "cpu  100 20 30 800 50 0 0 0 7 3\n"
    "cpu0 50 10 15 400 25 0 0 0 7 3\n"
    "intr 12345 0 0\n"
    "ctxt 999\n";
// +200 in total (user +100, system +50, idle +40, iowait +10): 75% busy.
constexpr char kStat2[] =
    "cpu  200 20 80 840 60 0 0 0 9 3\n"
    "cpu0 100 10 40 420 30 0 0 0 9 3\n";
// +100 in total, all idle.
constexpr char kStat3[] = "cpu  200 20 80 940 60 0 0 0 9 3\n";

constexpr char kMeminfo[] =
    "MemTotal:        8000000 kB\n"
    "MemFree:         1000000 kB\n"
    "MemAvailable:    6000000 kB\n"
    "Buffers:          200000 kB\n"
    "Cached:          3000000 kB\n";

class SystemStatsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cairn-proc-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(root_ / name, std::ios::trunc) << text;
  }

  fs::path root_;
};

TEST_F(SystemStatsTest, FirstSampleReportsZeroCpuAndExactMemory) {
  Write("stat", kStat1);
  Write("meminfo", kMeminfo);
  SystemStats stats(root_.string());
  auto s = stats.Sample(root_.string());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->cpu_percent, 0.0);
  EXPECT_EQ(s->memory_total_bytes, 8000000ull * 1024);
  EXPECT_EQ(s->memory_used_bytes, 2000000ull * 1024);
}

TEST_F(SystemStatsTest, CpuPercentComesFromDeltasBetweenSamples) {
  Write("stat", kStat1);
  Write("meminfo", kMeminfo);
  SystemStats stats(root_.string());
  ASSERT_TRUE(stats.Sample(root_.string()).ok());

  Write("stat", kStat2);
  auto busy = stats.Sample(root_.string());
  ASSERT_TRUE(busy.ok()) << busy.error().message;
  EXPECT_DOUBLE_EQ(busy->cpu_percent, 75.0);

  Write("stat", kStat3);
  auto idle = stats.Sample(root_.string());
  ASSERT_TRUE(idle.ok());
  EXPECT_DOUBLE_EQ(idle->cpu_percent, 0.0);

  // No time passed between samples: no division by zero.
  auto same = stats.Sample(root_.string());
  ASSERT_TRUE(same.ok());
  EXPECT_DOUBLE_EQ(same->cpu_percent, 0.0);
}

TEST_F(SystemStatsTest, MemoryFallsBackWithoutMemAvailable) {
  Write("stat", kStat1);
  Write("meminfo",
        "MemTotal:        8000000 kB\n"
        "MemFree:         1000000 kB\n"
        "Buffers:          200000 kB\n"
        "Cached:          3000000 kB\n");
  SystemStats stats(root_.string());
  auto s = stats.Sample(root_.string());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->memory_used_bytes, 3800000ull * 1024);
}

TEST_F(SystemStatsTest, DiskFiguresComeFromStatvfs) {
  Write("stat", kStat1);
  Write("meminfo", kMeminfo);
  SystemStats stats(root_.string());
  auto s = stats.Sample(root_.string());
  ASSERT_TRUE(s.ok()) << s.error().message;

  struct statvfs fs {};
  ASSERT_EQ(::statvfs(root_.c_str(), &fs), 0);
  EXPECT_EQ(s->disk_total_bytes, static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize);
  EXPECT_GT(s->disk_total_bytes, 0u);
  EXPECT_LE(s->disk_used_bytes, s->disk_total_bytes);
}

TEST_F(SystemStatsTest, MissingProcFilesAreErrors) {
  SystemStats stats((root_ / "nowhere").string());
  auto s = stats.Sample(root_.string());
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, HasSubstr("stat"));

  Write("stat", kStat1);
  SystemStats no_meminfo(root_.string());
  s = no_meminfo.Sample(root_.string());
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, HasSubstr("meminfo"));
}

TEST_F(SystemStatsTest, MalformedProcFilesAreErrors) {
  Write("meminfo", kMeminfo);
  Write("stat", "intr 1 2 3\n");
  SystemStats stats(root_.string());
  auto s = stats.Sample(root_.string());
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, HasSubstr("cpu"));

  Write("stat", kStat1);
  Write("meminfo", "MemFree: 12 kB\n");
  s = stats.Sample(root_.string());
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, HasSubstr("MemTotal"));
}

TEST_F(SystemStatsTest, UnknownDiskPathIsAnError) {
  Write("stat", kStat1);
  Write("meminfo", kMeminfo);
  SystemStats stats(root_.string());
  auto s = stats.Sample((root_ / "no-such-dir").string());
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, HasSubstr("no-such-dir"));
}

TEST(SystemStatsReal, SamplesOfTheRealProcArePlausible) {
  SystemStats stats;
  auto first = stats.Sample("/");
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->cpu_percent, 0.0);
  EXPECT_GT(first->memory_total_bytes, 16ull * 1024 * 1024);
  EXPECT_GT(first->memory_used_bytes, 0u);
  EXPECT_LE(first->memory_used_bytes, first->memory_total_bytes);
  EXPECT_GT(first->disk_total_bytes, 0u);
  EXPECT_LE(first->disk_used_bytes, first->disk_total_bytes);

  auto second = stats.Sample("/");
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_GE(second->cpu_percent, 0.0);
  EXPECT_LE(second->cpu_percent, 100.0);
}

}  // namespace
}  // namespace cairn::edge
