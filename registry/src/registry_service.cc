#include "cairn/registry/registry_service.h"

#include <spdlog/spdlog.h>

#include "cairn/common/labels_sql.h"
#include "cairn/common/liveness.h"
#include "cairn/registry/pki.h"
#include "queries.h"
#include "cairn/common/events.h"
#include "cairn/common/selector.h"
#include "cairn/common/topics.h"

namespace cairn::registry {
namespace {

constexpr size_t kMaxHealthBytes = 256 * 1024;
constexpr size_t kMaxStatusBytes = 4 * 1024;
constexpr char kTokenPrefix[] = "cairn1.";

const std::string kNodeColumns =
    "workspace, name, state, state_since_ms, created_ms, last_seen_ms, bd_seq,"
    " CASE WHEN health IS NULL THEN '' ELSE encode(health, 'hex') END,"
    " health_ms, health_interval_s, agent_version, cert_expires_ms, " + kLabelsKvSql + ", cert_serial";

v1::Node NodeFromRow(const pqxx::row& r, const liveness::Moment& at) {
  v1::Node n;
  n.set_workspace(r[0].as<std::string>());
  n.set_name(r[1].as<std::string>());
  std::string state = r[2].as<std::string>();
  n.set_state_since_ms(r[3].as<int64_t>());
  n.set_created_ms(r[4].as<int64_t>());
  n.set_last_seen_ms(r[5].as<int64_t>());
  n.set_bd_seq(static_cast<uint64_t>(std::max<int64_t>(0, r[6].as<int64_t>())));
  std::string health_hex = r[7].as<std::string>();
  int64_t health_ms = r[8].as<int64_t>();
  int interval_s = r[9].as<int>();
  n.set_agent_version(r[10].as<std::string>());
  n.set_cert_expires_ms(r[11].as<int64_t>());
  for (auto& [k, v] : ParseLabelsKv(r[12].as<std::string>())) (*n.mutable_labels())[k] = v;
  n.set_cert_serial(r[13].as<std::string>());
  if (!health_hex.empty()) {
    auto raw = tls::HexDecode(health_hex);
    if (raw.ok()) n.mutable_health()->ParseFromString(*raw);
  }
  liveness::NodeFacts facts{state, n.state_since_ms(), n.last_seen_ms(), health_ms, interval_s};
  n.set_state(liveness::NodeLiveness(facts, at));
  return n;
}

// The liveness sweep: facts of every node stored online (see NodeFacts),
// and the conditional update to stale.
constexpr char kOnlineNodeFacts[] =
    "SELECT workspace, name, state_since_ms, last_seen_ms, health_ms, health_interval_s"
    " FROM nodes WHERE state = 'online'";
constexpr char kMarkStale[] =
    "UPDATE nodes SET state = 'stale', state_since_ms = $3"
    " WHERE workspace = $1 AND name = $2 AND state = 'online'"
    " AND state_since_ms = $4 AND last_seen_ms = $5 AND health_ms = $6 RETURNING name";

constexpr char kRecordStart[] =
    "INSERT INTO service_starts (service, started_ms) VALUES ('registry', $1)"
    " ON CONFLICT (service) DO UPDATE SET started_ms = EXCLUDED.started_ms";

constexpr char kDeleteWorkspaceBindings[] = "DELETE FROM role_bindings WHERE workspace = $1";
constexpr char kDeleteWorkspaceCredentials[] = "DELETE FROM integrator_credentials WHERE workspace = $1";
constexpr char kInsertCertificate[] =
    "INSERT INTO node_certificates (serial, workspace, node, issued_ms, expires_ms, issued_by)"
    " VALUES ($1, $2, $3, $4, $5, $6)";

constexpr char kNodeStateForUpdate[] =
    "SELECT state FROM nodes WHERE workspace = $1 AND name = $2 FOR UPDATE";
constexpr char kPrincipalRevoked[] = "SELECT 1 FROM revoked_principals WHERE principal = $1";
constexpr char kSetNodeCertificate[] =
    "UPDATE nodes SET cert_sha256 = $3, cert_expires_ms = $4, cert_serial = $5"
    " WHERE workspace = $1 AND name = $2";
constexpr char kCertificateInWorkspace[] =
    "SELECT node FROM node_certificates WHERE serial = $1 AND workspace = $2";
constexpr char kInsertRevokedSerial[] =
    "INSERT INTO revoked_serials (serial, workspace, at_ms, reason) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT DO NOTHING";
using sql::kInsertAudit;

constexpr char kWorkspaceQuery[] =
    "SELECT w.name, w.description, w.created_ms,"
    " (SELECT count(*) FROM nodes n WHERE n.workspace = w.name) FROM workspaces w";

v1::Workspace WorkspaceFromRow(const pqxx::row& r) {
  v1::Workspace w;
  w.set_name(r[0].as<std::string>());
  w.set_description(r[1].as<std::string>());
  w.set_created_ms(r[2].as<int64_t>());
  w.set_node_count(r[3].as<uint32_t>());
  return w;
}

}  // namespace

std::string NodePrincipal(const std::string& ws, const std::string& node) {
  return topics::NodePrincipal(ws, node);
}

RegistryService::RegistryService(Db& db, MqttClient& mqtt, tls::CertAuthority ca,
                                 RegistryOptions options, Clock& clock, Metrics& metrics)
    : db_(db),
      mqtt_(mqtt),
      ca_(std::move(ca)),
      options_(std::move(options)),
      clock_(clock),
      metrics_(metrics),
      rpc_(mqtt, "registry", metrics),
      access_store_(db),
      authz_(access_store_, clock, metrics, "registry") {
  auto pin = tls::CertSha256(ca_.cert_pem);
  if (pin.ok()) ca_pin_ = *pin;
}

Status RegistryService::Start() {
  started_ms_ = clock_.NowMs();
  if (auto st = db_.Tx([&](pqxx::work& tx) -> Status {
        tx.exec_params(kRecordStart, started_ms_.load());
        return OkStatus();
      });
      !st.ok()) {
    return st;
  }
#define CAIRN_RPC(Method, Req, Resp)                                                   \
  rpc_.Handle<v1::Req, v1::Resp>(#Method, [this](const v1::Req& r, const CallContext& c) { \
    return Method(r, c);                                                               \
  })
  CAIRN_RPC(CreateWorkspace, CreateWorkspaceRequest, Workspace);
  CAIRN_RPC(ListWorkspaces, ListWorkspacesRequest, WorkspaceList);
  CAIRN_RPC(GetWorkspace, GetWorkspaceRequest, Workspace);
  CAIRN_RPC(DeleteWorkspace, DeleteWorkspaceRequest, Empty);
  CAIRN_RPC(CreateToken, CreateTokenRequest, CreateTokenResponse);
  CAIRN_RPC(ListTokens, ListTokensRequest, TokenList);
  CAIRN_RPC(RevokeToken, RevokeTokenRequest, Empty);
  CAIRN_RPC(Bootstrap, BootstrapRequest, BootstrapResponse);
  CAIRN_RPC(ListNodes, ListNodesRequest, NodeList);
  CAIRN_RPC(GetNode, GetNodeRequest, Node);
  CAIRN_RPC(LabelNode, LabelNodeRequest, Node);
  CAIRN_RPC(RevokeNode, RevokeNodeRequest, Empty);
  CAIRN_RPC(RenewCertificate, RenewCertificateRequest, RenewCertificateResponse);
  CAIRN_RPC(RevokeCertificate, RevokeCertificateRequest, Empty);
  CAIRN_RPC(CreateUser, CreateUserRequest, CreateUserResponse);
  CAIRN_RPC(ListUsers, ListUsersRequest, UserList);
  CAIRN_RPC(DeleteUser, DeleteUserRequest, Empty);
  CAIRN_RPC(SetPassword, SetPasswordRequest, SetPasswordResponse);
  CAIRN_RPC(GrantRole, GrantRoleRequest, Empty);
  CAIRN_RPC(RevokeRole, RevokeRoleRequest, Empty);
  CAIRN_RPC(WhoAmI, WhoAmIRequest, WhoAmIResponse);
  CAIRN_RPC(CreateCredential, CreateCredentialRequest, CreateCredentialResponse);
  CAIRN_RPC(ListCredentials, ListCredentialsRequest, CredentialList);
  CAIRN_RPC(RevokeCredential, RevokeCredentialRequest, Empty);
#undef CAIRN_RPC
  if (auto st = rpc_.Start(); !st.ok()) return st;
  if (auto st = mqtt_.Subscribe(topics::AllNodeStatus(), 1); !st.ok()) return st;
  return mqtt_.Subscribe(topics::AllNodeHealth(), 1);
}

