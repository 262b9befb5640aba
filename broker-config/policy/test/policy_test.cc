#include "cairn/policy/broker_policy.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "cairn/policy/password.h"

namespace cairn::policy {
namespace {

// Distinct fake client pointers.
ClientHandle Client(int n) { return reinterpret_cast<ClientHandle>(static_cast<uintptr_t>(0x1000 + n)); }

std::shared_ptr<AccessSnapshot> Snapshot(const std::string& bob_hash = "", const std::string& cred_hash = "") {
  auto s = std::make_shared<AccessSnapshot>();
  s->users["admin"].password_hash = bob_hash;
  s->users["admin"].roles["*"] = Role::kAdmin;
  s->users["bob"].password_hash = bob_hash;
  s->users["bob"].roles["demo"] = Role::kViewer;
  s->users["nobody"].password_hash = bob_hash;  // no role anywhere
  AccessCredential c{"demo", "grafana", cred_hash, 0};
  s->credentials["cred:demo:grafana"] = c;
  return s;
}

struct TopicCase {
  const char* who;
  const char* client_id;
  Access access;
  const char* topic;
  bool retain;
  bool allowed;
};

TEST(TopicRules, AllowsExactlyThePermissionTable) {
  auto access = Snapshot();
  const std::vector<TopicCase> cases = {
      // node:demo:n1
      {"node:demo:n1", "node:demo:n1", Access::kWrite, "cairn/v1/ws/demo/nodes/n1/status", true, true},
      {"node:demo:n1", "node:demo:n1", Access::kWrite, "cairn/v1/ws/demo/nodes/n1/health", false, true},
      {"node:demo:n1", "node:demo:n1", Access::kWrite, "cairn/v1/ws/demo/nodes/n1/health", true, false},
      {"node:demo:n1", "node:demo:n1", Access::kWrite, "cairn/v1/ws/demo/nodes/n1/logs", false, true},
      {"node:demo:n1", "node:demo:n1", Access::kWrite, "cairn/v1/ws/demo/nodes/n2/health", false, false},
      {"node:demo:n1", "node:demo:n1", Access::kWrite, "cairn/v1/ws/demo/nodes/n1/desired", false, false},
      {"node:demo:n1", "node:demo:n1", Access::kWrite, "cairn/v1/ws/demo/data/temps", false, true},
      {"node:demo:n1", "node:demo:n1", Access::kWrite, "cairn/v1/ws/demo/data/temps", true, false},
      {"node:demo:n1", "node:demo:n1", Access::kWrite, "cairn/v1/ws/demo/data/temps/deep", false, false},
      {"node:demo:n1", "node:demo:n1", Access::kWrite, "cairn/v1/ws/demo/data/Bad_Name", false, false},
      {"node:demo:n1", "node:demo:n1", Access::kWrite, "cairn/v1/ws/other/data/temps", false, false},
      {"node:demo:n1", "node:demo:n1", Access::kWrite, "cairn/v1/rpc/registry/RenewCertificate", false, true},
      {"node:demo:n1", "node:demo:n1", Access::kWrite, "cairn/v1/rpc/registry/ListNodes", false, false},
      {"node:demo:n1", "node:demo:n1", Access::kWrite, "cairn/v1/ws/demo/events", false, false},
      {"node:demo:n1", "node:demo:n1", Access::kRead, "cairn/v1/ws/demo/nodes/n1/desired", false, true},
      {"node:demo:n1", "node:demo:n1", Access::kRead, "cairn/v1/ws/demo/nodes/n2/desired", false, false},
      {"node:demo:n1", "node:demo:n1", Access::kRead, "cairn/v1/ws/demo/nodes/n2/health", false, false},
      {"node:demo:n1", "node:demo:n1", Access::kRead, "cairn/v1/ws/demo/nodes/n2/logs", false, false},
      {"node:demo:n1", "node:demo:n1", Access::kRead, "cairn/v1/ws/demo/pipelines/p/3", false, true},
      {"node:demo:n1", "node:demo:n1", Access::kRead, "cairn/v1/ws/other/pipelines/p/3", false, false},
      {"node:demo:n1", "node:demo:n1", Access::kRead, "cairn/v1/ws/demo/data/temps", false, true},
      {"node:demo:n1", "node:demo:n1", Access::kRead, "cairn/v1/reply/node:demo:n1/node:demo:n1/1", false, true},
      {"node:demo:n1", "node:demo:n1", Access::kRead, "cairn/v1/reply/node:demo:n2/node:demo:n2/1", false, false},
      {"node:demo:n1", "node:demo:n1", Access::kSubscribe, "cairn/v1/ws/demo/#", false, true},
      {"node:demo:n1", "node:demo:n1", Access::kSubscribe, "cairn/v1/ws/demo/nodes/+/health", false, false},
      {"node:demo:n1", "node:demo:n1", Access::kSubscribe, "cairn/v1/ws/other/#", false, false},
      {"node:demo:n1", "node:demo:n1", Access::kSubscribe, "$share/g/cairn/v1/ws/other/#", false, false},
      {"node:demo:n1", "node:demo:n1", Access::kSubscribe, "$share/g/cairn/v1/ws/demo/nodes/n1/desired", false, true},
      // user:bob, viewer in demo
      {"user:bob", "ctl-1", Access::kWrite, "cairn/v1/rpc/registry/ListNodes", false, true},
      {"user:bob", "ctl-1", Access::kWrite, "cairn/v1/rpc/registry/ListNodes", true, false},
      {"user:bob", "ctl-1", Access::kWrite, "cairn/v1/ws/demo/nodes/n1/desired", false, false},
      {"user:bob", "ctl-1", Access::kRead, "cairn/v1/ws/demo/nodes/n1/health", false, true},
      {"user:bob", "ctl-1", Access::kRead, "cairn/v1/ws/other/nodes/n1/health", false, false},
      {"user:bob", "ctl-1", Access::kRead, "cairn/v1/reply/user:bob/ctl-1/x", false, true},
      {"user:bob", "ctl-1", Access::kRead, "cairn/v1/reply/user:bob/ctl-2/x", false, false},
      {"user:bob", "ctl-1", Access::kRead, "cairn/v1/rpc/registry/ListNodes", false, false},
      {"user:bob", "ctl-1", Access::kSubscribe, "#", false, true},
      {"user:bob", "ctl-1", Access::kSubscribe, "cairn/v1/ws/other/#", false, false},
      {"user:bob", "ctl-1", Access::kSubscribe, "cairn/v1/sys/#", false, false},
      {"user:admin", "ctl-1", Access::kRead, "cairn/v1/ws/other/nodes/n1/health", false, true},
      {"user:nobody", "ctl-1", Access::kRead, "cairn/v1/ws/demo/nodes/n1/health", false, false},
      {"user:ghost", "ctl-1", Access::kRead, "cairn/v1/reply/user:ghost/ctl-1/x", false, false},
      // integrator cred:demo:grafana
      {"cred:demo:grafana", "g", Access::kRead, "cairn/v1/ws/demo/nodes/n1/health", false, true},
      {"cred:demo:grafana", "g", Access::kRead, "cairn/v1/ws/demo/nodes/n1/status", false, true},
      {"cred:demo:grafana", "g", Access::kRead, "cairn/v1/ws/demo/nodes/n1/logs", false, true},
      {"cred:demo:grafana", "g", Access::kRead, "cairn/v1/ws/demo/events", false, true},
      {"cred:demo:grafana", "g", Access::kRead, "cairn/v1/ws/demo/data/temps", false, true},
      {"cred:demo:grafana", "g", Access::kRead, "cairn/v1/ws/demo/nodes/n1/desired", false, false},
      {"cred:demo:grafana", "g", Access::kRead, "cairn/v1/ws/demo/pipelines/p/1", false, false},
      {"cred:demo:grafana", "g", Access::kRead, "cairn/v1/ws/other/nodes/n1/health", false, false},
      {"cred:demo:grafana", "g", Access::kSubscribe, "#", false, true},
      {"cred:demo:grafana", "g", Access::kWrite, "cairn/v1/ws/demo/events", false, false},
      {"cred:demo:grafana", "g", Access::kWrite, "cairn/v1/rpc/registry/ListNodes", false, false},
      {"cred:other:grafana", "g", Access::kRead, "cairn/v1/ws/other/events", false, false},
      // bootstrap
      {"bootstrap", "b-1", Access::kWrite, "cairn/v1/rpc/registry/Bootstrap", false, true},
      {"bootstrap", "b-1", Access::kWrite, "cairn/v1/rpc/registry/Other", false, false},
      {"bootstrap", "b-1", Access::kRead, "cairn/v1/reply/bootstrap/b-1/x", false, true},
      {"bootstrap", "b-1", Access::kRead, "cairn/v1/reply/bootstrap/b-2/x", false, false},
      {"bootstrap", "b-1", Access::kRead, "cairn/v1/ws/demo/events", false, false},
      // services
      {"svc:registry", "reg", Access::kWrite, "cairn/v1/ws/demo/nodes/n1/desired", true, true},
      {"svc:registry", "reg", Access::kSubscribe, "$share/registry/cairn/v1/rpc/registry/+", false, true},
      // unknown
      {"root", "x", Access::kRead, "cairn/v1/ws/demo/events", false, false},
  };
  BrokerPolicy policy;
  policy.SetAccess(access, 0);
  for (const TopicCase& c : cases) {
    policy.OtherEvent();
    Refusal r = policy.CheckAccess(nullptr, std::string_view(c.who), c.client_id, c.access, c.topic, c.retain, 0);
    EXPECT_EQ(r == Refusal::kNone, c.allowed)
        << c.who << " " << AccessName(c.access) << " " << c.topic << (c.retain ? " (retained)" : "") << " -> "
        << RefusalName(r);
  }
}

TEST(TopicRules, FiltersIntersectWhenOneTopicMatchesBoth) {
  EXPECT_TRUE(FiltersIntersect("#", "cairn/v1/ws/demo/#"));
  EXPECT_TRUE(FiltersIntersect("cairn/v1/ws/+/events", "cairn/v1/ws/demo/#"));
  EXPECT_TRUE(FiltersIntersect("cairn/v1/ws/demo/#", "cairn/v1/ws/demo"));
  EXPECT_FALSE(FiltersIntersect("cairn/v1/ws/demo/#", "cairn/v1/ws/other/#"));
  EXPECT_FALSE(FiltersIntersect("a/+", "a/b/c"));
  EXPECT_FALSE(FiltersIntersect("#", "$SYS/x"));
  EXPECT_FALSE(FiltersIntersect("a/#/b", "a/b"));
}

TEST(ResponseTopic, MustLieUnderThePrincipalsOwnClientPrefix) {
  EXPECT_EQ(CheckResponseTopic("user:bob", "ctl-1", "cairn/v1/reply/user:bob/ctl-1/7"), Refusal::kNone);
  for (const char* bad : {"cairn/v1/reply/user:alice/ctl-1/7", "cairn/v1/reply/user:bob/ctl-2/7",
                          "cairn/v1/reply/user:bob/ctl-1x/7", "cairn/v1/reply/user:bob/ctl-1/+",
                          "cairn/v1/reply/user:bob/ctl-1"}) {
    EXPECT_EQ(CheckResponseTopic("user:bob", "ctl-1", std::string_view(bad)), Refusal::kBadResponseTopic) << bad;
  }
  EXPECT_EQ(CheckResponseTopic("user:bob", "ctl-1", std::nullopt), Refusal::kBadResponseTopic);
  EXPECT_EQ(CheckResponseTopic("user:bob", "a/b", "cairn/v1/reply/user:bob/a/b/1"), Refusal::kBadResponseTopic);
}

TEST(TokenBucket, RefillsWithInjectedTime) {
  TokenBucket b(2, 3);  // 2/s, burst 3
  EXPECT_TRUE(b.Take(0));
  EXPECT_TRUE(b.Take(0));
  EXPECT_TRUE(b.Take(0));
  EXPECT_FALSE(b.Take(0));
  EXPECT_FALSE(b.Take(400));
  EXPECT_TRUE(b.Take(500));
  EXPECT_FALSE(b.Take(500));
  EXPECT_TRUE(b.Take(10000));
  EXPECT_TRUE(TokenBucket(0, 0).Take(0)) << "rate 0 disables the limit";
}

TEST(Limits, ParsesOptionsAndRejectsNonsense) {
  Limits l;
  EXPECT_TRUE(SetLimit(&l, "node_health_per_second", "0.5").ok());
  EXPECT_DOUBLE_EQ(l.node_health_per_second, 0.5);
  EXPECT_TRUE(SetLimit(&l, "max_message_bytes", "4096").ok());
  EXPECT_EQ(l.max_message_bytes, 4096u);
  EXPECT_FALSE(SetLimit(&l, "max_message_bytes", "1.5").ok());
  EXPECT_FALSE(SetLimit(&l, "node_health_per_second", "-1").ok());
  EXPECT_FALSE(SetLimit(&l, "node_health_per_second", "fast").ok());
  EXPECT_EQ(SetLimit(&l, "no_such_limit", "1").error().code, ErrorCode::kNotFound);
}

class BrokerPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hash_ = *HashPassword("bob-pw", kMinIterations);
    cred_hash_ = *HashPassword("cred-pw", kMinIterations);
    policy_ = std::make_unique<BrokerPolicy>(limits_);
    policy_->SetAccess(Snapshot(hash_, cred_hash_), 0);
    policy_->SetServiceCredentials(ParseServiceCredentials(
        "svc:registry 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\n"));  // "secret"
  }
  ConnectDecision Login(int client, std::string_view user, std::string_view pw, std::string_view cid) {
    ConnectRequest r;
    r.client = Client(client);
    r.username = user;
    r.password = pw;
    r.client_id = cid;
    return policy_->Connect(r, now_, 0);
  }
  ConnectDecision NodeLogin(int client, std::optional<std::string_view> user, std::string_view cn,
                            std::string_view cid, std::string serial = "1A") {
    ConnectRequest r;
    r.client = Client(client);
    r.username = user;
    r.client_id = cid;
    r.certificate = Certificate{std::string(cn), serial};
    return policy_->Connect(r, now_, 0);
  }
  Refusal Publish(int client, std::string_view user, std::string_view cid, std::string_view topic,
                  std::size_t size = 10) {
    std::string payload(size, 'x');
    MessageRequest m;
    m.client = Client(client);
    m.username = user;
    m.client_id = cid;
    m.topic = topic;
    m.payload = payload;
    return policy_->Message(m, now_);
  }

