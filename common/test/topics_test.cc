#include "cairn/common/topics.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cairn::topics {
namespace {

TEST(TopicScheme, BuildsEveryTopicOfTheV1Tree) {
  struct Case {
    std::string got;
    std::string want;
  };
  const std::vector<Case> cases = {
      {NodeStatus("demo", "n1"), "cairn/v1/ws/demo/nodes/n1/status"},
      {NodeHealth("demo", "n1"), "cairn/v1/ws/demo/nodes/n1/health"},
      {NodeLogs("demo", "n1"), "cairn/v1/ws/demo/nodes/n1/logs"},
      {NodeDesired("demo", "n1"), "cairn/v1/ws/demo/nodes/n1/desired"},
      {Node("demo", "n1", NodeTopic::kHealth), "cairn/v1/ws/demo/nodes/n1/health"},
      {PipelineConfig("demo", "app-errors", 7), "cairn/v1/ws/demo/pipelines/app-errors/7"},
      {PipelineConfigs("demo"), "cairn/v1/ws/demo/pipelines/#"},
      {Events("demo"), "cairn/v1/ws/demo/events"},
      {Data("demo", "errors"), "cairn/v1/ws/demo/data/errors"},
      {Workspace("demo"), "cairn/v1/ws/demo/#"},
      {AllNodeStatus(), "cairn/v1/ws/+/nodes/+/status"},
      {AllNodeHealth(), "cairn/v1/ws/+/nodes/+/health"},
      {AllEvents(), "cairn/v1/ws/+/events"},
      {RpcRequest("registry", "CreateWorkspace"), "cairn/v1/rpc/registry/CreateWorkspace"},
      {RpcShared("registry"), "$share/registry/cairn/v1/rpc/registry/+"},
      {ReplyPrefix("user:alice", "ctl-42"), "cairn/v1/reply/user:alice/ctl-42"},
  };
  for (const Case& c : cases) EXPECT_EQ(c.got, c.want);
}

TEST(TopicScheme, AcceptsDnsLabelsAsNames) {
  for (const char* name : {"a", "demo", "node-1", "0abc", "a1-b2-c3",
                           "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk"}) {
    EXPECT_TRUE(IsValidName(name)) << name;
    EXPECT_TRUE(ValidateName("node", name).ok()) << name;
  }
}

TEST(TopicScheme, RejectsNamesThatAreNotDnsLabels) {
  struct Case {
    std::string name;
    std::string why;  // expected in the error message
  };
  const std::vector<Case> cases = {
      {"", "must not be empty"},
      {std::string(64, 'a'), "longer than 63"},
      {"Prod", "lower case"},
      {"-edge", "start and end"},
      {"edge-", "start and end"},
      {"a_b", "\"_\" is not allowed"},
      {"a.b", "\".\" is not allowed"},
      {"a b", "\" \" is not allowed"},
      {std::string("a\0b", 3), "is not allowed"},
  };
  for (const Case& c : cases) {
    EXPECT_FALSE(IsValidName(c.name)) << c.name;
    Status s = ValidateName("workspace", c.name);
    ASSERT_FALSE(s.ok()) << c.name;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(s.error().message.find("invalid workspace name"), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find(c.why), std::string::npos) << s.error().message;
  }
}

TEST(TopicScheme, RejectsWildcardInNodeName) {
  for (const char* name : {"+", "#", "node+", "node#", "a/b", "$SYS"}) {
    EXPECT_FALSE(IsValidName(name)) << name;
    EXPECT_FALSE(ValidateName("node", name).ok()) << name;
  }
}

TEST(TopicScheme, ParsesNodeTopicsIntoTheirParts) {
  struct Case {
    std::string topic;
    NodeTopic kind;
  };
  const std::vector<Case> cases = {
      {"cairn/v1/ws/demo/nodes/n1/status", NodeTopic::kStatus},
      {"cairn/v1/ws/demo/nodes/n1/health", NodeTopic::kHealth},
      {"cairn/v1/ws/demo/nodes/n1/logs", NodeTopic::kLogs},
      {"cairn/v1/ws/demo/nodes/n1/desired", NodeTopic::kDesired},
  };
  for (const Case& c : cases) {
    auto parts = ParseNodeTopic(c.topic);
    ASSERT_TRUE(parts.has_value()) << c.topic;
    EXPECT_EQ(parts->ws, "demo");
    EXPECT_EQ(parts->node, "n1");
    EXPECT_EQ(parts->kind, c.kind);
    EXPECT_EQ(Node(parts->ws, parts->node, parts->kind), c.topic);
  }
}

TEST(TopicScheme, RejectsMalformedNodeTopics) {
  for (const char* topic : {
           "",
           "cairn/v1/ws/demo/nodes/n1",
           "cairn/v1/ws/demo/nodes/n1/status/extra",
           "cairn/v1/ws/demo/nodes/n1/metrics",
           "cairn/v2/ws/demo/nodes/n1/status",
           "cairn/v1/ws/Demo/nodes/n1/status",
           "cairn/v1/ws/demo/nodes/+/status",
           "cairn/v1/ws/demo/nodes//status",
           "cairn/v1/ws/demo/node/n1/status",
           "/cairn/v1/ws/demo/nodes/n1/status",
       }) {
    EXPECT_FALSE(ParseNodeTopic(topic).has_value()) << topic;
  }
}

TEST(TopicScheme, ParsesPipelineTopicsWithCanonicalVersions) {
  auto parts = ParsePipelineTopic("cairn/v1/ws/demo/pipelines/app-errors/12");
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->ws, "demo");
  EXPECT_EQ(parts->pipeline, "app-errors");
  EXPECT_EQ(parts->version, 12u);