void RegistryService::OnConnected() {
  std::vector<std::string> revoked;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    revoked.clear();
    for (const auto& r : tx.exec("SELECT principal FROM revoked_principals")) {
      revoked.push_back(r[0].as<std::string>());
    }
    for (const auto& r : tx.exec("SELECT serial FROM revoked_serials")) {
      revoked.push_back("serial:" + r[0].as<std::string>());
    }
    return OkStatus();
  });
  if (!st.ok()) spdlog::warn("cannot replay revocations: {}", st.error().message);
  for (const auto& p : revoked) PublishRevocation(p);
}

void RegistryService::OnMessage(const MqttMessage& message) {
  if (rpc_.OnMessage(message)) return;
  auto parts = topics::ParseNodeTopic(message.topic);
  if (!parts) return;
  if (parts->kind == topics::NodeTopic::kStatus) {
    OnStatus(parts->ws, parts->node, message);
  } else if (parts->kind == topics::NodeTopic::kHealth) {
    OnHealth(parts->ws, parts->node, message);
  }
}

void RegistryService::Malformed(const std::string& kind, const std::string& topic,
                                const std::string& why) {
  auto n = metrics_.Add("malformed_" + kind);
  spdlog::warn("malformed {} on {}: {} (malformed {} messages so far: {})", kind, topic, why, kind, n);
}