  Limits limits_;
  std::unique_ptr<BrokerPolicy> policy_;
  std::string hash_;
  std::string cred_hash_;
  int64_t now_ = 1000;
};

TEST_F(BrokerPolicyTest, CertificateLoginMustBeTheNodeItNames) {
  EXPECT_EQ(NodeLogin(1, std::nullopt, "node:demo:n1", "node:demo:n1").refusal, Refusal::kNone);
  ConnectDecision d = NodeLogin(2, "", "node:demo:n2", "node:demo:n2");
  EXPECT_EQ(d.refusal, Refusal::kNone);
  EXPECT_TRUE(d.set_username);
  EXPECT_EQ(d.username, "node:demo:n2");
  EXPECT_FALSE(NodeLogin(3, "node:demo:n3", "node:demo:n3", "node:demo:n3").set_username);
  EXPECT_EQ(NodeLogin(4, std::nullopt, "node:demo:n2", "node:demo:n1").refusal, Refusal::kCertificateMismatch);
  EXPECT_EQ(NodeLogin(4, "node:demo:n1", "node:demo:n2", "node:demo:n2").refusal, Refusal::kCertificateMismatch);
  EXPECT_EQ(NodeLogin(4, std::nullopt, "svc:evil", "svc:evil").refusal, Refusal::kCertificateMismatch);
  policy_->SetRevocations(Revocations::Parse("node:demo:n5\nserial:00ab\n"));
  EXPECT_EQ(NodeLogin(5, std::nullopt, "node:demo:n5", "node:demo:n5").refusal, Refusal::kRevoked);
  EXPECT_EQ(NodeLogin(6, std::nullopt, "node:demo:n6", "node:demo:n6", "AB").refusal, Refusal::kRevoked);
}

