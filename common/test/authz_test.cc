#include "cairn/common/authz.h"

#include <gtest/gtest.h>

namespace cairn::authz {
namespace {

using policy::Role;

struct Case {
  const char* principal;
  Need need;
  std::vector<Binding> bindings;
  bool allowed;
  const char* message;  // expected PermissionDenied message ("" when allowed)
};

const std::vector<Binding> kViewerOfDemo{{"demo", Role::kViewer}};
const std::vector<Binding> kOperatorOfDemo{{"demo", Role::kOperator}};
const std::vector<Binding> kAdminOfDemo{{"demo", Role::kAdmin}};
const std::vector<Binding> kClusterViewer{{"*", Role::kViewer}};
const std::vector<Binding> kClusterAdmin{{"*", Role::kAdmin}};

TEST(AuthzDecide, FollowsTheRoleTable) {
  const std::vector<Case> cases = {
      // services may do everything but act as a node
      {"svc:scheduler", Need::ClusterRole(Role::kAdmin), {}, true, ""},
      {"svc:registry", Need::RoleIn(Role::kOperator, "demo"), {}, true, ""},
      {"svc:registry", Need::Bootstrap(), {}, true, ""},
      {"svc:registry", Need::Node(), {}, false, "svc:registry may not call registry.X: only nodes may call it"},
      // users by role in the call's workspace
      {"user:bob", Need::RoleIn(Role::kViewer, "demo"), kViewerOfDemo, true, ""},
      {"user:bob", Need::RoleIn(Role::kOperator, "demo"), kViewerOfDemo, false,
       "user:bob needs role operator in workspace demo (has viewer)"},
      {"user:bob", Need::RoleIn(Role::kOperator, "demo"), kOperatorOfDemo, true, ""},
      {"user:bob", Need::RoleIn(Role::kAdmin, "demo"), kOperatorOfDemo, false,
       "user:bob needs role admin in workspace demo (has operator)"},
      {"user:bob", Need::RoleIn(Role::kAdmin, "demo"), kAdminOfDemo, true, ""},
      // a role in one workspace gives nothing in another
      {"user:bob", Need::RoleIn(Role::kViewer, "prod"), kAdminOfDemo, false,
       "user:bob needs role viewer in workspace prod (has none)"},
      {"user:bob", Need::RoleIn(Role::kViewer, "demo"), {}, false,
       "user:bob needs role viewer in workspace demo (has none)"},
      // a cluster-wide binding counts everywhere
      {"user:ann", Need::RoleIn(Role::kViewer, "prod"), kClusterViewer, true, ""},
      {"user:ann", Need::RoleIn(Role::kOperator, "prod"), kClusterViewer, false,
       "user:ann needs role operator in workspace prod (has viewer)"},
      {"user:ann", Need::RoleIn(Role::kAdmin, "prod"), kClusterAdmin, true, ""},
      // cluster-wide calls need the cluster-wide binding, not an admin of one workspace
      {"user:ann", Need::ClusterRole(Role::kAdmin), kClusterAdmin, true, ""},
      {"user:bob", Need::ClusterRole(Role::kAdmin), kAdminOfDemo, false,
       "user:bob needs role admin cluster-wide (workspace *) (has none)"},
      {"user:bob", Need::ClusterRole(Role::kAdmin), kClusterViewer, false,
       "user:bob needs role admin cluster-wide (workspace *) (has viewer)"},
      // any user: WhoAmI, own password; the token authorises Bootstrap
      {"user:bob", Need::AnyUser(), {}, true, ""},
      {"user:bob", Need::Bootstrap(), {}, true, ""},
      {"user:bob", Need::Node(), kClusterAdmin, false, "user:bob may not call registry.X: only nodes may call it"},
      // nodes: only their own calls
      {"node:demo:n1", Need::Node(), {}, true, ""},
      {"node:demo:n1", Need::RoleIn(Role::kViewer, "demo"), kClusterAdmin, false,
       "node:demo:n1 may not call registry.X: nodes may call only registry.RenewCertificate"},
      {"node:demo:n1", Need::AnyUser(), {}, false,
       "node:demo:n1 may not call registry.X: nodes may call only registry.RenewCertificate"},
      // bootstrap: only Bootstrap
      {"bootstrap", Need::Bootstrap(), {}, true, ""},
      {"bootstrap", Need::AnyUser(), {}, false, "bootstrap may not call registry.X: bootstrap may call only registry.Bootstrap"},
      // integrators: nothing, whatever bindings a store might claim
      {"cred:demo:grafana", Need::RoleIn(Role::kViewer, "demo"), kClusterAdmin, false,
       "cred:demo:grafana may not call registry.X: integrator credentials are read-only and call no RPC"},
      {"cred:demo:grafana", Need::AnyUser(), {}, false,
       "cred:demo:grafana may not call registry.X: integrator credentials are read-only and call no RPC"},
      // no or unknown principal
      {"", Need::AnyUser(), {}, false, "(no principal) may not call registry.X: unknown principal"},
      {"admin", Need::AnyUser(), {}, false, "admin may not call registry.X: unknown principal"},
      {"user:Bad_Name", Need::AnyUser(), {}, false, "user:Bad_Name may not call registry.X: unknown principal"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.principal) + " / " + c.need.workspace + " / " + policy::RoleName(c.need.role));
    auto st = Decide(c.principal, c.need, c.bindings, "registry.X");
    EXPECT_EQ(st.ok(), c.allowed);
    if (!st.ok()) {
      EXPECT_EQ(st.error().code, ErrorCode::kPermissionDenied);
      EXPECT_EQ(st.error().message, c.message);
    }
  }
}

TEST(AuthzEffectiveRole, TakesTheStrongerOfTheWorkspaceAndTheClusterWideBinding) {
  std::vector<Binding> b{{"demo", Role::kOperator}, {"*", Role::kViewer}, {"prod", Role::kAdmin}};
  EXPECT_EQ(EffectiveRole(b, "demo"), Role::kOperator);
  EXPECT_EQ(EffectiveRole(b, "prod"), Role::kAdmin);
  EXPECT_EQ(EffectiveRole(b, "other"), Role::kViewer);
  EXPECT_EQ(EffectiveRole(b, "*"), Role::kViewer);
  EXPECT_EQ(EffectiveRole({}, "demo"), Role::kNone);
  EXPECT_TRUE(CanSee(b, "other"));
  EXPECT_FALSE(CanSee({{"demo", Role::kViewer}}, "prod"));
}

class FakeClock final : public Clock {
 public:
  int64_t NowMs() const override { return 1700000000000; }
};

class FakeAccessStore final : public AccessStore {
 public:
  std::map<std::string, std::vector<Binding>> bindings;
  bool broken = false;
  struct Row {
    int64_t at_ms;
    std::string actor, action, workspace, detail;
  };
  std::vector<Row> audit;

