// The registry service: workspaces, bootstrap tokens, node bootstrap (signs
// CSRs), nodes and labels, health and status ingest, liveness sweep. Serves
// RPCs on cairn/v1/rpc/registry/{Method}; publishes WorkspaceEvents.
// Thread-safety: handlers run on the MQTT dispatcher thread; Sweep() may run
// on another thread (the Db serialises access).
#pragma once

#include <memory>
#include <string>

#include "cairn/common/clock.h"
#include "cairn/common/db.h"
#include "cairn/common/metrics.h"
#include "cairn/common/mqtt_client.h"
#include "cairn/common/rpc.h"
#include "cairn/common/tls.h"
#include "cairn/v1/events.pb.h"
#include "cairn/v1/rpc.pb.h"

namespace cairn::registry {

struct RegistryOptions {
  std::string bootstrap_broker_url;  // written into tokens
  std::string node_broker_url;       // handed to nodes at bootstrap
  int cert_days = 365;
  int default_health_interval_s = 10;
};

class RegistryService {
 public:
  RegistryService(Db& db, MqttClient& mqtt, tls::CertAuthority ca, RegistryOptions options,
                  Clock& clock, Metrics& metrics);

  // Registers RPC handlers and subscribes to node status/health. Call after
  // the MQTT client connected.
  Status Start();
  // Routes one incoming message.
  void OnMessage(const MqttMessage& message);
  // Called on every (re)connect: replays revocations to the broker plugin.
  void OnConnected();
  // Marks online nodes without health for 3 intervals as stale.
  void Sweep();

  Result<v1::Workspace> CreateWorkspace(const v1::CreateWorkspaceRequest& req, const CallContext& ctx);
  Result<v1::WorkspaceList> ListWorkspaces(const v1::ListWorkspacesRequest& req, const CallContext& ctx);
  Result<v1::Workspace> GetWorkspace(const v1::GetWorkspaceRequest& req, const CallContext& ctx);
  Result<v1::Empty> DeleteWorkspace(const v1::DeleteWorkspaceRequest& req, const CallContext& ctx);
  Result<v1::CreateTokenResponse> CreateToken(const v1::CreateTokenRequest& req, const CallContext& ctx);
  Result<v1::TokenList> ListTokens(const v1::ListTokensRequest& req, const CallContext& ctx);
  Result<v1::Empty> RevokeToken(const v1::RevokeTokenRequest& req, const CallContext& ctx);
  Result<v1::BootstrapResponse> Bootstrap(const v1::BootstrapRequest& req, const CallContext& ctx);
  Result<v1::NodeList> ListNodes(const v1::ListNodesRequest& req, const CallContext& ctx);
  Result<v1::Node> GetNode(const v1::GetNodeRequest& req, const CallContext& ctx);
  Result<v1::Node> LabelNode(const v1::LabelNodeRequest& req, const CallContext& ctx);
  Result<v1::Empty> RevokeNode(const v1::RevokeNodeRequest& req, const CallContext& ctx);

 private:
  void OnStatus(const std::string& ws, const std::string& node, const MqttMessage& m);
  void OnHealth(const std::string& ws, const std::string& node, const MqttMessage& m);
  void PublishEvent(v1::WorkspaceEvent event);
  void PublishRevocation(const std::string& principal);
  void Malformed(const std::string& kind, const std::string& topic, const std::string& why);

  Db& db_;
  MqttClient& mqtt_;
  tls::CertAuthority ca_;
  std::string ca_pin_;
  RegistryOptions options_;
  Clock& clock_;
  Metrics& metrics_;
  RpcServer rpc_;
};

// "node:{ws}:{node}": the broker principal (certificate CN) of a node.
std::string NodePrincipal(const std::string& ws, const std::string& node);

}  // namespace cairn::registry
