// The v1 topic tree: every topic string in Cairn comes from here.
//   cairn/v1/ws/{ws}/nodes/{node}/{status|health|logs|desired}
//   cairn/v1/ws/{ws}/pipelines/{pipeline}/{version}
//   cairn/v1/ws/{ws}/events
//   cairn/v1/ws/{ws}/data/{stream}
//   cairn/v1/rpc/{service}/{Method}       requests
//   cairn/v1/reply/{principal}/{client-id}/...  responses (private to the client;
//                                         the broker binds the prefix to the principal)
// Names ({ws}, {node}, {pipeline}, {stream}) are DNS labels: 1-63 of
// [a-z0-9-], starting and ending with a letter or digit. That rules out the
// MQTT wildcards and '/', so a name can never widen a topic.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/common/result.h"

namespace cairn::topics {

inline constexpr std::string_view kRoot = "cairn/v1";

// True if `name` is a DNS label (RFC 1123, lower case).
bool IsValidName(std::string_view name);
// Error describing why `name` is not a valid `what` name, or OK.
Status ValidateName(std::string_view what, std::string_view name);

enum class NodeTopic { kStatus, kHealth, kLogs, kDesired };

std::string Node(std::string_view ws, std::string_view node, NodeTopic kind);
std::string NodeStatus(std::string_view ws, std::string_view node);
std::string NodeHealth(std::string_view ws, std::string_view node);
std::string NodeLogs(std::string_view ws, std::string_view node);
std::string NodeDesired(std::string_view ws, std::string_view node);
std::string PipelineConfig(std::string_view ws, std::string_view pipeline, uint32_t version);
std::string PipelineConfigs(std::string_view ws);  // cairn/v1/ws/{ws}/pipelines/#
std::string Events(std::string_view ws);
std::string Data(std::string_view ws, std::string_view stream);
std::string Workspace(std::string_view ws);  // cairn/v1/ws/{ws}/#

// Filters used by services, across all workspaces.
std::string AllNodeStatus();   // cairn/v1/ws/+/nodes/+/status
std::string AllNodeHealth();   // cairn/v1/ws/+/nodes/+/health
std::string AllEvents();       // cairn/v1/ws/+/events

std::string RpcRequest(std::string_view service, std::string_view method);
// Shared subscription for every method of a service: $share/{service}/cairn/v1/rpc/{service}/+
std::string RpcShared(std::string_view service);
// cairn/v1/reply/{principal}/{client-id}: the broker lets only `principal`
// connected as `client_id` read it, and only it may name it as a response topic.
std::string ReplyPrefix(std::string_view principal, std::string_view client_id);

// A parsed node topic.
struct NodeTopicParts {
  std::string ws;
  std::string node;
  NodeTopic kind;
};
std::optional<NodeTopicParts> ParseNodeTopic(std::string_view topic);

struct PipelineTopicParts {
  std::string ws;
  std::string pipeline;
  uint32_t version;
};
std::optional<PipelineTopicParts> ParsePipelineTopic(std::string_view topic);

// "node:{ws}:{node}": a node's broker principal, which is also its
// certificate CN and its MQTT client id.
std::string NodePrincipal(std::string_view ws, std::string_view node);

// Roots of the RPC and reply trees: cairn/v1/rpc and cairn/v1/reply.
std::string RpcRoot();
std::string ReplyRoot();
// True if `topic` is cairn/v1/rpc or lies below it.
bool IsRpcTopic(std::string_view topic);
// Revocation channel of the broker: svc:registry publishes a principal or
// "serial:<HEX>" to cairn/v1/sys/revoke (or .../unrevoke).
std::string RevokeTopic();
std::string UnrevokeTopic();

// True if `text` can stand as exactly one topic level: not empty, no '/',
// '+', '#' or NUL. (Client ids and principals in reply prefixes.)
bool IsTopicLevel(std::string_view text);

// cairn/v1/ws/{ws}/data/{stream} with both names DNS labels; the workspace
// and stream, or nullopt (deeper, shallower, wildcard or invalid names).
struct DataTopicParts {
  std::string ws;
  std::string stream;
};
std::optional<DataTopicParts> ParseDataTopic(std::string_view topic);

// Workspace of cairn/v1/ws/{ws}/events.
std::optional<std::string> ParseEventsTopic(std::string_view topic);

struct RpcTopicParts {
  std::string service;
  std::string method;
};
std::optional<RpcTopicParts> ParseRpcTopic(std::string_view topic);

// MQTT topic filter matching (+ and #), per MQTT 3.1.1/5 section 4.7.
// `$share/{group}/` prefixes on the filter are ignored.
bool Matches(std::string_view filter, std::string_view topic);

}  // namespace cairn::topics
