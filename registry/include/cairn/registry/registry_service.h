// The registry service: workspaces, bootstrap tokens, node bootstrap (signs
// CSRs) and certificate renewal and revocation, nodes and labels, users,
// role bindings and integrator credentials (written to the broker's access
// snapshot), health and status ingest, liveness sweep. Serves RPCs on
// cairn/v1/rpc/registry/{Method}, each authorised by authz::Authorizer from
// the broker-stamped principal; publishes WorkspaceEvents.
// Thread-safety: handlers run on the MQTT dispatcher thread; Sweep() may run
// on another thread (the Db serialises access; snapshot writes serialise on
// their own mutex).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "cairn/common/authz.h"
#include "cairn/common/clock.h"
#include "cairn/common/db.h"
#include "cairn/common/metrics.h"
#include "cairn/common/mqtt_client.h"
#include "cairn/common/rpc.h"
#include "cairn/common/tls.h"
#include "cairn/v1/events.pb.h"
#include "cairn/v1/node.pb.h"
#include "cairn/v1/rpc.pb.h"

namespace cairn::registry {

struct RegistryOptions {
  std::string bootstrap_broker_url;  // written into tokens
  std::string node_broker_url;       // handed to nodes at bootstrap
  int cert_days = 365;
  int default_health_interval_s = 10;
  // Where the broker's access snapshot goes ("" = not written: users and
  // integrators cannot log in to the broker).
  std::string access_file;
  // Where the first admin's password is written when the users table is
  // empty at start ("" = no first admin is created).
  std::string admin_password_file;
};

// Whether a health report replaces the one stored for its node: reports
// can arrive out of order (a node drains its outbound queue after an outage,
// docs/design/edge-queue.md), and the stored one must stay the newest by the
// node's own timestamp (then seq). A report that loses still counts as a
// sign of life. Pure.
bool HealthReplacesStored(const v1::NodeHealth& incoming, const v1::NodeHealth& stored);

class RegistryService {
 public:
  RegistryService(Db& db, MqttClient& mqtt, tls::CertAuthority ca, RegistryOptions options,
                  Clock& clock, Metrics& metrics);

  // Creates the first admin if there is no user yet (see
  // RegistryOptions::admin_password_file) and writes the access snapshot.
  // Call once before Start(); an error here is fatal at start-up.
  Status PrepareAccess();
  // Registers RPC handlers and subscribes to node status/health. Call after
  // the MQTT client connected. Records the start (service_starts) for the
  // liveness grace period.
  Status Start();
  // Routes one incoming message.
  void OnMessage(const MqttMessage& message);
  // Called on every (re)connect: replays revocations to the broker plugin.
  void OnConnected();
  // Marks online nodes stale when liveness::NodeLiveness says so; rewrites the
  // access snapshot when a credential expired or the last write failed.
  void Sweep();
  // Writes the access snapshot now (from PostgreSQL).
  Status WriteAccessSnapshot();

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
  Result<v1::RenewCertificateResponse> RenewCertificate(const v1::RenewCertificateRequest& req,
                                                        const CallContext& ctx);
  Result<v1::Empty> RevokeCertificate(const v1::RevokeCertificateRequest& req, const CallContext& ctx);

  Result<v1::CreateUserResponse> CreateUser(const v1::CreateUserRequest& req, const CallContext& ctx);
  Result<v1::UserList> ListUsers(const v1::ListUsersRequest& req, const CallContext& ctx);
  Result<v1::Empty> DeleteUser(const v1::DeleteUserRequest& req, const CallContext& ctx);
  Result<v1::SetPasswordResponse> SetPassword(const v1::SetPasswordRequest& req, const CallContext& ctx);
  Result<v1::Empty> GrantRole(const v1::GrantRoleRequest& req, const CallContext& ctx);
  Result<v1::Empty> RevokeRole(const v1::RevokeRoleRequest& req, const CallContext& ctx);
  Result<v1::WhoAmIResponse> WhoAmI(const v1::WhoAmIRequest& req, const CallContext& ctx);
  Result<v1::CreateCredentialResponse> CreateCredential(const v1::CreateCredentialRequest& req,
                                                        const CallContext& ctx);
  Result<v1::CredentialList> ListCredentials(const v1::ListCredentialsRequest& req, const CallContext& ctx);
  Result<v1::Empty> RevokeCredential(const v1::RevokeCredentialRequest& req, const CallContext& ctx);

 private:
  void OnStatus(const std::string& ws, const std::string& node, const MqttMessage& m);
  void OnHealth(const std::string& ws, const std::string& node, const MqttMessage& m);
  void PublishEvent(v1::WorkspaceEvent event);
  // Publishes a principal or "serial:<HEX>" on cairn/v1/sys/revoke.
  void PublishRevocation(const std::string& principal);
  Result<authz::Caller> Authorize(const CallContext& ctx, const authz::Need& need);
  // Rewrites the snapshot after a change; a failure is logged and retried
  // by Sweep (the change itself stands).
  void AccessChanged();
  // Called by Sweep: rewrites the snapshot when a credential in it expired
  // or the last write failed.
  void RewriteSnapshotIfDue();
  void Malformed(const std::string& kind, const std::string& topic, const std::string& why);

  Db& db_;
  MqttClient& mqtt_;
  tls::CertAuthority ca_;
  std::string ca_pin_;
  RegistryOptions options_;
  Clock& clock_;
  Metrics& metrics_;
  RpcServer rpc_;
  authz::PgAccessStore access_store_;
  authz::Authorizer authz_;
  std::mutex snapshot_mu_;            // one snapshot writer at a time
  int64_t snapshot_next_expiry_ms_ = 0;  // guarded by snapshot_mu_
  bool snapshot_stale_ = false;          // guarded by snapshot_mu_
  // When Start() subscribed to health: the liveness grace period's start.
  std::atomic<int64_t> started_ms_{0};
};

// "node:{ws}:{node}": the broker principal (certificate CN) of a node.
std::string NodePrincipal(const std::string& ws, const std::string& node);

}  // namespace cairn::registry
