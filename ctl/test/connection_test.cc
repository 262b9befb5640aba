#include "cairn/ctl/connection.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "cairn/common/files.h"
#include "cairn/ctl/ctl.h"

namespace cairn::ctl {
namespace {

namespace fs = std::filesystem;

// A private temp directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "cairnctl-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

mode_t ModeOf(const std::string& path) {
  struct stat st{};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

GetEnv EnvOf(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

LoginConfig Stored() { return {"ssl://broker:8883", "/etc/cairn/ca.pem", "alice", "alice-pw"}; }

TEST(CtlConnection, FlagsBeatEnvironmentBeatTheLoginConfig) {
  ConnectionSettings flags{"ssl://flag:1", "flag-ca", "flaguser", "flag-pw-file", ""};
  ConnectionSettings env{"ssl://env:1", "env-ca", "envuser", "env-pw-file", "env-pw"};
  auto c = ResolveConnection(flags, env, Stored());
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->broker_url, "ssl://flag:1");
  EXPECT_EQ(c->ca_file, "flag-ca");
  EXPECT_EQ(c->user, "flaguser");
  EXPECT_EQ(c->password_file, "flag-pw-file");
  EXPECT_EQ(c->password_source, Source::kFlag);

  c = ResolveConnection({}, env, Stored());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->broker_url, "ssl://env:1");
  EXPECT_EQ(c->user, "envuser");
  EXPECT_EQ(c->password_file, "env-pw-file");
  EXPECT_EQ(c->password_source, Source::kEnvironment);

  env.password_file.clear();
  c = ResolveConnection({}, env, Stored());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->password, "env-pw");

  c = ResolveConnection({}, {}, Stored());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->broker_url, "ssl://broker:8883");
  EXPECT_EQ(c->ca_file, "/etc/cairn/ca.pem");
  EXPECT_EQ(c->Principal(), "user:alice");
  EXPECT_EQ(c->password, "alice-pw");
  EXPECT_TRUE(c->password_file.empty());
  EXPECT_EQ(c->password_source, Source::kLoginConfig);
  EXPECT_EQ(c->user_source, Source::kLoginConfig);
}

TEST(CtlConnection, AFlagOrVariableOverridesOneSettingAndKeepsTheRest) {
  ConnectionSettings env;
  env.ca_file = "/tmp/other-ca.pem";
  auto c = ResolveConnection({}, env, Stored());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->ca_file, "/tmp/other-ca.pem");
  EXPECT_EQ(c->user, "alice");
  EXPECT_EQ(c->password, "alice-pw");
}

TEST(CtlConnection, TheStoredLoginAppliesOnlyToItsOwnBroker) {
  ConnectionSettings flags;
  flags.broker_url = "ssl://elsewhere:8883";
  auto c = ResolveConnection(flags, {}, Stored());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("no user"), std::string::npos) << c.error().message;
  flags.user = "alice";  // same name, other broker: still not the stored password
  c = ResolveConnection(flags, {}, Stored());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("no password for user:alice"), std::string::npos) << c.error().message;
}

TEST(CtlConnection, TheStoredPasswordIsNeverSentForAnotherUser) {
  ConnectionSettings env;
  env.user = "bob";
  auto c = ResolveConnection({}, env, Stored());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("no password for user:bob"), std::string::npos);
  env.user = "user:alice";  // the MQTT form of the stored user is the same user
  c = ResolveConnection({}, env, Stored());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->user, "alice");
  EXPECT_EQ(c->password, "alice-pw");
}

TEST(CtlConnection, NothingConfiguredSaysHowToLogIn) {
  auto c = ResolveConnection({}, {}, std::nullopt);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("not logged in"), std::string::npos);
  EXPECT_NE(c.error().message.find("cairnctl login"), std::string::npos);
  EXPECT_NE(c.error().message.find("CAIRN_BROKER_URL"), std::string::npos);
}

TEST(CtlConnection, EnvironmentVariablesAreRead) {
  auto s = SettingsFromEnvironment(EnvOf({{"CAIRN_BROKER_URL", "ssl://b:1"},
                                          {"CAIRN_CA_FILE", "ca"},
                                          {"CAIRN_USER", "u"},
                                          {"CAIRN_PASSWORD_FILE", "pf"},
                                          {"CAIRN_PASSWORD", "p"}}));
  EXPECT_EQ(s.broker_url, "ssl://b:1");
  EXPECT_EQ(s.ca_file, "ca");
  EXPECT_EQ(s.user, "u");
  EXPECT_EQ(s.password_file, "pf");
  EXPECT_EQ(s.password, "p");
}

