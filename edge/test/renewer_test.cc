#include "cairn/edge/renewer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/common/files.h"
#include "cairn/common/metrics.h"
#include "cairn/common/tls.h"
#include "cairn/common/topics.h"
#include "cairn/v1/rpc.pb.h"
#include "fake_mqtt_client.h"
#include "test_util.h"

namespace cairn::edge {
namespace {

namespace fs = std::filesystem;
using cairn::testing::FakeBroker;
using cairn::testing::FakeMqttClient;
using ::testing::HasSubstr;
using testutil::FakeClock;
using Step = CertificateRenewer::Step;

constexpr char kPrincipal[] = "node:ws:n1";
constexpr int64_t kMinute = 60'000;

// A registry that signs renewal CSRs (or fails, as told) and records who
// called.
class FakeRegistry {
 public:
  FakeRegistry(std::shared_ptr<FakeBroker> broker, const tls::CertAuthority& ca)
      : client_(broker, "svc-registry", "svc:registry"), server_(client_, "registry", metrics_), ca_(ca) {
    server_.Handle<v1::RenewCertificateRequest, v1::RenewCertificateResponse>(
        "RenewCertificate",
        [this](const v1::RenewCertificateRequest& req, const CallContext& ctx)
            -> Result<v1::RenewCertificateResponse> {
          ++calls;
          caller = ctx.principal;
          if (fail) return Error::Unavailable("database is down");
          // The registry's rule: a node renews only its own certificate.
          auto asked = tls::CsrCommonName(req.csr_pem());
          if (!asked.ok() || *asked != ctx.principal) return Error::PermissionDenied("CSR CN is not the caller");
          auto cert = tls::SignClientCsr(ca_, req.csr_pem(), cn.empty() ? ctx.principal : cn, days);
          if (!cert.ok()) return cert.error();
          v1::RenewCertificateResponse resp;
          resp.set_certificate_pem(*cert);
          resp.set_ca_pem(ca_.cert_pem);
          return resp;
        });
    client_.SetMessageHandler([this](const MqttMessage& m) { server_.OnMessage(m); });
    (void)client_.Connect();
    (void)server_.Start();
  }

  std::atomic<int> calls{0};
  std::string caller;
  bool fail = false;
  std::string cn;  // CN to sign; empty: the caller's principal
  int days = 20;

 private:
  FakeMqttClient client_;
  Metrics metrics_;
  RpcServer server_;
  tls::CertAuthority ca_;
};

class RenewerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cairn-renewer-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    id_.data_dir = dir_.string();
    id_.workspace = "ws";
    id_.node = "n1";
    ca_ = *tls::CreateCa("test-ca", 60);
    ASSERT_TRUE(WriteFileAtomic(id_.ca_file(), ca_.cert_pem, 0600).ok());
    auto key = tls::GenerateKey();
    old_key_ = *key;
    old_cert_ = *tls::SignClientCsr(ca_, *tls::MakeCsr(*key, "n1"), kPrincipal, 3);
    ASSERT_TRUE(WriteFileAtomic(id_.key_file(), old_key_, 0600).ok());
    ASSERT_TRUE(WriteFileAtomic(id_.cert_file(), old_cert_, 0600).ok());
    info_ = *ReadCertificateInfo(old_cert_);

    registry_ = std::make_unique<FakeRegistry>(broker_, ca_);
    node_ = std::make_unique<FakeMqttClient>(broker_, kPrincipal, kPrincipal);
    rpc_ = std::make_unique<RpcClient>(*node_);
    node_->SetMessageHandler([this](const MqttMessage& m) { rpc_->OnMessage(m); });
    ASSERT_TRUE(node_->Connect().ok());
    clock_.Set(info_.not_before_ms);
    RenewOptions o;
    o.rpc_timeout = std::chrono::seconds(5);
    renewer_ = std::make_unique<CertificateRenewer>(id_, info_, *node_, *rpc_, clock_, o);
    renewer_->SetRenewedHandler([this](const CertificateInfo& c) { renewed_ = c; });
  }
  void TearDown() override {
    renewer_.reset();
    fs::remove_all(dir_);
  }
  std::string Read(const std::string& path) { return *ReadFile(path); }
  bool OldFilesInPlace() { return Read(id_.key_file()) == old_key_ && Read(id_.cert_file()) == old_cert_; }

  fs::path dir_;
  Identity id_;
  tls::CertAuthority ca_;
  std::string old_key_, old_cert_;
  CertificateInfo info_;
  std::shared_ptr<FakeBroker> broker_ = std::make_shared<FakeBroker>();
  std::unique_ptr<FakeRegistry> registry_;
  std::unique_ptr<FakeMqttClient> node_;
  std::unique_ptr<RpcClient> rpc_;
  FakeClock clock_;
  std::unique_ptr<CertificateRenewer> renewer_;
  std::optional<CertificateInfo> renewed_;
};

TEST_F(RenewerTest, DoesNothingBeforeTwoThirdsOfTheLife) {
  const int64_t life = info_.not_after_ms - info_.not_before_ms;
  EXPECT_EQ(renewer_->due_ms(), info_.not_before_ms + life * 67 / 100);
  clock_.Set(renewer_->due_ms() - 1);
  EXPECT_EQ(renewer_->Tick(), Step::kNotDue);
  EXPECT_EQ(registry_->calls, 0);
  EXPECT_TRUE(OldFilesInPlace());
}