  Result<std::vector<Binding>> BindingsOf(const std::string& user) override {
    if (broken) return Error::Unavailable("database down");
    lookups.push_back(user);
    auto it = bindings.find(user);
    return it == bindings.end() ? std::vector<Binding>{} : it->second;
  }
  Status RecordDenied(int64_t at_ms, const std::string& actor, const std::string& action,
                      const std::string& workspace, const std::string& detail) override {
    audit.push_back({at_ms, actor, action, workspace, detail});
    return OkStatus();
  }
  std::vector<std::string> lookups;
};

struct AuthorizerTest : ::testing::Test {
  FakeAccessStore store;
  FakeClock clock;
  Metrics metrics;
  Authorizer authz{store, clock, metrics, "registry"};
};

TEST_F(AuthorizerTest, AllowsAndReturnsTheCallersBindingsWithoutAuditing) {
  store.bindings["bob"] = kOperatorOfDemo;
  auto caller = authz.Require("user:bob", "CreateToken", Need::RoleIn(Role::kOperator, "demo"));
  ASSERT_TRUE(caller.ok()) << caller.error().ToString();
  EXPECT_EQ(caller->bindings, kOperatorOfDemo);
  EXPECT_TRUE(caller->Sees("demo"));
  EXPECT_FALSE(caller->Sees("prod"));
  EXPECT_EQ(store.lookups, std::vector<std::string>{"bob"});
  EXPECT_TRUE(store.audit.empty());
  EXPECT_EQ(metrics.Get("rpc_denied"), 0u);
}

TEST_F(AuthorizerTest, WritesEveryRefusalToTheAuditLogAndCountsIt) {
  store.bindings["bob"] = kViewerOfDemo;
  auto caller = authz.Require("user:bob", "CreateToken", Need::RoleIn(Role::kOperator, "demo"));
  ASSERT_FALSE(caller.ok());
  EXPECT_EQ(caller.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(caller.error().message, "user:bob needs role operator in workspace demo (has viewer)");
  ASSERT_EQ(store.audit.size(), 1u);
  EXPECT_EQ(store.audit[0].at_ms, 1700000000000);
  EXPECT_EQ(store.audit[0].actor, "user:bob");
  EXPECT_EQ(store.audit[0].action, "registry.CreateToken");
  EXPECT_EQ(store.audit[0].workspace, "demo");
  EXPECT_EQ(store.audit[0].detail, "denied: user:bob needs role operator in workspace demo (has viewer)");
  EXPECT_EQ(metrics.Get("rpc_denied"), 1u);
}

TEST_F(AuthorizerTest, ServicesNeedNoBindingLookup) {
  auto caller = authz.Require("svc:scheduler", "DeleteWorkspace", Need::RoleIn(Role::kAdmin, "demo"));
  ASSERT_TRUE(caller.ok());
  EXPECT_TRUE(caller->IsService());
  EXPECT_TRUE(caller->Sees("anything"));
  EXPECT_TRUE(store.lookups.empty());
}

TEST_F(AuthorizerTest, FailsClosedWhenTheBindingsCannotBeRead) {
  store.broken = true;
  auto caller = authz.Require("user:bob", "ListNodes", Need::RoleIn(Role::kViewer, "demo"));
  ASSERT_FALSE(caller.ok());
  EXPECT_EQ(caller.error().code, ErrorCode::kUnavailable);
}

TEST_F(AuthorizerTest, RejectsAWorkspaceThatIsNoNameBeforeDeciding) {
  auto caller = authz.Require("user:bob", "ListNodes", Need::RoleIn(Role::kViewer, "De/mo"));
  ASSERT_FALSE(caller.ok());
  EXPECT_EQ(caller.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(store.audit.empty());
}

TEST_F(AuthorizerTest, ARemovedUserHasNoRights) {
  // No row for "gone": deleted users (and their bindings) are simply absent.
  auto caller = authz.Require("user:gone", "ListNodes", Need::RoleIn(Role::kViewer, "demo"));
  ASSERT_FALSE(caller.ok());
  EXPECT_EQ(caller.error().message, "user:gone needs role viewer in workspace demo (has none)");
}

}  // namespace
}  // namespace cairn::authz
