#include "cairn/common/rpc.h"

#include <gtest/gtest.h>

#include "cairn/common/topics.h"
#include "cairn/v1/rpc.pb.h"
#include "fake_mqtt_client.h"

namespace cairn {
namespace {

using testing::FakeBroker;
using testing::FakeMqttClient;

struct RpcFixture : ::testing::Test {
  std::shared_ptr<FakeBroker> broker = std::make_shared<FakeBroker>();
  FakeMqttClient server_conn{broker, "svc-1", "svc:registry"};
  FakeMqttClient client_conn{broker, "ctl-1", "user:alice"};
  Metrics metrics;
  RpcServer server{server_conn, "registry", metrics};
  RpcClient client{client_conn};

  void SetUp() override {
    server.Handle<v1::GetWorkspaceRequest, v1::Workspace>(
        "GetWorkspace", [](const v1::GetWorkspaceRequest& req, const CallContext& ctx) -> Result<v1::Workspace> {
          if (req.name() == "missing") return Error::NotFound("workspace \"missing\" does not exist");
          v1::Workspace ws;
          ws.set_name(req.name());
          ws.set_description(ctx.principal);
          return ws;
        });
    server_conn.SetMessageHandler([this](const MqttMessage& m) { server.OnMessage(m); });
    client_conn.SetMessageHandler([this](const MqttMessage& m) { client.OnMessage(m); });
    ASSERT_TRUE(server_conn.Connect().ok());
    ASSERT_TRUE(client_conn.Connect().ok());
    ASSERT_TRUE(server.Start().ok());
    ASSERT_TRUE(client.Start().ok());
  }
};

TEST_F(RpcFixture, CallReturnsTheHandlersResponseAndSeesTheBrokerStampedPrincipal) {
  v1::GetWorkspaceRequest req;
  req.set_name("demo");
  auto resp = client.Call<v1::Workspace>("registry", "GetWorkspace", req);
  ASSERT_TRUE(resp.ok()) << resp.error().ToString();
  EXPECT_EQ(resp->name(), "demo");
  EXPECT_EQ(resp->description(), "user:alice");
}

TEST_F(RpcFixture, HandlerErrorsReachTheCallerWithTheirCode) {
  v1::GetWorkspaceRequest req;
  req.set_name("missing");
  auto resp = client.Call<v1::Workspace>("registry", "GetWorkspace", req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code, ErrorCode::kNotFound);
  EXPECT_NE(resp.error().message.find("missing"), std::string::npos);
}

TEST_F(RpcFixture, UnknownMethodIsAnInvalidArgument) {
  v1::Empty req;
  auto resp = client.Call<v1::Empty>("registry", "NoSuchMethod", req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(RpcFixture, MalformedRequestIsCountedAndAnswered) {
  auto resp = client.CallRaw("registry", "GetWorkspace", std::string("\xff\xff\xff", 3),
                             std::chrono::seconds(2));
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(metrics.Get("rpc_invalid_requests"), 1u);
}

TEST_F(RpcFixture, RequestWhoseResponseTopicIsOutsideTheReplyTreeIsDropped) {
  MqttMessage m;
  m.topic = topics::RpcRequest("registry", "GetWorkspace");
  m.response_topic = "cairn/v1/ws/demo/nodes/n1/desired";
  m.payload = "";
  ASSERT_TRUE(client_conn.Publish(m).ok());
  EXPECT_EQ(metrics.Get("rpc_bad_response_topic"), 1u);
  for (const auto& p : broker->Published()) EXPECT_NE(p.topic, m.response_topic);
}

TEST_F(RpcFixture, RequestWithoutABrokerStampIsRefused) {
  FakeMqttClient unstamped{broker, "will-1", ""};  // e.g. a last will: no plugin stamp
  ASSERT_TRUE(unstamped.Connect().ok());
  std::vector<MqttMessage> replies;
  unstamped.SetMessageHandler([&](const MqttMessage& m) { replies.push_back(m); });
  ASSERT_TRUE(unstamped.Subscribe("cairn/v1/reply/will-1/#", 1).ok());
  MqttMessage m;
  m.topic = topics::RpcRequest("registry", "GetWorkspace");
  m.response_topic = "cairn/v1/reply/will-1/x";
  v1::GetWorkspaceRequest req;
  req.set_name("demo");
  m.payload = req.SerializeAsString();
  ASSERT_TRUE(unstamped.Publish(m).ok());
  ASSERT_EQ(replies.size(), 1u);
  v1::RpcReply reply;
  ASSERT_TRUE(reply.ParseFromString(replies[0].payload));
  EXPECT_EQ(reply.code(), static_cast<int>(ErrorCode::kUnauthenticated));
  EXPECT_EQ(metrics.Get("rpc_unstamped"), 1u);
}

TEST_F(RpcFixture, RequestWithTwoStampsIsRefused) {
  MqttMessage m;
  m.topic = topics::RpcRequest("registry", "GetWorkspace");
  m.response_topic = "cairn/v1/reply/ctl-1/x";
  m.user_properties.emplace_back(kPrincipalProperty, "svc:registry");  // forged; the fake adds the real one
  ASSERT_TRUE(client_conn.Publish(m).ok());
  EXPECT_EQ(metrics.Get("rpc_unstamped"), 1u);
}

TEST_F(RpcFixture, CallTimesOutWhenNoServiceAnswers) {
  v1::Empty req;
  auto resp = client.Call<v1::Empty>("scheduler", "ListPipelines", req, std::chrono::milliseconds(50));
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code, ErrorCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace cairn