TEST_F(BrokerPolicyTest, PasswordLoginsFollowTheirPrincipalKind) {
  EXPECT_EQ(Login(1, "svc:registry", "secret", "reg").refusal, Refusal::kNone);
  EXPECT_EQ(Login(2, "svc:registry", "nope", "reg2").refusal, Refusal::kWrongPassword);
  EXPECT_EQ(Login(2, "user:bob", "bob-pw", "ctl-1").refusal, Refusal::kNone);
  EXPECT_EQ(Login(3, "user:bob", "wrong", "ctl-2").refusal, Refusal::kWrongPassword);
  EXPECT_EQ(Login(3, "cred:demo:grafana", "cred-pw", "g").refusal, Refusal::kNone);
  EXPECT_EQ(Login(4, "user:ghost", "x", "c").refusal, Refusal::kUnknownPrincipal);
  EXPECT_EQ(Login(4, "node:demo:n1", "x", "node:demo:n1").refusal, Refusal::kCertificateRequired);
  EXPECT_EQ(Login(4, "user:bob", "bob-pw", "node:demo:n9").refusal, Refusal::kReservedClientId);
  EXPECT_EQ(Login(4, "bootstrap", "anything", "b").refusal, Refusal::kNone);
  EXPECT_EQ(Login(5, "svc:a+b", "x", "c").refusal, Refusal::kBadUsername);
  ConnectRequest anon;
  anon.client = Client(6);
  anon.client_id = "anon";
  EXPECT_EQ(policy_->Connect(anon, now_, 0).refusal, Refusal::kNoUsername);
}

