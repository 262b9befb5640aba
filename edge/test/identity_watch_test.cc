#include "cairn/edge/identity_watch.h"

#include <memory>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_mqtt_client.h"
#include "test_util.h"

namespace cairn::edge {
namespace {

using cairn::testing::FakeBroker;
using cairn::testing::FakeMqttClient;
using ::testing::Contains;
using ::testing::HasSubstr;
using testutil::FakeClock;
using Kind = ConnectFailure::Kind;

constexpr int64_t kIssued = 1'700'000'000'000;
constexpr int64_t kDay = 86'400'000;

ConnectFailure Refused(int code = 0x87) { return {Kind::kRefused, code, "CONNACK reason"}; }
ConnectFailure Down() { return {Kind::kUnreachable, 0, "connection refused"}; }
ConnectFailure Tls() { return {Kind::kTls, 0, "TLS: handshake failure"}; }
ConnectFailure Timeout() { return {Kind::kTimeout, 0, "no CONNACK"}; }

std::string Joined(const IdentityVerdict& v) {
  std::string out;
  for (const auto& l : v.lines) out += l + "\n";
  return out;
}

// A node client wired to the watch as main() wires it.
class IdentityWatchTest : public ::testing::Test {
 protected:
  IdentityWatchTest() : clock_(kIssued + kDay), client_(broker_, "node:ws:n1", "node:ws:n1") {
    id_.data_dir = "/var/lib/cairn-edge";
    id_.workspace = "ws";
    id_.node = "n1";
    cert_.common_name = "node:ws:n1";
    cert_.serial_hex = "1A2B";
    cert_.not_before_ms = kIssued;
    cert_.not_after_ms = kIssued + 365 * kDay;
    watch_ = std::make_unique<IdentityWatch>(id_, cert_, clock_);
    client_.SetConnectFailureHandler([this](const ConnectFailure& f) { watch_->OnConnectFailure(f); });
    client_.SetConnectionHandler([this](bool up) {
      if (up) watch_->OnConnected();
    });
  }

  std::shared_ptr<FakeBroker> broker_ = std::make_shared<FakeBroker>();
  FakeClock clock_;
  FakeMqttClient client_;
  Identity id_;
  CertificateInfo cert_;
  std::unique_ptr<IdentityWatch> watch_;
};

TEST_F(IdentityWatchTest, GivesUpAfterThreeRefusalsInARow) {
  client_.ReportConnectFailure(Refused());
  client_.ReportConnectFailure(Refused());
  EXPECT_FALSE(watch_->verdict());
  EXPECT_EQ(watch_->refusals_in_a_row(), 2);
  client_.ReportConnectFailure(Refused());
  auto v = watch_->verdict();
  ASSERT_TRUE(v);
  EXPECT_EQ(v->kind, IdentityVerdict::Kind::kRevoked);
}

TEST_F(IdentityWatchTest, CountsRefusalsOfTheFirstConnectToo) {
  for (int i = 0; i < 3; ++i) {
    client_.FailNextConnect(Refused());
    EXPECT_FALSE(client_.Connect().ok());
  }
  EXPECT_TRUE(watch_->verdict());
}

TEST_F(IdentityWatchTest, ALinkThatIsDownATlsFailureOrATimeoutNeitherCountsNorBreaksTheRow) {
  for (int i = 0; i < 20; ++i) {
    client_.ReportConnectFailure(Down());
    client_.ReportConnectFailure(Tls());
    client_.ReportConnectFailure(Timeout());
  }
  EXPECT_FALSE(watch_->verdict());
  EXPECT_EQ(watch_->refusals_in_a_row(), 0);
  client_.ReportConnectFailure(Refused());
  client_.ReportConnectFailure(Down());
  client_.ReportConnectFailure(Refused());
  client_.ReportConnectFailure(Timeout());
  EXPECT_FALSE(watch_->verdict());
  client_.ReportConnectFailure(Refused());
  EXPECT_TRUE(watch_->verdict());
}

TEST_F(IdentityWatchTest, AConnectionInBetweenStartsTheRowAgain) {
  client_.ReportConnectFailure(Refused());
  client_.ReportConnectFailure(Refused());
  client_.SetConnected(true);
  client_.SetConnected(false);
  client_.ReportConnectFailure(Refused());
  client_.ReportConnectFailure(Refused());
  EXPECT_FALSE(watch_->verdict());
  EXPECT_EQ(watch_->refusals_in_a_row(), 2);
}

TEST_F(IdentityWatchTest, OnlyNotAuthorizedAndBadCredentialsCountAsRefusals) {
  for (int code : {0x80, 0x88, 0x89, 0x8a, 0x9f}) {
    for (int i = 0; i < 3; ++i) client_.ReportConnectFailure(Refused(code));
  }
  EXPECT_FALSE(watch_->verdict());
  for (int i = 0; i < 3; ++i) client_.ReportConnectFailure(Refused(0x86));
  EXPECT_TRUE(watch_->verdict());
}

TEST_F(IdentityWatchTest, TheRevokedVerdictSaysWhatHappenedAndWhatTheOwnerCanDo) {
  clock_.Set(kIssued + 2 * kDay);
  for (int i = 0; i < 3; ++i) client_.ReportConnectFailure(Refused());
  std::string text = Joined(*watch_->verdict());
  EXPECT_THAT(text, HasSubstr("refused this node's certificate 3 times in a row since 2023-11-16"));
  EXPECT_THAT(text, HasSubstr("CONNACK 0x87 not authorized"));
  EXPECT_THAT(text, HasSubstr("node:ws:n1"));
  EXPECT_THAT(text, HasSubstr("revoked"));
  EXPECT_THAT(text, HasSubstr("exiting with code 78"));
  EXPECT_THAT(text, HasSubstr("cairnctl token create -w ws"));
  EXPECT_THAT(text, HasSubstr("mv /var/lib/cairn-edge /var/lib/cairn-edge.old"));
  EXPECT_THAT(text, HasSubstr("cairn-edge bootstrap --data-dir /var/lib/cairn-edge --bootstrap-token-file token.txt"));
}

TEST_F(IdentityWatchTest, AnyFailedAttemptAfterExpiryEndsTheNode) {
  clock_.Set(cert_.not_after_ms - 1);
  client_.ReportConnectFailure(Down());
  EXPECT_FALSE(watch_->verdict());
  clock_.Set(cert_.not_after_ms);
  client_.ReportConnectFailure(Tls());
  auto v = watch_->verdict();
  ASSERT_TRUE(v);
  EXPECT_EQ(v->kind, IdentityVerdict::Kind::kExpired);
  std::string text = Joined(*v);
  EXPECT_THAT(text, HasSubstr("expired on 2024-11-13 22:13:20 UTC"));
  EXPECT_THAT(text, HasSubstr("cairn-edge bootstrap"));
}

TEST_F(IdentityWatchTest, ARenewedCertificateMovesTheExpiry) {
  CertificateInfo renewed = cert_;
  renewed.not_after_ms = cert_.not_after_ms + 365 * kDay;
  watch_->SetCertificate(renewed);
  clock_.Set(cert_.not_after_ms + kDay);
  client_.ReportConnectFailure(Down());
  EXPECT_FALSE(watch_->verdict());
}

}  // namespace
}  // namespace cairn::edge