void RegistryService::OnStatus(const std::string& ws, const std::string& node,
                               const MqttMessage& m) {
  if (m.payload.empty()) return;  // retained status cleared
  v1::NodeStatus status;
  if (m.payload.size() > kMaxStatusBytes) return Malformed("status", m.topic, "too large");
  if (!status.ParseFromString(m.payload)) return Malformed("status", m.topic, "not a NodeStatus");
  if (status.bd_seq() > static_cast<uint64_t>(INT64_MAX)) return Malformed("status", m.topic, "bd_seq out of range");
  std::string new_state;
  if (status.state() == v1::NodeStatus::ONLINE) {
    new_state = "online";
  } else if (status.state() == v1::NodeStatus::OFFLINE) {
    new_state = "offline";
  } else {
    return Malformed("status", m.topic, "unknown state");
  }
  int64_t now = clock_.NowMs();
  bool changed = false;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    auto r = tx.exec_params(
        "SELECT state, bd_seq FROM nodes WHERE workspace = $1 AND name = $2 FOR UPDATE", ws, node);
    if (r.empty()) return OkStatus();  // unknown node (deleted workspace, stale retained)
    std::string cur = r[0][0].as<std::string>();
    uint64_t bd_seq = static_cast<uint64_t>(std::max<int64_t>(0, r[0][1].as<int64_t>()));
    if (!liveness::StatusApplies(cur, bd_seq, new_state == "online", status.bd_seq())) return OkStatus();
    changed = cur != new_state;
    tx.exec_params(
        "UPDATE nodes SET state = $3, bd_seq = $4,"
        " last_seen_ms = CASE WHEN $3 = 'online' THEN $5 ELSE last_seen_ms END, agent_version = "
        "CASE WHEN $6 = '' THEN agent_version ELSE $6 END,"
        " state_since_ms = CASE WHEN state = $3 THEN state_since_ms ELSE $5 END"
        " WHERE workspace = $1 AND name = $2",
        ws, node, new_state, static_cast<int64_t>(status.bd_seq()), now, status.agent_version());
    return OkStatus();
  });
  if (!st.ok()) {
    spdlog::error("status of {}/{} not stored: {}", ws, node, st.error().message);
    return;
  }
  if (changed) {
    spdlog::info("node {}/{} is {}", ws, node, new_state);
    v1::WorkspaceEvent ev;
    ev.set_type(v1::WorkspaceEvent::NODE_STATUS_CHANGED);
    ev.set_workspace(ws);
    ev.set_node(node);
    ev.set_state(new_state);
    ev.set_detail(status.reason());
    PublishEvent(std::move(ev));
  }
}

bool HealthReplacesStored(const v1::NodeHealth& incoming, const v1::NodeHealth& stored) {
  if (incoming.timestamp_ms() != stored.timestamp_ms()) return incoming.timestamp_ms() > stored.timestamp_ms();
  return incoming.seq() >= stored.seq();
}

void RegistryService::OnHealth(const std::string& ws, const std::string& node,
                               const MqttMessage& m) {
  if (m.payload.size() > kMaxHealthBytes) return Malformed("health", m.topic, "too large");
  v1::NodeHealth health;
  if (!health.ParseFromString(m.payload)) return Malformed("health", m.topic, "not a NodeHealth");
  int64_t now = clock_.NowMs();
  int interval = health.interval_seconds() > 0 && health.interval_seconds() < 3600
                     ? static_cast<int>(health.interval_seconds())
                     : options_.default_health_interval_s;
  bool became_online = false;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    auto cur = tx.exec_params(
        "SELECT state, encode(health, 'hex') FROM nodes WHERE workspace = $1 AND name = $2 FOR UPDATE", ws, node);
    if (cur.empty() || cur[0][0].as<std::string>() == "revoked") return OkStatus();
    std::string state = cur[0][0].as<std::string>();
    became_online = state == "stale" || state == "new";
    v1::NodeHealth stored;
    if (!cur[0][1].is_null()) {
      auto raw = tls::HexDecode(cur[0][1].as<std::string>());
      if (raw.ok() && stored.ParseFromString(*raw) && !HealthReplacesStored(health, stored)) {
        // An older report (drained from the node's queue): alive, not current.
        tx.exec_params(
            "UPDATE nodes SET last_seen_ms = $3,"
            " state_since_ms = CASE WHEN state IN ('stale', 'new') THEN $3 ELSE state_since_ms END,"
            " state = CASE WHEN state IN ('stale', 'new') THEN 'online' ELSE state END"
            " WHERE workspace = $1 AND name = $2",
            ws, node, now);
        return OkStatus();
      }
    }
    tx.exec_params(
        "UPDATE nodes SET health = decode($3, 'hex'), health_ms = $4, last_seen_ms = $4,"
        " health_interval_s = $5, agent_version = $6,"
        " state_since_ms = CASE WHEN state IN ('stale', 'new') THEN $4 ELSE state_since_ms END,"
        " state = CASE WHEN state IN ('stale', 'new') THEN 'online' ELSE state END"
        " WHERE workspace = $1 AND name = $2",
        ws, node, tls::HexEncode(m.payload), now, interval, health.agent_version());
    return OkStatus();
  });
  if (!st.ok()) {
    spdlog::error("health of {}/{} not stored: {}", ws, node, st.error().message);
    return;
  }
  if (became_online) {
    v1::WorkspaceEvent ev;
    ev.set_type(v1::WorkspaceEvent::NODE_STATUS_CHANGED);
    ev.set_workspace(ws);
    ev.set_node(node);
    ev.set_state("online");
    PublishEvent(std::move(ev));
  }
}

void RegistryService::Sweep() {
  RewriteSnapshotIfDue();
  int64_t now = clock_.NowMs();
  std::vector<std::pair<std::string, std::string>> stale;
  liveness::Moment at{now, started_ms_.load()};
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    stale.clear();
    // The candidates are the nodes stored online; liveness::NodeLiveness
    // decides (no copy of the rule in SQL). The update re-checks the facts
    // it decided on, so a health report stored meanwhile wins.
    for (const auto& row : tx.exec(kOnlineNodeFacts)) {
      liveness::NodeFacts f{"online", row[2].as<int64_t>(), row[3].as<int64_t>(), row[4].as<int64_t>(),
                            row[5].as<int>()};
      if (liveness::NodeLiveness(f, at) != "stale") continue;
      auto ws = row[0].as<std::string>();
      auto name = row[1].as<std::string>();
      auto r = tx.exec_params(kMarkStale, ws, name, now, f.state_since_ms, f.last_seen_ms, f.health_ms);
      if (!r.empty()) stale.emplace_back(ws, name);
    }
    return OkStatus();
  });
  if (!st.ok()) {
    spdlog::warn("liveness sweep failed: {}", st.error().message);
    return;
  }
  for (const auto& [ws, node] : stale) {
    spdlog::info("node {}/{} is stale (no health for 3 intervals)", ws, node);
    v1::WorkspaceEvent ev;
    ev.set_type(v1::WorkspaceEvent::NODE_STATUS_CHANGED);
    ev.set_workspace(ws);
    ev.set_node(node);
    ev.set_state("stale");
    PublishEvent(std::move(ev));
  }
}