TEST_F(BrokerPolicyTest, AClientIdHeldByAnotherPrincipalIsRefusedUntilItsHolderLeaves) {
  ASSERT_EQ(Login(1, "user:bob", "bob-pw", "ctl-1").refusal, Refusal::kNone);
  EXPECT_EQ(Login(2, "bootstrap", "t", "ctl-1").refusal, Refusal::kClientIdHeld);
  // The same principal may take over its own session; the old connection's
  // late disconnect must not free the id.
  EXPECT_EQ(Login(3, "user:bob", "bob-pw", "ctl-1").refusal, Refusal::kNone);
  policy_->Disconnected(Client(1));
  EXPECT_EQ(Login(4, "bootstrap", "t", "ctl-1").refusal, Refusal::kClientIdHeld);
  policy_->Disconnected(Client(3));
  EXPECT_EQ(Login(4, "bootstrap", "t", "ctl-1").refusal, Refusal::kNone);
}

TEST_F(BrokerPolicyTest, WrongPasswordFloodIsThrottledWithoutLockingOutAKnownPassword) {
  ASSERT_EQ(Login(1, "user:bob", "bob-pw", "ctl-1").refusal, Refusal::kNone);
  uint64_t before = policy_->passwords().slow_checks();
  int throttled = 0;
  for (int i = 0; i < 100; ++i) throttled += Login(2, "user:bob", "guess", "ctl-2").refusal == Refusal::kLoginThrottled;
  EXPECT_EQ(policy_->passwords().slow_checks() - before, static_cast<uint64_t>(limits_.login_failure_burst));
  EXPECT_EQ(throttled, 100 - static_cast<int>(limits_.login_failure_burst));
  EXPECT_EQ(Login(3, "user:bob", "bob-pw", "ctl-3").refusal, Refusal::kNone) << "remembered password";
  now_ += 10'000;  // one more try after 1/login_failures_per_second
  EXPECT_EQ(Login(2, "user:bob", "guess", "ctl-2").refusal, Refusal::kWrongPassword);
}

