#include "cairn/ctl/command_line.h"

#include <gtest/gtest.h>

namespace cairn::ctl {
namespace {

TEST(CtlCommandLine, FlagsMayStandAnywhereAndTakeValuesEitherWay) {
  auto c = ParseCommandLine({"-w", "demo", "token", "create", "--uses=3", "--label", "a=b", "--label", "c=d",
                             "--broker-url", "ssl://b:1", "-o", "json"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->words, (std::vector<std::string>{"token", "create"}));
  EXPECT_EQ(c->workspace, "demo");
  EXPECT_EQ(c->output, "json");
  EXPECT_EQ(c->connection.broker_url, "ssl://b:1");
  EXPECT_EQ(c->Flag("uses"), "3");
  EXPECT_EQ(c->All("label"), (std::vector<std::string>{"a=b", "c=d"}));
}

TEST(CtlCommandLine, ConnectionFlagsLandInTheFlagLayer) {
  auto c = ParseCommandLine({"whoami", "--ca-file", "ca.pem", "--user", "alice", "--password-file=pw"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->connection.ca_file, "ca.pem");
  EXPECT_EQ(c->connection.user, "alice");
  EXPECT_EQ(c->connection.password_file, "pw");
  EXPECT_TRUE(c->connection.password.empty());
}

TEST(CtlCommandLine, StarWorkspaceIsKeptAsGiven) {
  auto c = ParseCommandLine({"role", "grant", "bob", "admin", "-w", "*"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->workspace, "*");
  EXPECT_EQ(c->words, (std::vector<std::string>{"role", "grant", "bob", "admin"}));
}

TEST(CtlCommandLine, DashFFollowsAfterNodeLogsAndNamesAFileElsewhere) {
  auto logs = ParseCommandLine({"node", "logs", "n1", "-f"});
  ASSERT_TRUE(logs.ok()) << logs.error().message;
  EXPECT_TRUE(logs->Bool("follow"));
  EXPECT_EQ(logs->words, (std::vector<std::string>{"node", "logs", "n1"}));
  auto apply = ParseCommandLine({"pipeline", "apply", "-f", "p.yaml"});
  ASSERT_TRUE(apply.ok());
  EXPECT_FALSE(apply->Bool("follow"));
  EXPECT_EQ(apply->words, (std::vector<std::string>{"pipeline", "apply"}));
}

TEST(CtlCommandLine, BoolFlagsTakeNoValue) {
  auto c = ParseCommandLine({"user", "passwd", "--password-stdin", "alice"});
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->Bool("password-stdin"));
  EXPECT_EQ(c->words.back(), "alice");
  EXPECT_FALSE(ParseCommandLine({"user", "passwd", "--password-stdin=yes"}).ok());
}

TEST(CtlCommandLine, RefusesUnknownFlagsMissingValuesAndBadOutput) {
  auto unknown = ParseCommandLine({"whoami", "--password", "secret"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("unknown flag \"--password\""), std::string::npos);
  auto missing = ParseCommandLine({"token", "create", "--ttl"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "--ttl needs a value");
  EXPECT_FALSE(ParseCommandLine({"-o", "yaml", "whoami"}).ok());
  EXPECT_FALSE(ParseCommandLine({"--timeout", "soon", "whoami"}).ok());
}

TEST(CtlCommandLine, DoubleDashEndsFlags) {
  auto c = ParseCommandLine({"node", "label", "--", "n1", "--weird"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->words, (std::vector<std::string>{"node", "label", "n1", "--weird"}));
}

TEST(CtlCommandLine, HelpIsAFlagOrTheFirstWord) {
  EXPECT_TRUE(ParseCommandLine({"user", "--help"})->help);
  EXPECT_TRUE(ParseCommandLine({"-h"})->help);
  EXPECT_TRUE(ParseCommandLine({"help"})->help);
  EXPECT_FALSE(ParseCommandLine({"user", "create", "help"})->help);
}

TEST(CtlCommandLine, UsesAreWholeNumbersWithZeroForUnlimited) {
  EXPECT_EQ(*ParseUses("0"), 0u);
  EXPECT_EQ(*ParseUses("1"), 1u);
  EXPECT_EQ(*ParseUses("1000000"), 1000000u);
  EXPECT_FALSE(ParseUses("1000001").ok());
  EXPECT_FALSE(ParseUses("-1").ok());
  EXPECT_FALSE(ParseUses("2x").ok());
  EXPECT_FALSE(ParseUses("").ok());
}

TEST(CtlCommandLine, TtlZeroMeansNeverAndOtherwiseAtLeastOneSecond) {
  EXPECT_EQ(*ParseTtlSeconds("0"), 0u);
  EXPECT_EQ(*ParseTtlSeconds("24h"), 86400u);
  EXPECT_EQ(*ParseTtlSeconds("90"), 90u);
  EXPECT_EQ(*ParseTtlSeconds("1500ms"), 1u);
  EXPECT_FALSE(ParseTtlSeconds("500ms").ok());
  EXPECT_FALSE(ParseTtlSeconds("forever").ok());
}

TEST(CtlCommandLine, CertificateSerialsAreNormalisedToUpperHexWithoutLeadingZeros) {
  struct Case {
    const char* in;
    const char* out;
  } cases[] = {
      {"0A1B", "A1B"}, {"serial=0A1B", "A1B"}, {"0a:1b", "A1B"}, {"a1b", "A1B"},
      {"0x00ff", "FF"}, {"7F3C2D", "7F3C2D"},
  };
  for (const auto& c : cases) {
    auto r = ParseCertificateSerial(c.in);
    ASSERT_TRUE(r.ok()) << c.in;
    EXPECT_EQ(*r, c.out) << c.in;
  }
  for (const char* bad : {"", "serial=", "000", "12G4", "12 34", "-1"}) EXPECT_FALSE(ParseCertificateSerial(bad).ok()) << bad;
}

}  // namespace
}  // namespace cairn::ctl