  auto max = ParsePipelineTopic(PipelineConfig("demo", "p", 4294967295u));
  ASSERT_TRUE(max.has_value());
  EXPECT_EQ(max->version, 4294967295u);

  for (const char* topic : {
           "cairn/v1/ws/demo/pipelines/p",
           "cairn/v1/ws/demo/pipelines/p/",
           "cairn/v1/ws/demo/pipelines/p/01",
           "cairn/v1/ws/demo/pipelines/p/-1",
           "cairn/v1/ws/demo/pipelines/p/+1",
           "cairn/v1/ws/demo/pipelines/p/1x",
           "cairn/v1/ws/demo/pipelines/p/4294967296",
           "cairn/v1/ws/demo/pipelines/P/1",
           "cairn/v1/ws/demo/pipelines/p/1/x",
       }) {
    EXPECT_FALSE(ParsePipelineTopic(topic).has_value()) << topic;
  }
}

TEST(TopicScheme, ParsesEventsTopicsOnly) {
  EXPECT_EQ(ParseEventsTopic("cairn/v1/ws/demo/events"), "demo");
  EXPECT_FALSE(ParseEventsTopic("cairn/v1/ws/demo/events/x").has_value());
  EXPECT_FALSE(ParseEventsTopic("cairn/v1/ws/+/events").has_value());
  EXPECT_FALSE(ParseEventsTopic("cairn/v1/ws/demo/data").has_value());
}

TEST(TopicScheme, ParsesRpcTopicsIntoServiceAndMethod) {
  auto parts = ParseRpcTopic(RpcRequest("registry", "ListNodes"));
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->service, "registry");
  EXPECT_EQ(parts->method, "ListNodes");

  for (const char* topic : {
           "cairn/v1/rpc/registry",
           "cairn/v1/rpc/registry/ListNodes/x",
           "cairn/v1/rpc/registry/+",
           "cairn/v1/rpc/Registry/ListNodes",
           "cairn/v1/rpc/registry/",
           "cairn/v1/rpc/registry/List-Nodes",
       }) {
    EXPECT_FALSE(ParseRpcTopic(topic).has_value()) << topic;
  }
}

