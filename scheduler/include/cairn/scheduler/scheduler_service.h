// The scheduler: pipelines and their versions, selector resolution in
// PostgreSQL, per-node retained desired state and per-workspace retained
// pipeline configs. Re-evaluates a workspace when a node joins, changes
// labels, leaves or is revoked (WorkspaceEvents from the registry), and
// rebuilds every retained message from PostgreSQL on (re)connect. Every RPC
// is authorised by authz::Authorizer (role bindings read through the
// registry's read-only view access_bindings): viewer for reads and dry runs,
// operator for applying and deleting pipelines.
// Thread-safety: all entry points serialise on one mutex.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cairn/common/authz.h"
#include "cairn/common/clock.h"
#include "cairn/common/db.h"
#include "cairn/common/metrics.h"
#include "cairn/common/mqtt_client.h"
#include "cairn/common/rpc.h"
#include "cairn/v1/events.pb.h"
#include "cairn/v1/rpc.pb.h"

namespace cairn::scheduler {

class SchedulerService {
 public:
  SchedulerService(Db& db, MqttClient& mqtt, Clock& clock, Metrics& metrics);

  Status Start();
  void OnMessage(const MqttMessage& message);
  // Republishes every retained config and desired state, then reconciles.
  void OnConnected();
  // Re-evaluates every workspace (a safety net for missed events).
  void ReconcileAll();

  Result<v1::ApplyPipelineResponse> ApplyPipeline(const v1::ApplyPipelineRequest& req, const CallContext& ctx);
  Result<v1::PipelineList> ListPipelines(const v1::ListPipelinesRequest& req, const CallContext& ctx);
  Result<v1::Pipeline> GetPipeline(const v1::GetPipelineRequest& req, const CallContext& ctx);
  Result<v1::Empty> DeletePipeline(const v1::DeletePipelineRequest& req, const CallContext& ctx);
  Result<v1::PipelineStatus> GetPipelineStatus(const v1::GetPipelineRequest& req, const CallContext& ctx);

 private:
  struct Change {
    std::vector<std::string> added;
    std::vector<std::string> removed;
  };
  // Recomputes desired state for every node of `ws`; publishes what changed.
  // Returns, per pipeline name, the nodes that gained / lost it.
  Result<std::map<std::string, Change>> Reconcile(const std::string& ws);
  void PublishDesired(const std::string& ws, const std::string& node, const std::string& payload);
  void PublishConfig(const v1::PipelineConfig& config);
  void ClearRetained(const std::string& topic);
  void PublishEvent(v1::WorkspaceEvent event);
  Status Authorize(const CallContext& ctx, const authz::Need& need);
  Result<v1::Pipeline> LoadPipeline(const std::string& ws, const std::string& name);

  Db& db_;
  MqttClient& mqtt_;
  Clock& clock_;
  Metrics& metrics_;
  RpcServer rpc_;
  authz::PgAccessStore access_store_;
  authz::Authorizer authz_;
  std::recursive_mutex mu_;
};

}  // namespace cairn::scheduler