Result<authz::Caller> RegistryService::Authorize(const CallContext& ctx, const authz::Need& need) {
  return authz_.Require(ctx.principal, ctx.method, need);
}

void RegistryService::PublishEvent(v1::WorkspaceEvent event) {
  cairn::PublishEvent(mqtt_, clock_, std::move(event));
}

void RegistryService::PublishRevocation(const std::string& principal) {
  MqttMessage m;
  m.topic = std::string(topics::kRoot) + "/sys/revoke";
  m.payload = principal;
  m.qos = 1;
  auto st = mqtt_.Publish(m);
  if (!st.ok()) spdlog::warn("revocation of {} not sent to the broker: {}", principal, st.error().message);
}

// ---- workspaces

Result<v1::Workspace> RegistryService::CreateWorkspace(const v1::CreateWorkspaceRequest& req,
                                                       const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::ClusterRole(policy::Role::kAdmin)); !c.ok()) return c.error();
  if (auto st = topics::ValidateName("workspace", req.name()); !st.ok()) return st.error();
  if (req.description().size() > 1024) return Error::InvalidArgument("description longer than 1024 bytes");
  v1::Workspace ws;
  int64_t now = clock_.NowMs();
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    auto r = tx.exec_params(
        "INSERT INTO workspaces (name, description, created_ms) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO NOTHING RETURNING name",
        req.name(), req.description(), now);
    if (r.empty()) return Error::AlreadyExists("workspace \"" + req.name() + "\" already exists");
    tx.exec_params("INSERT INTO audit_log (at_ms, actor, action, workspace) VALUES ($1, $2, 'workspace.create', $3)",
                   now, ctx.principal, req.name());
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  ws.set_name(req.name());
  ws.set_description(req.description());
  ws.set_created_ms(now);
  spdlog::info("workspace {} created by {}", req.name(), ctx.principal);
  return ws;
}

Result<v1::WorkspaceList> RegistryService::ListWorkspaces(const v1::ListWorkspacesRequest&,
                                                          const CallContext& ctx) {
  auto caller = Authorize(ctx, authz::Need::AnyUser());
  if (!caller.ok()) return caller.error();
  v1::WorkspaceList out;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    for (const auto& r : tx.exec(std::string(kWorkspaceQuery) + " ORDER BY w.name")) {
      // Only the workspaces where the caller has a role.
      if (caller->Sees(r[0].as<std::string>())) *out.add_workspaces() = WorkspaceFromRow(r);
    }
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  return out;
}

Result<v1::Workspace> RegistryService::GetWorkspace(const v1::GetWorkspaceRequest& req,
                                                     const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::RoleIn(policy::Role::kViewer, req.name())); !c.ok()) return c.error();
  v1::Workspace w;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    auto r = tx.exec_params(std::string(kWorkspaceQuery) + " WHERE w.name = $1", req.name());
    if (r.empty()) return Error::NotFound("workspace \"" + req.name() + "\" does not exist");
    w = WorkspaceFromRow(r[0]);
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  return w;
}

Result<v1::Empty> RegistryService::DeleteWorkspace(const v1::DeleteWorkspaceRequest& req,
                                                   const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::RoleIn(policy::Role::kAdmin, req.name())); !c.ok()) return c.error();
  std::vector<std::string> nodes;
  std::vector<std::string> retained;  // topics to clear once the rows are gone
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    nodes.clear();
    retained.clear();
    auto w = tx.exec_params("SELECT 1 FROM workspaces WHERE name = $1 FOR UPDATE", req.name());
    if (w.empty()) return Error::NotFound("workspace \"" + req.name() + "\" does not exist");
    for (const auto& r : tx.exec_params("SELECT name FROM nodes WHERE workspace = $1", req.name())) {
      nodes.push_back(r[0].as<std::string>());
    }
    if (!nodes.empty() && !req.force()) {
      return Error::FailedPrecondition("workspace \"" + req.name() + "\" still has " +
                                       std::to_string(nodes.size()) +
                                       " node(s); revoke them first or use --force");
    }
    for (const auto& r : tx.exec_params("SELECT name, version FROM pipelines WHERE workspace = $1", req.name())) {
      retained.push_back(topics::PipelineConfig(req.name(), r[0].as<std::string>(), r[1].as<uint32_t>()));
    }
    for (const auto& n : nodes) {
      tx.exec_params(
          "INSERT INTO revoked_principals (principal, at_ms, reason) VALUES ($1, $2, 'workspace deleted')"
          " ON CONFLICT DO NOTHING",
          NodePrincipal(req.name(), n), clock_.NowMs());
    }
    tx.exec_params("DELETE FROM node_desired WHERE workspace = $1", req.name());
    tx.exec_params("DELETE FROM pipeline_versions WHERE workspace = $1", req.name());
    // Its role bindings and integrator credentials go with it (the broker
    // learns it from the access snapshot written below).
    tx.exec_params(kDeleteWorkspaceBindings, req.name());
    tx.exec_params(kDeleteWorkspaceCredentials, req.name());
    tx.exec_params("DELETE FROM workspaces WHERE name = $1", req.name());
    tx.exec_params("INSERT INTO audit_log (at_ms, actor, action, workspace, detail) VALUES ($1, $2, 'workspace.delete', $3, $4)",
                   clock_.NowMs(), ctx.principal, req.name(), req.force() ? "force" : "");
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  // Forced: the nodes' certificates still name the workspace; cut them off,
  // and leave no retained state behind for a later workspace of that name.
  for (const auto& n : nodes) {
    PublishRevocation(NodePrincipal(req.name(), n));
    retained.push_back(topics::NodeDesired(req.name(), n));
    retained.push_back(topics::NodeStatus(req.name(), n));
  }
  for (const auto& topic : retained) {
    MqttMessage m;
    m.topic = topic;
    m.qos = 1;
    m.retained = true;
    if (auto s = mqtt_.Publish(m); !s.ok()) spdlog::warn("retained {} not cleared: {}", topic, s.error().message);
  }
  AccessChanged();
  spdlog::info("workspace {} deleted by {} ({} nodes)", req.name(), ctx.principal, nodes.size());
  return v1::Empty();
}