TEST(TopicScheme, NamesTheRpcReplyAndRevocationRoots) {
  EXPECT_EQ(RpcRoot(), "cairn/v1/rpc");
  EXPECT_EQ(ReplyRoot(), "cairn/v1/reply");
  EXPECT_EQ(RevokeTopic(), "cairn/v1/sys/revoke");
  EXPECT_EQ(UnrevokeTopic(), "cairn/v1/sys/unrevoke");
  EXPECT_TRUE(IsRpcTopic("cairn/v1/rpc"));
  EXPECT_TRUE(IsRpcTopic("cairn/v1/rpc/registry/Bootstrap"));
  EXPECT_FALSE(IsRpcTopic("cairn/v1/rpcx/registry"));
  EXPECT_FALSE(IsRpcTopic("cairn/v1/reply/x"));
}

TEST(TopicScheme, TopicLevelHasNoSeparatorOrWildcard) {
  EXPECT_TRUE(IsTopicLevel("ctl-42"));
  EXPECT_TRUE(IsTopicLevel("node:demo:n1"));
  for (const std::string& bad : std::vector<std::string>{"", "a/b", "a+", "#", std::string("a\0b", 3)}) {
    EXPECT_FALSE(IsTopicLevel(bad)) << bad;
  }
}

TEST(TopicScheme, DataTopicIsExactlyOneDnsLabelBelowData) {
  auto ok = ParseDataTopic("cairn/v1/ws/demo/data/temps");
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->ws, "demo");
  EXPECT_EQ(ok->stream, "temps");
  for (const char* bad : {"cairn/v1/ws/demo/data", "cairn/v1/ws/demo/data/a/b", "cairn/v1/ws/demo/data/+",
                          "cairn/v1/ws/demo/data/#", "cairn/v1/ws/demo/data/Temps", "cairn/v1/ws/demo/data/",
                          "cairn/v1/ws/De/data/x", "cairn/v1/ws/demo/events/x"}) {
    EXPECT_FALSE(ParseDataTopic(bad).has_value()) << bad;
  }
}

TEST(TopicFilter, MatchesPerMqttRules) {
  struct Case {
    std::string filter;
    std::string topic;
    bool match;
  };
  const std::vector<Case> cases = {
      {"a/b/c", "a/b/c", true},
      {"a/b/c", "a/b/d", false},
      {"a/b", "a/b/c", false},
      {"a/b/c", "a/b", false},
      {"a/+/c", "a/b/c", true},
      {"a/+/c", "a/b/x/c", false},
      {"a/+", "a/", true},  // '+' matches an empty level
      {"+/+", "/x", true},
      {"a/#", "a", true},  // '#' matches the parent level too
      {"a/#", "a/b/c", true},
      {"a/#", "b/c", false},
      {"#", "a/b", true},
      {"+", "a", true},
      {"+", "a/b", false},
      {"a/b#", "a/b", false},       // '#' must be a whole level
      {"a/#/b", "a/x/b", false},    // '#' must be last
      {"a/b+/c", "a/b+/c", false},  // '+' must be a whole level
      {"a/+/c", "a/+/c", false},    // topics never contain wildcards
      {"#", "$SYS/broker", false},  // wildcards do not match '$' topics
      {"+/broker", "$SYS/broker", false},
      {"$SYS/#", "$SYS/broker", true},
      {"", "a", false},
      {"a", "", false},
      {AllNodeStatus(), NodeStatus("demo", "n1"), true},
      {AllNodeStatus(), NodeHealth("demo", "n1"), false},
      {Workspace("demo"), Data("demo", "s"), true},
      {Workspace("demo"), Data("other", "s"), false},
      {PipelineConfigs("demo"), PipelineConfig("demo", "p", 3), true},
      {RpcShared("registry"), RpcRequest("registry", "ListNodes"), true},
      {RpcShared("registry"), RpcRequest("scheduler", "ListNodes"), false},
      {"$share/g/a/+", "a/b", true},
      {"$share//a/+", "a/b", false},
      {"$share/g", "g", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Matches(c.filter, c.topic), c.match) << c.filter << " vs " << c.topic;
  }
}

}  // namespace
}  // namespace cairn::topics