TEST_F(BrokerPolicyTest, AccessChangesKickLiveSessionsAndMissingSnapshotFailsClosed) {
  ASSERT_EQ(Login(1, "user:bob", "bob-pw", "ctl-1").refusal, Refusal::kNone);
  ASSERT_EQ(Login(2, "cred:demo:grafana", "cred-pw", "g").refusal, Refusal::kNone);
  ASSERT_EQ(Login(3, "svc:registry", "secret", "reg").refusal, Refusal::kNone);
  auto changed = Snapshot(*HashPassword("new-pw", kMinIterations), cred_hash_);
  policy_->SetAccess(changed, 0);
  std::vector<Kick> kicks = policy_->TakeKicks();
  ASSERT_EQ(kicks.size(), 1u);
  EXPECT_EQ(kicks[0].client_id, "ctl-1");
  EXPECT_NE(policy_->CheckAccess(Client(1), "user:bob", "ctl-1", Access::kRead, "cairn/v1/ws/demo/events",
                                 false, 0),
            Refusal::kNone)
      << "a session with an outdated password reads nothing until it is gone";
  policy_->SetAccess(nullptr, 0);
  kicks = policy_->TakeKicks();
  ASSERT_EQ(kicks.size(), 2u) << "user and integrator, not the service";
  EXPECT_EQ(Login(4, "cred:demo:grafana", "cred-pw", "g2").refusal, Refusal::kAccessUnavailable);
  EXPECT_EQ(Login(5, "svc:registry", "secret", "reg2").refusal, Refusal::kNone);
}