// ---- tokens

Result<v1::CreateTokenResponse> RegistryService::CreateToken(const v1::CreateTokenRequest& req,
                                                             const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::RoleIn(policy::Role::kOperator, req.workspace())); !c.ok()) return c.error();
  Labels labels(req.labels().begin(), req.labels().end());
  if (auto st = ValidateLabels(labels); !st.ok()) return st.error();
  if (req.ttl_seconds() > 10ULL * 365 * 24 * 3600) return Error::InvalidArgument("ttl longer than 10 years");
  if (req.uses() > 1000000) return Error::InvalidArgument("uses must be at most 1000000 (0 = unlimited)");
  if (req.description().size() > 1024) return Error::InvalidArgument("description longer than 1024 bytes");
  if (options_.bootstrap_broker_url.empty()) {
    return Error::FailedPrecondition("registry has no bootstrap_broker_url configured");
  }
  int64_t now = clock_.NowMs();
  std::string id = tls::HexEncode(tls::RandomBytes(6));
  std::string secret = tls::Base64UrlEncode(tls::RandomBytes(32));
  int64_t expires = req.ttl_seconds() ? now + static_cast<int64_t>(req.ttl_seconds()) * 1000 : 0;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    auto w = tx.exec_params("SELECT 1 FROM workspaces WHERE name = $1", req.workspace());
    if (w.empty()) return Error::NotFound("workspace \"" + req.workspace() + "\" does not exist");
    tx.exec_params(
        "INSERT INTO bootstrap_tokens (id, workspace, secret_sha256, labels, description,"
        " created_ms, expires_ms, uses_allowed) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)",
        id, req.workspace(), tls::Sha256Hex(secret), LabelsToJson(labels), req.description(), now,
        expires, static_cast<int>(req.uses()));
    tx.exec_params("INSERT INTO audit_log (at_ms, actor, action, workspace, target) VALUES ($1, $2, 'token.create', $3, $4)",
                   now, ctx.principal, req.workspace(), id);
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  v1::TokenPayload payload;
  payload.set_broker_url(options_.bootstrap_broker_url);
  payload.set_ca_sha256(ca_pin_);
  payload.set_id(id);
  payload.set_secret(secret);
  v1::CreateTokenResponse resp;
  resp.set_token(kTokenPrefix + tls::Base64UrlEncode(payload.SerializeAsString()));
  auto* info = resp.mutable_info();
  info->set_id(id);
  info->set_workspace(req.workspace());
  *info->mutable_labels() = req.labels();
  info->set_created_ms(now);
  info->set_expires_ms(expires);
  info->set_uses_allowed(req.uses());
  info->set_description(req.description());
  spdlog::info("bootstrap token {} created for workspace {} by {}", id, req.workspace(), ctx.principal);
  return resp;
}

Result<v1::TokenList> RegistryService::ListTokens(const v1::ListTokensRequest& req,
                                                  const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::RoleIn(policy::Role::kViewer, req.workspace())); !c.ok()) return c.error();
  v1::TokenList out;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    auto w = tx.exec_params("SELECT 1 FROM workspaces WHERE name = $1", req.workspace());
    if (w.empty()) return Error::NotFound("workspace \"" + req.workspace() + "\" does not exist");
    for (const auto& r : tx.exec_params(
             "SELECT id, workspace, description, created_ms, expires_ms, uses_allowed, uses, revoked, " +
                 kLabelsKvSql + " FROM bootstrap_tokens WHERE workspace = $1 ORDER BY created_ms",
             req.workspace())) {
      auto* t = out.add_tokens();
      t->set_id(r[0].as<std::string>());
      t->set_workspace(r[1].as<std::string>());
      t->set_description(r[2].as<std::string>());
      t->set_created_ms(r[3].as<int64_t>());
      t->set_expires_ms(r[4].as<int64_t>());
      t->set_uses_allowed(r[5].as<uint32_t>());
      t->set_uses(r[6].as<uint32_t>());
      t->set_revoked(r[7].as<bool>());
      for (auto& [k, v] : ParseLabelsKv(r[8].as<std::string>())) (*t->mutable_labels())[k] = v;
    }
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  return out;
}