TEST(CtlConnection, ConfigPathFollowsXdgThenHome) {
  EXPECT_EQ(*LoginConfigPath(EnvOf({{"XDG_CONFIG_HOME", "/x/cfg"}, {"HOME", "/home/a"}})), "/x/cfg/cairn/config");
  // A relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
  EXPECT_EQ(*LoginConfigPath(EnvOf({{"XDG_CONFIG_HOME", "rel"}, {"HOME", "/home/a"}})),
            "/home/a/.config/cairn/config");
  EXPECT_EQ(*LoginConfigPath(EnvOf({{"HOME", "/home/a"}})), "/home/a/.config/cairn/config");
}

TEST(CtlConnection, PasswordsReadFromFilesAndStdinLoseTrailingNewlines) {
  TempDir dir;
  std::string f = dir.path() + "/pw";
  ASSERT_TRUE(WriteFileAtomic(f, "s3cret\r\n", 0600).ok());
  ResolvedConnection c;
  c.password_file = f;
  EXPECT_EQ(*ReadPassword(c), "s3cret");
  c.password_file.clear();
  c.password = "inline";
  EXPECT_EQ(*ReadPassword(c), "inline");
  EXPECT_EQ(*PasswordFromText("typed\n", "--password-stdin"), "typed");
  EXPECT_FALSE(PasswordFromText("\n", "--password-stdin").ok());
  EXPECT_FALSE(PasswordFromText("two\nlines\n", "--password-stdin").ok());
}

TEST(CtlLoginConfig, IsWrittenAtomicallyWithMode0600InA0700Directory) {
  TempDir home;
  std::string path = home.path() + "/.config/cairn/config";
  ASSERT_TRUE(SaveLoginConfig(path, Stored()).ok());
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_EQ(ModeOf(home.path() + "/.config/cairn"), 0700u);
  int entries = 0;
  for (const auto& e : fs::directory_iterator(home.path() + "/.config/cairn")) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "config");  // no temp file left behind
  }
  EXPECT_EQ(entries, 1);
}

TEST(CtlLoginConfig, NarrowsAnExistingDirectoryThatOthersCouldRead) {
  TempDir home;
  std::string dir = home.path() + "/cairn";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  ASSERT_TRUE(SaveLoginConfig(dir + "/config", Stored()).ok());
  EXPECT_EQ(ModeOf(dir), 0700u);
}

TEST(CtlLoginConfig, RoundTripsAnyPassword) {
  TempDir home;
  std::string path = home.path() + "/cairn/config";
  LoginConfig c = Stored();
  for (std::string pw : {"plain", " lead: \"quoted\" # not a comment \\ back", "'single'", "!tag", "ünï\tcode",
                         "- dash", "{a: b}", "null", "~"}) {
    c.password = pw;
    ASSERT_TRUE(SaveLoginConfig(path, c).ok());
    auto loaded = LoadLoginConfig(path);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    ASSERT_TRUE(loaded->has_value());
    EXPECT_EQ((*loaded)->password, pw);
    EXPECT_EQ((*loaded)->broker_url, c.broker_url);
    EXPECT_EQ((*loaded)->ca_file, c.ca_file);
    EXPECT_EQ((*loaded)->user, c.user);
  }
}

TEST(CtlLoginConfig, AMissingFileIsNoLogin) {
  TempDir home;
  auto loaded = LoadLoginConfig(home.path() + "/nothing/config");
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->has_value());
}

TEST(CtlLoginConfig, RefusesAPasswordThatOthersMayRead) {
  TempDir home;
  std::string path = home.path() + "/config";
  ASSERT_TRUE(WriteFileAtomic(path, LoginConfigText(Stored()), 0644).ok());
  auto loaded = LoadLoginConfig(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().message.find("mode 0644"), std::string::npos) << loaded.error().message;
  EXPECT_NE(loaded.error().message.find("chmod 600"), std::string::npos);
  // Without a password in it the file is not a secret.
  LoginConfig no_secret{"ssl://b:1", "/ca", "", ""};
  ASSERT_TRUE(WriteFileAtomic(path, LoginConfigText(no_secret), 0644).ok());
  EXPECT_TRUE(LoadLoginConfig(path).ok());
}

TEST(CtlLoginConfig, RejectsUnknownKeys) {
  TempDir home;
  std::string path = home.path() + "/config";
  ASSERT_TRUE(WriteFileAtomic(path, "broker-url: ssl://b:1\npasword: x\n", 0600).ok());
  auto loaded = LoadLoginConfig(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().message.find("pasword"), std::string::npos);
}