TEST_F(BrokerPolicyTest, ExpiredIntegratorCredentialIsRefusedAndKicked) {
  auto s = Snapshot(hash_, cred_hash_);
  s->credentials["cred:demo:grafana"].expires_ms = 5000;
  policy_->SetAccess(s, 0);
  ASSERT_EQ(Login(1, "cred:demo:grafana", "cred-pw", "g").refusal, Refusal::kNone);
  policy_->Tick(now_ + 1000, 6000);
  ASSERT_EQ(policy_->TakeKicks().size(), 1u);
  ConnectRequest r;
  r.client = Client(2);
  r.username = "cred:demo:grafana";
  r.password = "cred-pw";
  r.client_id = "g2";
  EXPECT_EQ(policy_->Connect(r, now_, 6000).refusal, Refusal::kCredentialExpired);
}

TEST_F(BrokerPolicyTest, RevocationByRegistryKicksByNameAndSerial) {
  ASSERT_EQ(NodeLogin(1, std::nullopt, "node:demo:n1", "node:demo:n1", "0A").refusal, Refusal::kNone);
  ASSERT_EQ(NodeLogin(2, std::nullopt, "node:demo:n2", "node:demo:n2", "0B").refusal, Refusal::kNone);
  MessageRequest m;
  m.client = Client(9);
  m.username = "svc:registry";
  m.client_id = "reg";
  m.topic = "cairn/v1/sys/revoke";
  m.payload = "serial:b";
  EXPECT_EQ(policy_->Message(m, now_), Refusal::kNone);
  std::vector<Kick> kicks = policy_->TakeKicks();
  ASSERT_EQ(kicks.size(), 1u);
  EXPECT_EQ(kicks[0].client_id, "node:demo:n2");
  EXPECT_TRUE(policy_->TakeRevocationsChanged());
  m.username = "svc:observer";
  m.payload = "node:demo:n1";
  EXPECT_EQ(policy_->Message(m, now_), Refusal::kNone);
  EXPECT_TRUE(policy_->TakeKicks().empty()) << "only svc:registry revokes";
  EXPECT_EQ(policy_->revocations().Serialize(), "# Revoked through cairn/v1/sys/revoke (written by the broker).\nserial:B\n");
}