Result<v1::Empty> RegistryService::RevokeToken(const v1::RevokeTokenRequest& req,
                                               const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::RoleIn(policy::Role::kOperator, req.workspace())); !c.ok()) return c.error();
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    auto r = tx.exec_params(
        "UPDATE bootstrap_tokens SET revoked = true WHERE workspace = $1 AND id = $2 RETURNING id",
        req.workspace(), req.id());
    if (r.empty()) {
      return Error::NotFound("token \"" + req.id() + "\" does not exist in workspace \"" +
                             req.workspace() + "\"");
    }
    tx.exec_params("INSERT INTO audit_log (at_ms, actor, action, workspace, target) VALUES ($1, $2, 'token.revoke', $3, $4)",
                   clock_.NowMs(), ctx.principal, req.workspace(), req.id());
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  return v1::Empty();
}

// ---- bootstrap

Result<v1::BootstrapResponse> RegistryService::Bootstrap(const v1::BootstrapRequest& req,
                                                         const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::Bootstrap()); !c.ok()) return c.error();
  const std::string& token = req.token();
  if (token.rfind(kTokenPrefix, 0) != 0 || token.size() > 4096) {
    return Error::Unauthenticated("bootstrap token is malformed");
  }
  auto raw = tls::Base64UrlDecode(token.substr(sizeof(kTokenPrefix) - 1));
  v1::TokenPayload payload;
  if (!raw.ok() || !payload.ParseFromString(*raw) || payload.id().empty()) {
    return Error::Unauthenticated("bootstrap token is malformed");
  }
  if (auto st = topics::ValidateName("node", req.node_name()); !st.ok()) return st.error();
  Labels node_labels(req.labels().begin(), req.labels().end());
  if (auto st = ValidateLabels(node_labels); !st.ok()) return st.error();
  if (req.csr_pem().size() > 16 * 1024) return Error::InvalidArgument("CSR too large");

  int64_t now = clock_.NowMs();
  v1::BootstrapResponse resp;
  std::string ws;
  Labels merged;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    auto r = tx.exec_params(
        "SELECT workspace, secret_sha256, expires_ms, uses_allowed, uses, revoked, " + kLabelsKvSql +
            " FROM bootstrap_tokens WHERE id = $1 FOR UPDATE",
        payload.id());
    if (r.empty() || !tls::SecureEquals(r[0][1].as<std::string>(), tls::Sha256Hex(payload.secret()))) {
      return Error::Unauthenticated("bootstrap token is not valid");
    }
    ws = r[0][0].as<std::string>();
    // The certificate CN (node:{ws}:{node}) must fit X.509's 64 characters.
    if (NodePrincipal(ws, req.node_name()).size() > 64) {
      return Error::InvalidArgument("node name too long for workspace \"" + ws + "\": workspace and node names together may have at most 58 characters");
    }
    int64_t expires = r[0][2].as<int64_t>();
    int allowed = r[0][3].as<int>();
    int uses = r[0][4].as<int>();
    if (r[0][5].as<bool>()) return Error::Unauthenticated("bootstrap token " + payload.id() + " was revoked");
    if (expires != 0 && now >= expires) {
      return Error::Unauthenticated("bootstrap token " + payload.id() + " has expired");
    }
    if (allowed > 0 && uses >= allowed) {
      return Error::Unauthenticated("bootstrap token " + payload.id() + " has been used up (" +
                                    std::to_string(uses) + " of " + std::to_string(allowed) + " uses)");
    }
    // Preset labels from the token win over labels the node asks for: the
    // operator who made the token decides.
    merged = node_labels;
    for (auto& [k, v] : ParseLabelsKv(r[0][6].as<std::string>())) merged[k] = v;
    auto was_revoked = tx.exec_params("SELECT 1 FROM revoked_principals WHERE principal = $1",
                                      NodePrincipal(ws, req.node_name()));
    if (!was_revoked.empty()) {
      return Error::AlreadyExists("node name \"" + req.node_name() + "\" was revoked in workspace \"" + ws +
                                  "\" and cannot be used again; choose another --name");
    }
    auto exists = tx.exec_params("SELECT state FROM nodes WHERE workspace = $1 AND name = $2",
                                 ws, req.node_name());
    if (!exists.empty()) {
      return Error::AlreadyExists("node \"" + req.node_name() + "\" already exists in workspace \"" +
                                  ws + "\"; choose another --name");
    }
    auto cert = tls::SignClientCsr(ca_, req.csr_pem(), NodePrincipal(ws, req.node_name()),
                                   options_.cert_days);
    if (!cert.ok()) return Error::InvalidArgument("CSR rejected: " + cert.error().message);
    auto fp = tls::CertSha256(*cert);
    auto not_after = tls::CertNotAfterMs(*cert);
    auto serial = CertSerialHex(*cert);
    if (!serial.ok()) return Error::Internal("signed certificate has no serial: " + serial.error().message);
    tx.exec_params(
        "INSERT INTO nodes (workspace, name, labels, state, state_since_ms, created_ms,"
        " agent_version, cert_sha256, cert_expires_ms, cert_serial)"
        " VALUES ($1, $2, $3::jsonb, 'new', $4, $4, $5, $6, $7, $8)",
        ws, req.node_name(), LabelsToJson(merged), now, req.agent_version(),
        fp.ok() ? tls::HexEncode(*fp) : "", not_after.ok() ? *not_after : 0, *serial);
    tx.exec_params(kInsertCertificate, *serial, ws, req.node_name(), now, not_after.ok() ? *not_after : 0,
                   "bootstrap token " + payload.id());
    tx.exec_params("UPDATE bootstrap_tokens SET uses = uses + 1 WHERE id = $1", payload.id());
    tx.exec_params("INSERT INTO audit_log (at_ms, actor, action, workspace, target, detail) VALUES ($1, $2, 'node.bootstrap', $3, $4, $5)",
                   now, ctx.principal, ws, req.node_name(), "token " + payload.id());
    resp.set_certificate_pem(*cert);
    return OkStatus();
  });
  if (!st.ok()) {
    auto n = metrics_.Add("bootstrap_refused");
    spdlog::warn("bootstrap of node \"{}\" refused: {} (refused so far: {})", req.node_name(),
                 st.error().message, n);
    return st.error();
  }
  resp.set_workspace(ws);
  resp.set_node_name(req.node_name());
  resp.set_ca_pem(ca_.cert_pem);
  resp.set_broker_url(options_.node_broker_url);
  for (auto& [k, v] : merged) (*resp.mutable_labels())[k] = v;
  spdlog::info("node {}/{} bootstrapped with token {}", ws, req.node_name(), payload.id());
  v1::WorkspaceEvent ev;
  ev.set_type(v1::WorkspaceEvent::NODE_JOINED);
  ev.set_workspace(ws);
  ev.set_node(req.node_name());
  for (auto& [k, v] : merged) (*ev.mutable_labels())[k] = v;
  PublishEvent(std::move(ev));
  return resp;
}