// cairnctl end to end without a broker: HOME points at a temp directory.
class CtlMainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("HOME", home_.path().c_str(), 1);
    for (const char* v : {"XDG_CONFIG_HOME", "CAIRN_BROKER_URL", "CAIRN_CA_FILE", "CAIRN_USER", "CAIRN_PASSWORD_FILE",
                          "CAIRN_PASSWORD", "CAIRN_WORKSPACE"}) {
      ::unsetenv(v);
    }
  }
  int Run(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    out_.str("");
    err_.str("");
    std::istringstream in(stdin_text);
    return Main(args, in, out_, err_);
  }
  std::string ConfigPath() const { return home_.path() + "/.config/cairn/config"; }

  TempDir home_;
  std::ostringstream out_, err_;
};

TEST_F(CtlMainTest, WithNothingConfiguredACommandFailsSayingHowToLogIn) {
  EXPECT_EQ(Run({"whoami"}), 1);
  EXPECT_NE(err_.str().find("cairnctl login"), std::string::npos) << err_.str();
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CtlMainTest, UsageErrorsExitWithTwo) {
  EXPECT_EQ(Run({}), 2);
  EXPECT_EQ(Run({"whoami", "--nope"}), 2);
  EXPECT_NE(err_.str().find("unknown flag"), std::string::npos);
  EXPECT_EQ(Run({"user"}), 2);
  EXPECT_NE(err_.str().find("user create NAME"), std::string::npos);  // the group's help
}

TEST_F(CtlMainTest, HelpCoversTheNewCommands) {
  EXPECT_EQ(Run({"--help"}), 0);
  for (const char* cmd : {"login", "logout", "whoami", "user create", "role grant", "credential create",
                          "cert revoke"}) {
    EXPECT_NE(out_.str().find(cmd), std::string::npos) << cmd;
  }
  for (const char* group : {"login", "whoami", "user", "role", "credential", "cert", "token"}) {
    EXPECT_EQ(Run({group, "--help"}), 0) << group;
    EXPECT_NE(out_.str().find(std::string("usage: cairnctl ") + group), std::string::npos) << group;
  }
}

TEST_F(CtlMainTest, LoginWithoutATerminalNeedsAPasswordSourceAndStoresNothing) {
  EXPECT_EQ(Run({"login", "--broker-url", "ssl://127.0.0.1:1", "--user", "alice"}), 2);
  EXPECT_NE(err_.str().find("--password-stdin"), std::string::npos) << err_.str();
  EXPECT_FALSE(FileExists(ConfigPath()));
}

TEST_F(CtlMainTest, LoginThatCannotBeVerifiedStoresNothing) {
  EXPECT_EQ(Run({"login", "--broker-url", "tcp://127.0.0.1:1", "--user", "alice", "--password-stdin"}, "pw\n"), 1);
  EXPECT_NE(err_.str().find("nothing stored"), std::string::npos) << err_.str();
  EXPECT_FALSE(FileExists(ConfigPath()));
}

TEST_F(CtlMainTest, LogoutRemovesTheCredentialAndKeepsTheBroker) {
  ASSERT_TRUE(SaveLoginConfig(ConfigPath(), Stored()).ok());
  EXPECT_EQ(Run({"logout"}), 0);
  EXPECT_NE(out_.str().find("logged out user:alice"), std::string::npos) << out_.str();
  auto loaded = LoadLoginConfig(ConfigPath());
  ASSERT_TRUE(loaded.ok());
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->broker_url, "ssl://broker:8883");
  EXPECT_EQ((*loaded)->ca_file, "/etc/cairn/ca.pem");
  EXPECT_FALSE((*loaded)->HasCredential());
  EXPECT_EQ(ModeOf(ConfigPath()), 0600u);
  EXPECT_EQ(Run({"logout"}), 0);
  EXPECT_NE(out_.str().find("not logged in"), std::string::npos);
}

TEST_F(CtlMainTest, TheStoredLoginIsUsedWhenNothingElseIsGiven) {
  // The stored broker is unreachable: the error proves it was the one tried.
  LoginConfig c{"tcp://127.0.0.1:1", "", "alice", "pw"};
  ASSERT_TRUE(SaveLoginConfig(ConfigPath(), c).ok());
  EXPECT_EQ(Run({"whoami"}), 1);
  EXPECT_NE(err_.str().find("tcp://127.0.0.1:1"), std::string::npos) << err_.str();
}

}  // namespace
}  // namespace cairn::ctl