TEST_F(BrokerPolicyTest, MessageLimitsCountAndRefuse) {
  ASSERT_EQ(NodeLogin(1, std::nullopt, "node:demo:n1", "node:demo:n1").refusal, Refusal::kNone);
  ASSERT_EQ(NodeLogin(2, std::nullopt, "node:demo:n2", "node:demo:n2").refusal, Refusal::kNone);
  const char* h1 = "cairn/v1/ws/demo/nodes/n1/health";
  int allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += Publish(1, "node:demo:n1", "node:demo:n1", h1) == Refusal::kNone;
  EXPECT_EQ(allowed, static_cast<int>(limits_.node_health_burst));
  EXPECT_EQ(policy_->refusals().Pending(Refusal::kHealthRate), 50u - allowed);
  EXPECT_EQ(Publish(2, "node:demo:n2", "node:demo:n2", "cairn/v1/ws/demo/nodes/n2/health"), Refusal::kNone)
      << "another node is not starved";
  now_ += 1000;
  EXPECT_EQ(Publish(1, "node:demo:n1", "node:demo:n1", h1), Refusal::kNone);
  EXPECT_EQ(Publish(1, "node:demo:n1", "node:demo:n1", "cairn/v1/ws/demo/data/x", limits_.max_message_bytes + 1),
            Refusal::kMessageTooLarge);
  int rate_refused = 0;
  for (int i = 0; i < 500; ++i) {
    rate_refused += Publish(2, "node:demo:n2", "node:demo:n2", "cairn/v1/ws/demo/data/x") == Refusal::kMessageRate;
  }
  EXPECT_GT(rate_refused, 0);
  EXPECT_EQ(Publish(3, "svc:registry", "reg", "cairn/v1/ws/demo/data/x", limits_.max_message_bytes + 1),
            Refusal::kNone)
      << "services are not limited";
  std::optional<std::string> summary;
  for (const Note& n : policy_->TakeNotes()) {
    if (n.text.find("health-rate") != std::string::npos) summary = n.text;
  }
  EXPECT_TRUE(summary.has_value()) << "first refusal of the client is logged";
}

TEST_F(BrokerPolicyTest, BootstrapIsCappedExpiredAndRateLimited) {
  limits_.bootstrap_max_connections = 2;
  policy_ = std::make_unique<BrokerPolicy>(limits_);
  ASSERT_EQ(Login(1, "bootstrap", "t", "b1").refusal, Refusal::kNone);
  ASSERT_EQ(Login(2, "bootstrap", "t", "b2").refusal, Refusal::kNone);
  EXPECT_EQ(Login(3, "bootstrap", "t", "b3").refusal, Refusal::kBootstrapFull);
  policy_->Disconnected(Client(2));
  now_ += 1000;
  EXPECT_EQ(Login(3, "bootstrap", "t", "b3").refusal, Refusal::kNone);
  const int64_t b1_connected = now_ - 1000;
  const char* rpc = "cairn/v1/rpc/registry/Bootstrap";
  auto call = [&](int client, const char* cid) {
    std::string rt = "cairn/v1/reply/bootstrap/" + std::string(cid) + "/1";
    MessageRequest m;
    m.client = Client(client);
    m.username = "bootstrap";
    m.client_id = cid;
    m.topic = rpc;
    m.response_topic = rt;
    return policy_->Message(m, now_);
  };
  int ok = 0;
  for (int i = 0; i < 10; ++i) ok += call(1, "b1") == Refusal::kNone;
  EXPECT_EQ(ok, static_cast<int>(limits_.bootstrap_client_rpc_burst));
  now_ = b1_connected + limits_.bootstrap_max_session_seconds * 1000;
  policy_->Tick(now_, 0);
  std::vector<Kick> kicks = policy_->TakeKicks();
  ASSERT_EQ(kicks.size(), 1u) << "b1 is too old, b3 not yet";
  EXPECT_EQ(kicks[0].client_id, "b1");
}