// ---- nodes

Result<v1::NodeList> RegistryService::ListNodes(const v1::ListNodesRequest& req,
                                                const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::RoleIn(policy::Role::kViewer, req.workspace())); !c.ok()) return c.error();
  auto sel = Selector::Parse(req.selector());
  if (!sel.ok()) return sel.error();
  std::vector<std::string> params{req.workspace()};
  std::string where = sel->ToSql("labels", 2, &params);
  v1::NodeList out;
  int64_t now = clock_.NowMs();
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    auto w = tx.exec_params("SELECT 1 FROM workspaces WHERE name = $1", req.workspace());
    if (w.empty()) return Error::NotFound("workspace \"" + req.workspace() + "\" does not exist");
    auto rows = tx.exec_params(std::string("SELECT ") + kNodeColumns +
                                   " FROM nodes WHERE workspace = $1 AND (" + where + ") ORDER BY name",
                               pqxx::prepare::make_dynamic_params(params));
    for (const auto& r : rows) *out.add_nodes() = NodeFromRow(r, liveness::Moment{now, started_ms_.load()});
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  return out;
}

Result<v1::Node> RegistryService::GetNode(const v1::GetNodeRequest& req, const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::RoleIn(policy::Role::kViewer, req.workspace())); !c.ok()) return c.error();
  v1::Node node;
  int64_t now = clock_.NowMs();
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    auto r = tx.exec_params(std::string("SELECT ") + kNodeColumns +
                                " FROM nodes WHERE workspace = $1 AND name = $2",
                            req.workspace(), req.name());
    if (r.empty()) {
      return Error::NotFound("node \"" + req.name() + "\" does not exist in workspace \"" +
                             req.workspace() + "\"");
    }
    node = NodeFromRow(r[0], liveness::Moment{now, started_ms_.load()});
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  return node;
}

Result<v1::Node> RegistryService::LabelNode(const v1::LabelNodeRequest& req,
                                            const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::RoleIn(policy::Role::kOperator, req.workspace())); !c.ok()) return c.error();
  Labels set(req.set().begin(), req.set().end());
  if (auto st = ValidateLabels(set); !st.ok()) return st.error();
  std::vector<std::string> remove(req.remove().begin(), req.remove().end());
  for (const auto& k : remove) {
    if (auto st = ValidateLabelKey(k); !st.ok()) return st.error();
  }
  v1::Node node;
  int64_t now = clock_.NowMs();
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    auto r = tx.exec_params(
        "UPDATE nodes SET labels = (labels || $3::jsonb) - $4::text[]"
        " WHERE workspace = $1 AND name = $2 AND state <> 'revoked' RETURNING name",
        req.workspace(), req.name(), LabelsToJson(set), TextArrayLiteral(remove));
    if (r.empty()) {
      return Error::NotFound("node \"" + req.name() + "\" does not exist in workspace \"" +
                             req.workspace() + "\" (or is revoked)");
    }
    auto row = tx.exec_params(std::string("SELECT ") + kNodeColumns +
                                  " FROM nodes WHERE workspace = $1 AND name = $2",
                              req.workspace(), req.name());
    node = NodeFromRow(row[0], liveness::Moment{now, started_ms_.load()});
    tx.exec_params("INSERT INTO audit_log (at_ms, actor, action, workspace, target) VALUES ($1, $2, 'node.label', $3, $4)",
                   now, ctx.principal, req.workspace(), req.name());
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  v1::WorkspaceEvent ev;
  ev.set_type(v1::WorkspaceEvent::NODE_LABELS_CHANGED);
  ev.set_workspace(req.workspace());
  ev.set_node(req.name());
  *ev.mutable_labels() = node.labels();
  PublishEvent(std::move(ev));
  return node;
}