TEST_F(RenewerTest, RenewsAtTwoThirdsStoresThePairAndReconnectsWithIt) {
  clock_.Set(renewer_->due_ms());
  ASSERT_EQ(renewer_->Tick(), Step::kRenewed);
  EXPECT_EQ(registry_->calls, 1);
  EXPECT_EQ(registry_->caller, kPrincipal);
  const std::string key = Read(id_.key_file());
  const std::string cert = Read(id_.cert_file());
  EXPECT_NE(key, old_key_);
  EXPECT_NE(cert, old_cert_);
  EXPECT_TRUE(CheckKeyMatchesCertificate(key, cert).ok());
  EXPECT_TRUE(tls::VerifyCert(ca_.cert_pem, cert).ok());
  struct stat st {};
  ::stat(id_.key_file().c_str(), &st);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(FileExists(id_.cert_file() + ".next"));
  EXPECT_EQ(node_->reconnects(), 1);
  ASSERT_TRUE(renewed_);
  EXPECT_EQ(renewed_->serial_hex, ReadCertificateInfo(cert)->serial_hex);
  EXPECT_NE(renewed_->serial_hex, info_.serial_hex);
  EXPECT_EQ(renewer_->current().serial_hex, renewed_->serial_hex);
  // The next renewal is due in two thirds of the new certificate's life.
  EXPECT_EQ(renewer_->due_ms(), RenewalDueMs(*renewed_));
  EXPECT_EQ(renewer_->Tick(), Step::kNotDue);
  EXPECT_EQ(registry_->calls, 1);
}

TEST_F(RenewerTest, UsesTheReplyPrefixOfItsPrincipalAndClientId) {
  clock_.Set(renewer_->due_ms());
  ASSERT_EQ(renewer_->Tick(), Step::kRenewed);
  bool found = false;
  for (const auto& m : broker_->Published()) {
    if (m.topic == topics::RpcRequest("registry", "RenewCertificate")) {
      found = true;
      EXPECT_EQ(m.response_topic.rfind(topics::ReplyPrefix(kPrincipal, kPrincipal) + "/", 0), 0u) << m.response_topic;
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(RenewerTest, RetriesWithBackOffAndKeepsTheOldFilesWhenTheCallFails) {
  registry_->fail = true;
  clock_.Set(renewer_->due_ms());
  EXPECT_EQ(renewer_->Tick(), Step::kFailed);
  EXPECT_TRUE(OldFilesInPlace());
  EXPECT_EQ(node_->reconnects(), 0);
  EXPECT_EQ(renewer_->Tick(), Step::kWaiting);
  clock_.Advance(std::chrono::milliseconds(kMinute - 1));
  EXPECT_EQ(renewer_->Tick(), Step::kWaiting);
  clock_.Advance(std::chrono::milliseconds(1));
  EXPECT_EQ(renewer_->Tick(), Step::kFailed);  // after 1 min
  clock_.Advance(std::chrono::milliseconds(2 * kMinute - 1));
  EXPECT_EQ(renewer_->Tick(), Step::kWaiting);
  clock_.Advance(std::chrono::milliseconds(1));
  EXPECT_EQ(renewer_->Tick(), Step::kFailed);  // after 2 min
  EXPECT_EQ(registry_->calls, 3);
  registry_->fail = false;
  clock_.Advance(std::chrono::milliseconds(4 * kMinute));
  EXPECT_EQ(renewer_->Tick(), Step::kRenewed);
  EXPECT_FALSE(OldFilesInPlace());
}

TEST_F(RenewerTest, BackOffStopsGrowingAtOneHour) {
  registry_->fail = true;
  clock_.Set(renewer_->due_ms());
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(renewer_->Tick(), Step::kFailed);
    clock_.Set(renewer_->next_attempt_ms());
  }
  const int64_t before = clock_.NowMs();
  ASSERT_EQ(renewer_->Tick(), Step::kFailed);
  EXPECT_EQ(renewer_->next_attempt_ms() - before, 60 * kMinute);
}

TEST_F(RenewerTest, WaitsForTheLinkWhenDisconnected) {
  node_->SetConnected(false);
  clock_.Set(renewer_->due_ms());
  EXPECT_EQ(renewer_->Tick(), Step::kWaiting);
  EXPECT_EQ(registry_->calls, 0);
  node_->SetConnected(true);
  EXPECT_EQ(renewer_->Tick(), Step::kRenewed);
}

TEST_F(RenewerTest, RefusesACertificateForAnotherPrincipal) {
  registry_->cn = "node:ws:other";
  clock_.Set(renewer_->due_ms());
  EXPECT_EQ(renewer_->Tick(), Step::kFailed);
  EXPECT_TRUE(OldFilesInPlace());
  EXPECT_FALSE(renewed_);
}

TEST_F(RenewerTest, RefusesACertificateThatExpiresEarlier) {
  registry_->days = 1;  // the current one has 3 days
  clock_.Set(renewer_->due_ms());
  EXPECT_EQ(renewer_->Tick(), Step::kFailed);
  EXPECT_TRUE(OldFilesInPlace());
}

TEST_F(RenewerTest, RefusesACertificateFromAnotherCa) {
  auto other = *tls::CreateCa("other-ca", 60);
  registry_ = std::make_unique<FakeRegistry>(broker_, other);
  clock_.Set(renewer_->due_ms());
  EXPECT_EQ(renewer_->Tick(), Step::kFailed);
  EXPECT_TRUE(OldFilesInPlace());
}

TEST_F(RenewerTest, RenewsAtOnceWithZeroPercentButNotInALoop) {
  RenewOptions o;
  o.renew_percent = 0;
  o.rpc_timeout = std::chrono::seconds(5);
  CertificateRenewer eager(id_, info_, *node_, *rpc_, clock_, o);
  EXPECT_EQ(eager.Tick(), Step::kRenewed);
  EXPECT_EQ(eager.Tick(), Step::kNotDue);
  clock_.Advance(std::chrono::milliseconds(kMinute));
  EXPECT_EQ(eager.Tick(), Step::kRenewed);
}

}  // namespace
}  // namespace cairn::edge