TEST_F(BrokerPolicyTest, ALastWillOnAnRpcTopicIsNotDelivered) {
  const char* topic = "cairn/v1/rpc/registry/CreateWorkspace";
  EXPECT_EQ(policy_->CheckAccess(Client(1), "user:bob", "ctl-1", Access::kWrite, topic, false, 0), Refusal::kNone);
  EXPECT_EQ(policy_->CheckAccess(Client(2), "svc:registry", "reg", Access::kRead, topic, false, 0),
            Refusal::kWillOnRpcTopic);
  EXPECT_EQ(policy_->CheckAccess(Client(1), "user:bob", "ctl-1", Access::kWrite, topic, false, 0), Refusal::kNone);
  EXPECT_EQ(Publish(1, "user:bob", "ctl-1", "cairn/v1/ws/demo/x"), Refusal::kNone);  // MESSAGE: an ordinary publish
  EXPECT_EQ(policy_->CheckAccess(Client(2), "svc:registry", "reg", Access::kRead, topic, false, 0), Refusal::kNone);
}

TEST_F(BrokerPolicyTest, ForgedStampAndForeignResponseTopicAreRefused) {
  MessageRequest m;
  m.client = Client(1);
  m.username = "user:bob";
  m.client_id = "ctl-1";
  m.topic = "cairn/v1/rpc/registry/ListNodes";
  m.response_topic = "cairn/v1/reply/user:alice/ctl-1/1";
  EXPECT_EQ(policy_->Message(m, now_), Refusal::kBadResponseTopic);
  m.response_topic = "cairn/v1/reply/user:bob/ctl-1/1";
  EXPECT_EQ(policy_->Message(m, now_), Refusal::kNone);
  m.has_principal_property = true;
  EXPECT_EQ(policy_->Message(m, now_), Refusal::kForgedPrincipal);
}

TEST(RefusalCounter, SummarisesAtMostOncePerInterval) {
  RefusalCounter c;
  EXPECT_FALSE(c.Summary(0, 60000).has_value());
  EXPECT_TRUE(c.Count(Refusal::kHealthRate, Client(1)));
  EXPECT_FALSE(c.Count(Refusal::kHealthRate, Client(1)));
  EXPECT_FALSE(c.Summary(30000, 60000).has_value());
  std::optional<std::string> s = c.Summary(60000, 60000);
  ASSERT_TRUE(s.has_value());
  EXPECT_NE(s->find("health-rate=2"), std::string::npos) << *s;
  EXPECT_FALSE(c.Summary(200000, 60000).has_value()) << "nothing new counted";
}

TEST(Revocations, ParsesPrincipalsAndNormalisedSerials) {
  EXPECT_EQ(ParseRevocationEntry(" serial:00ab \n")->ToString(), "serial:AB");
  EXPECT_EQ(ParseRevocationEntry("node:demo:n1")->ToString(), "node:demo:n1");
  EXPECT_FALSE(ParseRevocationEntry("serial:xyz").has_value());
  EXPECT_FALSE(ParseRevocationEntry("svc:registry").has_value());
  EXPECT_FALSE(ParseRevocationEntry("a/b").has_value());
  int skipped = 0;
  Revocations r = Revocations::Parse("# c\nnode:demo:n1\nserial:0F\nbad/line\n", &skipped);
  EXPECT_EQ(skipped, 1);
  EXPECT_TRUE(r.IsRevoked("node:demo:n1"));
  EXPECT_TRUE(r.IsSerialRevoked("f"));
  EXPECT_FALSE(r.IsSerialRevoked("10"));
}

}  // namespace
}  // namespace cairn::policy