Result<v1::Empty> RegistryService::RevokeNode(const v1::RevokeNodeRequest& req,
                                              const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::RoleIn(policy::Role::kOperator, req.workspace())); !c.ok()) return c.error();
  int64_t now = clock_.NowMs();
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    auto r = tx.exec_params(
        "UPDATE nodes SET state = 'revoked', state_since_ms = $3"
        " WHERE workspace = $1 AND name = $2 RETURNING name",
        req.workspace(), req.name(), now);
    if (r.empty()) {
      return Error::NotFound("node \"" + req.name() + "\" does not exist in workspace \"" +
                             req.workspace() + "\"");
    }
    tx.exec_params(
        "INSERT INTO revoked_principals (principal, at_ms, reason) VALUES ($1, $2, 'node revoked')"
        " ON CONFLICT DO NOTHING",
        NodePrincipal(req.workspace(), req.name()), now);
    tx.exec_params("INSERT INTO audit_log (at_ms, actor, action, workspace, target) VALUES ($1, $2, 'node.revoke', $3, $4)",
                   now, ctx.principal, req.workspace(), req.name());
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  PublishRevocation(NodePrincipal(req.workspace(), req.name()));
  v1::WorkspaceEvent ev;
  ev.set_type(v1::WorkspaceEvent::NODE_REVOKED);
  ev.set_workspace(req.workspace());
  ev.set_node(req.name());
  ev.set_state("revoked");
  PublishEvent(std::move(ev));
  spdlog::info("node {}/{} revoked by {}", req.workspace(), req.name(), ctx.principal);
  return v1::Empty();
}

// ---- certificates

Result<v1::RenewCertificateResponse> RegistryService::RenewCertificate(
    const v1::RenewCertificateRequest& req, const CallContext& ctx) {
  auto caller = Authorize(ctx, authz::Need::Node());
  if (!caller.ok()) return caller.error();
  const std::string ws = caller->who.ws;
  const std::string node = caller->who.name;
  if (req.csr_pem().size() > 16 * 1024) return Error::InvalidArgument("CSR too large");
  auto cn = tls::CsrCommonName(req.csr_pem());
  if (!cn.ok()) return Error::InvalidArgument("CSR rejected: " + cn.error().message);
  if (*cn != ctx.principal) {
    metrics_.Add("renewal_refused");
    return Error::PermissionDenied("CSR asks for \"" + *cn + "\" but the caller is " + ctx.principal +
                                   "; a node renews only its own certificate");
  }
  int64_t now = clock_.NowMs();
  v1::RenewCertificateResponse resp;
  std::string serial;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    auto r = tx.exec_params(kNodeStateForUpdate, ws, node);
    if (r.empty()) {
      return Error::NotFound("node \"" + node + "\" does not exist in workspace \"" + ws + "\"");
    }
    auto revoked = tx.exec_params(kPrincipalRevoked, ctx.principal);
    if (r[0][0].as<std::string>() == "revoked" || !revoked.empty()) {
      return Error::PermissionDenied("node " + ctx.principal +
                                     " is revoked; bootstrap again with a new token and another name");
    }
    auto cert = tls::SignClientCsr(ca_, req.csr_pem(), ctx.principal, options_.cert_days);
    if (!cert.ok()) return Error::InvalidArgument("CSR rejected: " + cert.error().message);
    auto fp = tls::CertSha256(*cert);
    auto not_after = tls::CertNotAfterMs(*cert);
    auto sn = CertSerialHex(*cert);
    if (!fp.ok() || !not_after.ok() || !sn.ok()) return Error::Internal("cannot read the new certificate");
    serial = *sn;
    tx.exec_params(kSetNodeCertificate, ws, node, tls::HexEncode(*fp), *not_after, serial);
    tx.exec_params(kInsertCertificate, serial, ws, node, now, *not_after, "renewal");
    tx.exec_params(kInsertAudit, now, ctx.principal, "node.renew-certificate", ws, node, "serial " + serial);
    resp.set_certificate_pem(*cert);
    resp.set_expires_ms(*not_after);
    return OkStatus();
  });
  if (!st.ok()) {
    auto n = metrics_.Add("renewal_refused");
    spdlog::warn("certificate renewal of {} refused: {} (refused so far: {})", ctx.principal, st.error().message, n);
    return st.error();
  }
  resp.set_ca_pem(ca_.cert_pem);
  spdlog::info("node {}/{} renewed its certificate (serial {})", ws, node, serial);
  return resp;
}

Result<v1::Empty> RegistryService::RevokeCertificate(const v1::RevokeCertificateRequest& req,
                                                     const CallContext& ctx) {
  if (auto c = Authorize(ctx, authz::Need::RoleIn(policy::Role::kOperator, req.workspace())); !c.ok()) {
    return c.error();
  }
  auto serial = NormalizeSerial(req.serial());
  if (!serial.ok()) return serial.error();
  int64_t now = clock_.NowMs();
  std::string node;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    auto r = tx.exec_params(kCertificateInWorkspace, *serial, req.workspace());
    if (r.empty()) {
      return Error::NotFound("no certificate with serial " + *serial + " was issued in workspace \"" +
                             req.workspace() + "\"");
    }
    node = r[0][0].as<std::string>();
    tx.exec_params(kInsertRevokedSerial, *serial, req.workspace(), now, "revoked by " + ctx.principal);
    tx.exec_params(kInsertAudit, now, ctx.principal, "certificate.revoke", req.workspace(), node,
                   "serial " + *serial);
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  PublishRevocation("serial:" + *serial);
  spdlog::info("certificate {} of node {}/{} revoked by {}", *serial, req.workspace(), node, ctx.principal);
  return v1::Empty();
}

}  // namespace cairn::registry
