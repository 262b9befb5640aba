#include "cairn/edge/bootstrap_token.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cairn::edge {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class BootstrapTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cairn-token-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string WriteToken(const std::string& text, mode_t mode) {
    std::string path = (dir_ / "token").string();
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
  fs::path dir_;
};

TEST_F(BootstrapTokenTest, PrefersTheFileOverTheEnvironmentAndTheCommandLine) {
  TokenInputs in;
  in.file = WriteToken("cairn1.fromfile\n", 0600);
  in.env = "cairn1.fromenv";
  in.argv = "cairn1.fromargv";
  auto t = ChooseBootstrapToken(in);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->token, "cairn1.fromfile");
  EXPECT_THAT(t->source, HasSubstr("--bootstrap-token-file"));
  ASSERT_EQ(t->warnings.size(), 2u);
  EXPECT_THAT(t->warnings[0], HasSubstr("can be read by every user"));
  EXPECT_THAT(t->warnings[1], HasSubstr("ignoring the bootstrap token on the command line"));
}

TEST_F(BootstrapTokenTest, PrefersTheEnvironmentOverTheCommandLine) {
  TokenInputs in;
  in.env = "cairn1.fromenv";
  in.argv = "cairn1.fromargv";
  in.config = "cairn1.fromargv";
  auto t = ChooseBootstrapToken(in);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->token, "cairn1.fromenv");
  EXPECT_EQ(t->source, "CAIRN_EDGE_BOOTSTRAP_TOKEN");
}

TEST_F(BootstrapTokenTest, AcceptsATokenOnTheCommandLineWithAWarning) {
  TokenInputs in;
  in.argv = "cairn1.fromargv";
  in.config = "cairn1.fromargv";
  auto t = ChooseBootstrapToken(in);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->token, "cairn1.fromargv");
  ASSERT_EQ(t->warnings.size(), 1u);
  EXPECT_THAT(t->warnings[0], HasSubstr("ps"));
  EXPECT_THAT(t->warnings[0], HasSubstr("CAIRN_EDGE_BOOTSTRAP_TOKEN"));
}

TEST_F(BootstrapTokenTest, TakesTheConfigFileTokenSilently) {
  TokenInputs in;
  in.config = "cairn1.fromconfig";
  auto t = ChooseBootstrapToken(in);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->token, "cairn1.fromconfig");
  EXPECT_THAT(t->warnings, IsEmpty());
}

TEST_F(BootstrapTokenTest, NoTokenAtAllIsEmptyNotAnError) {
  auto t = ChooseBootstrapToken(TokenInputs{});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->token, "");
}

TEST_F(BootstrapTokenTest, WarnsWhenTheTokenFileIsReadableByOthers) {
  TokenInputs in;
  in.file = WriteToken("cairn1.x", 0644);
  auto t = ChooseBootstrapToken(in);
  ASSERT_TRUE(t.ok());
  EXPECT_THAT(t->warnings, ElementsAre(HasSubstr("mode 0644")));
}

TEST_F(BootstrapTokenTest, RefusesAnEmptyOrMissingTokenFile) {
  TokenInputs in;
  in.file = WriteToken(" \n", 0600);
  auto empty = ChooseBootstrapToken(in);
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.error().message, HasSubstr("is empty"));
  in.file = (dir_ / "missing").string();
  EXPECT_FALSE(ChooseBootstrapToken(in).ok());
}

TEST(TokenOnCommandLine, FindsEveryFormOfTheFlags) {
  EXPECT_EQ(TokenOnCommandLine({"--token", "a"}), "a");
  EXPECT_EQ(TokenOnCommandLine({"--token=b"}), "b");
  EXPECT_EQ(TokenOnCommandLine({"-bootstrap-token", "c"}), "c");
  EXPECT_EQ(TokenOnCommandLine({"--data-dir", "/x", "--bootstrap-token=d"}), "d");
  EXPECT_EQ(TokenOnCommandLine({"--bootstrap-token-file", "/f"}), "");
  EXPECT_EQ(TokenOnCommandLine({"--", "--token", "e"}), "");
}

}  // namespace
}  // namespace cairn::edge
