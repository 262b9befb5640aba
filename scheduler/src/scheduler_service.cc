#include "cairn/scheduler/scheduler_service.h"

#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "cairn/common/labels_sql.h"
#include "cairn/common/liveness.h"
#include "cairn/common/pipeline_spec.h"
#include "cairn/common/events.h"
#include "cairn/common/selector.h"
#include "cairn/common/tls.h"
#include "cairn/common/topics.h"

namespace cairn::scheduler {
namespace {

constexpr size_t kMaxEventBytes = 64 * 1024;

bool SameRefs(const v1::DesiredState& a, const v1::DesiredState& b) {
  if (a.pipelines_size() != b.pipelines_size()) return false;
  if (Labels(a.labels().begin(), a.labels().end()) != Labels(b.labels().begin(), b.labels().end())) return false;
  for (int i = 0; i < a.pipelines_size(); ++i) {
    const auto& x = a.pipelines(i);
    const auto& y = b.pipelines(i);
    if (x.name() != y.name() || x.version() != y.version() || x.digest() != y.digest()) return false;
  }
  return true;
}

Status WorkspaceExists(pqxx::work& tx, const std::string& ws) {
  if (tx.exec_params("SELECT 1 FROM workspaces WHERE name = $1", ws).empty()) {
    return Error::NotFound("workspace \"" + ws + "\" does not exist");
  }
  return OkStatus();
}

// Nodes of `ws` (not revoked) matching `selector`, sorted.
Result<std::vector<std::string>> MatchingNodes(pqxx::work& tx, const std::string& ws,
                                               const std::string& selector) {
  auto sel = Selector::Parse(selector);
  if (!sel.ok()) return sel.error();
  std::vector<std::string> params{ws};
  std::string where = sel->ToSql("labels", 2, &params);
  std::vector<std::string> out;
  for (const auto& r : tx.exec_params(
           "SELECT name FROM nodes WHERE workspace = $1 AND state <> 'revoked' AND (" + where +
               ") ORDER BY name",
           pqxx::prepare::make_dynamic_params(params))) {
    out.push_back(r[0].as<std::string>());
  }
  return out;
}

v1::Pipeline PipelineFromRow(const pqxx::row& r) {
  // workspace, name, selector, version, digest, hex(spec), created_ms, updated_ms
  v1::Pipeline p;
  p.set_workspace(r[0].as<std::string>());
  p.set_name(r[1].as<std::string>());
  p.set_selector(r[2].as<std::string>());
  p.set_version(r[3].as<uint32_t>());
  p.set_digest(r[4].as<std::string>());
  auto raw = tls::HexDecode(r[5].as<std::string>());
  if (raw.ok()) p.mutable_spec()->ParseFromString(*raw);
  p.set_created_ms(r[6].as<int64_t>());
  p.set_updated_ms(r[7].as<int64_t>());
  return p;
}

constexpr char kPipelineColumns[] =
    "workspace, name, selector, version, digest, encode(spec, 'hex'), created_ms, updated_ms";

v1::PipelineConfig ConfigOf(const v1::Pipeline& p) {
  v1::PipelineConfig c;
  c.set_name(p.name());
  c.set_workspace(p.workspace());
  c.set_version(p.version());
  c.set_digest(p.digest());
  *c.mutable_spec() = p.spec();
  return c;
}

}  // namespace

SchedulerService::SchedulerService(Db& db, MqttClient& mqtt, Clock& clock, Metrics& metrics)
    : db_(db),
      mqtt_(mqtt),
      clock_(clock),
      metrics_(metrics),
      rpc_(mqtt, "scheduler", metrics),
      access_store_(db),
      authz_(access_store_, clock, metrics, "scheduler") {}

Status SchedulerService::Authorize(const CallContext& ctx, const authz::Need& need) {
  auto caller = authz_.Require(ctx.principal, ctx.method, need);
  if (!caller.ok()) return caller.error();
  return OkStatus();
}

Status SchedulerService::Start() {
#define CAIRN_RPC(Name, Method, Req, Resp)                                               \
  rpc_.Handle<v1::Req, v1::Resp>(#Name, [this](const v1::Req& r, const CallContext& c) { \
    return Method(r, c);                                                                 \
  })
  CAIRN_RPC(ApplyPipeline, ApplyPipeline, ApplyPipelineRequest, ApplyPipelineResponse);
  CAIRN_RPC(ListPipelines, ListPipelines, ListPipelinesRequest, PipelineList);
  CAIRN_RPC(GetPipeline, GetPipeline, GetPipelineRequest, Pipeline);
  CAIRN_RPC(DeletePipeline, DeletePipeline, DeletePipelineRequest, Empty);
  CAIRN_RPC(PipelineStatus, GetPipelineStatus, GetPipelineRequest, PipelineStatus);
#undef CAIRN_RPC
  if (auto st = rpc_.Start(); !st.ok()) return st;
  return mqtt_.Subscribe(topics::AllEvents(), 1);
}

void SchedulerService::OnMessage(const MqttMessage& message) {
  if (rpc_.OnMessage(message)) return;
  auto ws = topics::ParseEventsTopic(message.topic);
  if (!ws) return;
  std::string principal = message.UserProperty(kPrincipalProperty);
  if (principal.rfind("svc:", 0) != 0) {
    auto n = metrics_.Add("events_from_non_service");
    spdlog::warn("event on {} from {} ignored (events from non-services: {})", message.topic, principal, n);
    return;
  }
  v1::WorkspaceEvent ev;
  if (message.payload.size() > kMaxEventBytes || !ev.ParseFromString(message.payload)) {
    auto n = metrics_.Add("malformed_event");
    spdlog::warn("malformed event on {} (malformed events so far: {})", message.topic, n);
    return;
  }
  switch (ev.type()) {
    case v1::WorkspaceEvent::NODE_JOINED:
    case v1::WorkspaceEvent::NODE_LEFT:
    case v1::WorkspaceEvent::NODE_LABELS_CHANGED:
    case v1::WorkspaceEvent::NODE_REVOKED: {
      auto r = Reconcile(*ws);
      if (!r.ok()) spdlog::error("reconcile of {} failed: {}", *ws, r.error().message);
      break;
    }
    default:
      break;
  }
}

void SchedulerService::OnConnected() {
  std::lock_guard lock(mu_);
  std::vector<v1::Pipeline> pipelines;
  std::vector<std::tuple<std::string, std::string, std::string>> desired;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    pipelines.clear();
    desired.clear();
    for (const auto& r : tx.exec(std::string("SELECT ") + kPipelineColumns + " FROM pipelines")) {
      pipelines.push_back(PipelineFromRow(r));
    }
    for (const auto& r : tx.exec("SELECT workspace, node, encode(desired, 'hex') FROM node_desired")) {
      desired.emplace_back(r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>());
    }
    return OkStatus();
  });
  if (!st.ok()) {
    spdlog::error("cannot rebuild retained state: {}", st.error().message);
    return;
  }
  for (const auto& p : pipelines) PublishConfig(ConfigOf(p));
  for (const auto& [ws, node, hex] : desired) {
    auto raw = tls::HexDecode(hex);
    if (raw.ok()) PublishDesired(ws, node, *raw);
  }
  spdlog::info("republished {} pipeline configs and {} desired states", pipelines.size(), desired.size());
  ReconcileAll();
}

void SchedulerService::ReconcileAll() {
  std::lock_guard lock(mu_);
  std::vector<std::string> workspaces;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    for (const auto& r : tx.exec("SELECT name FROM workspaces")) workspaces.push_back(r[0].as<std::string>());
    return OkStatus();
  });
  if (!st.ok()) {
    spdlog::warn("reconcile: {}", st.error().message);
    return;
  }
  for (const auto& ws : workspaces) {
    auto r = Reconcile(ws);
    if (!r.ok()) spdlog::warn("reconcile of {}: {}", ws, r.error().message);
  }
}

Result<std::map<std::string, SchedulerService::Change>> SchedulerService::Reconcile(const std::string& ws) {
  std::lock_guard lock(mu_);
  std::map<std::string, Change> changes;
  std::vector<std::pair<std::string, std::string>> to_publish;  // node, payload
  std::vector<std::string> to_clear;
  int64_t now = clock_.NowMs();
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    changes.clear();
    to_publish.clear();
    to_clear.clear();
    // Serialise reconciles of one workspace across scheduler replicas.
    tx.exec_params("SELECT pg_advisory_xact_lock(7310002, hashtext($1))", ws);
    std::map<std::string, v1::DesiredState> want;
    for (const auto& r : tx.exec_params(
             "SELECT name, " + kLabelsKvSql + " FROM nodes WHERE workspace = $1 AND state <> 'revoked'",
             ws)) {
      auto& d = want[r[0].as<std::string>()];
      for (auto& [k, v] : ParseLabelsKv(r[1].as<std::string>())) (*d.mutable_labels())[k] = v;
    }
    for (const auto& r : tx.exec_params(
             "SELECT name, selector, version, digest FROM pipelines WHERE workspace = $1 ORDER BY name", ws)) {
      std::string name = r[0].as<std::string>();
      auto nodes = MatchingNodes(tx, ws, r[1].as<std::string>());
      if (!nodes.ok()) {
        spdlog::error("pipeline {}/{} has an invalid stored selector: {}", ws, name, nodes.error().message);
        continue;
      }
      for (const auto& n : *nodes) {
        auto* ref = want[n].add_pipelines();
        ref->set_name(name);
        ref->set_version(r[2].as<uint32_t>());
        ref->set_digest(r[3].as<std::string>());
      }
    }
    std::map<std::string, std::pair<uint64_t, v1::DesiredState>> have;
    for (const auto& r : tx.exec_params(
             "SELECT node, generation, encode(desired, 'hex') FROM node_desired WHERE workspace = $1", ws)) {
      v1::DesiredState d;
      auto raw = tls::HexDecode(r[2].as<std::string>());
      if (raw.ok()) d.ParseFromString(*raw);
      have[r[0].as<std::string>()] = {r[1].as<uint64_t>(), d};
    }
    auto names_of = [](const v1::DesiredState& d) {
      std::set<std::string> s;
      for (const auto& p : d.pipelines()) s.insert(p.name());
      return s;
    };
    for (auto& [node, d] : want) {
      auto it = have.find(node);
      if (it != have.end() && SameRefs(it->second.second, d)) continue;
      uint64_t gen = it == have.end() ? 1 : it->second.first + 1;
      d.set_generation(gen);
      d.set_updated_ms(now);
      std::set<std::string> before = it == have.end() ? std::set<std::string>{} : names_of(it->second.second);
      std::set<std::string> after = names_of(d);
      for (const auto& p : after) if (!before.count(p)) changes[p].added.push_back(node);
      for (const auto& p : before) if (!after.count(p)) changes[p].removed.push_back(node);
      std::string payload = d.SerializeAsString();
      tx.exec_params(
          "INSERT INTO node_desired (workspace, node, generation, desired, updated_ms)"
          " VALUES ($1, $2, $3, decode($4, 'hex'), $5)"
          " ON CONFLICT (workspace, node) DO UPDATE SET generation = EXCLUDED.generation,"
          " desired = EXCLUDED.desired, updated_ms = EXCLUDED.updated_ms",
          ws, node, static_cast<int64_t>(gen), tls::HexEncode(payload), now);
      to_publish.emplace_back(node, payload);
    }
    for (const auto& [node, prev] : have) {
      if (want.count(node)) continue;
      for (const auto& p : prev.second.pipelines()) changes[p.name()].removed.push_back(node);
      tx.exec_params("DELETE FROM node_desired WHERE workspace = $1 AND node = $2", ws, node);
      to_clear.push_back(node);
    }
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  for (const auto& [node, payload] : to_publish) PublishDesired(ws, node, payload);
  for (const auto& node : to_clear) ClearRetained(topics::NodeDesired(ws, node));
  if (!to_publish.empty() || !to_clear.empty()) {
    spdlog::info("workspace {}: desired state updated for {} node(s), cleared for {}", ws,
                 to_publish.size(), to_clear.size());
  }
  return changes;
}

void SchedulerService::PublishDesired(const std::string& ws, const std::string& node,
                                      const std::string& payload) {
  MqttMessage m;
  m.topic = topics::NodeDesired(ws, node);
  m.payload = payload;
  m.qos = 1;
  m.retained = true;
  m.content_type = "cairn.v1.DesiredState";
  if (auto st = mqtt_.Publish(m); !st.ok()) spdlog::warn("desired state not published: {}", st.error().message);
}

void SchedulerService::PublishConfig(const v1::PipelineConfig& config) {
  MqttMessage m;
  m.topic = topics::PipelineConfig(config.workspace(), config.name(), config.version());
  m.payload = config.SerializeAsString();
  m.qos = 1;
  m.retained = true;
  m.content_type = "cairn.v1.PipelineConfig";
  if (auto st = mqtt_.Publish(m); !st.ok()) spdlog::warn("pipeline config not published: {}", st.error().message);
}

void SchedulerService::ClearRetained(const std::string& topic) {
  MqttMessage m;
  m.topic = topic;
  m.qos = 1;
  m.retained = true;
  if (auto st = mqtt_.Publish(m); !st.ok()) spdlog::warn("retained {} not cleared: {}", topic, st.error().message);
}

void SchedulerService::PublishEvent(v1::WorkspaceEvent event) {
  cairn::PublishEvent(mqtt_, clock_, std::move(event));
}

Result<v1::ApplyPipelineResponse> SchedulerService::ApplyPipeline(const v1::ApplyPipelineRequest& req,
                                                                  const CallContext& ctx) {
  // A dry run changes nothing: a viewer may see what would change.
  auto need_role = req.dry_run() ? policy::Role::kViewer : policy::Role::kOperator;
  if (auto st = Authorize(ctx, authz::Need::RoleIn(need_role, req.pipeline().workspace())); !st.ok()) {
    return st.error();
  }
  std::lock_guard lock(mu_);
  v1::Pipeline p = req.pipeline();
  if (auto st = topics::ValidateName("pipeline", p.name()); !st.ok()) return st.error();
  if (auto st = topics::ValidateName("workspace", p.workspace()); !st.ok()) return st.error();
  auto sel = Selector::Parse(p.selector());
  if (!sel.ok()) return sel.error();
  p.set_selector(sel->ToString());
  if (auto st = ValidatePipelineSpec(p.spec()); !st.ok()) return st.error();
  p.set_digest(PipelineDigest(p.spec()));
  int64_t now = clock_.NowMs();

  v1::ApplyPipelineResponse resp;
  bool changed = false;
  std::vector<std::string> before;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    if (auto s = WorkspaceExists(tx, p.workspace()); !s.ok()) return s;
    auto cur = tx.exec_params(std::string("SELECT ") + kPipelineColumns +
                                  " FROM pipelines WHERE workspace = $1 AND name = $2 FOR UPDATE",
                              p.workspace(), p.name());
    auto targeted = MatchingNodes(tx, p.workspace(), p.selector());
    if (!targeted.ok()) return targeted.error();
    for (const auto& n : *targeted) resp.add_targeted_nodes(n);
    if (!cur.empty()) {
      v1::Pipeline old = PipelineFromRow(cur[0]);
      p.set_created_ms(old.created_ms());
      if (old.digest() == p.digest() && old.selector() == p.selector()) {
        p = old;
        return OkStatus();
      }
      p.set_version(old.version() + 1);
    } else {
      // Versions are never reused, also after a delete: a retained config
      // topic .../{name}/{version} always means one spec.
      auto last = tx.exec_params(
          "SELECT COALESCE(max(version), 0) FROM pipeline_versions WHERE workspace = $1 AND name = $2",
          p.workspace(), p.name());
      p.set_version(last[0][0].as<uint32_t>() + 1);
      p.set_created_ms(now);
    }
    changed = true;
    p.set_updated_ms(now);
    if (req.dry_run()) return OkStatus();
    std::string spec_hex = tls::HexEncode(p.spec().SerializeAsString());
    tx.exec_params(
        "INSERT INTO pipelines (workspace, name, selector, version, digest, spec, created_ms, updated_ms)"
        " VALUES ($1, $2, $3, $4, $5, decode($6, 'hex'), $7, $8)"
        " ON CONFLICT (workspace, name) DO UPDATE SET selector = EXCLUDED.selector,"
        " version = EXCLUDED.version, digest = EXCLUDED.digest, spec = EXCLUDED.spec,"
        " updated_ms = EXCLUDED.updated_ms",
        p.workspace(), p.name(), p.selector(), static_cast<int>(p.version()), p.digest(), spec_hex,
        p.created_ms(), now);
    tx.exec_params(
        "INSERT INTO pipeline_versions (workspace, name, version, selector, digest, spec, created_ms)"
        " VALUES ($1, $2, $3, $4, $5, decode($6, 'hex'), $7) ON CONFLICT DO NOTHING",
        p.workspace(), p.name(), static_cast<int>(p.version()), p.selector(), p.digest(), spec_hex, now);
    tx.exec_params(
        "INSERT INTO audit_log (at_ms, actor, action, workspace, target, detail)"
        " VALUES ($1, $2, 'pipeline.apply', $3, $4, $5)",
        now, ctx.principal, p.workspace(), p.name(), "version " + std::to_string(p.version()));
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  resp.set_changed(changed);
  if (req.dry_run() || !changed) {
    *resp.mutable_pipeline() = p;
    return resp;
  }
  PublishConfig(ConfigOf(p));
  auto changes = Reconcile(p.workspace());
  if (!changes.ok()) return changes.error();
  for (const auto& n : (*changes)[p.name()].added) resp.add_added_nodes(n);
  for (const auto& n : (*changes)[p.name()].removed) resp.add_removed_nodes(n);
  // The previous version's config is no longer referenced by any desired state.
  if (p.version() > 1) ClearRetained(topics::PipelineConfig(p.workspace(), p.name(), p.version() - 1));
  *resp.mutable_pipeline() = p;
  v1::WorkspaceEvent ev;
  ev.set_type(v1::WorkspaceEvent::PIPELINE_APPLIED);
  ev.set_workspace(p.workspace());
  ev.set_pipeline(p.name());
  ev.set_detail("version " + std::to_string(p.version()));
  PublishEvent(std::move(ev));
  spdlog::info("pipeline {}/{} version {} applied by {}: {} node(s) targeted", p.workspace(), p.name(),
               p.version(), ctx.principal, resp.targeted_nodes_size());
  return resp;
}

Result<v1::PipelineList> SchedulerService::ListPipelines(const v1::ListPipelinesRequest& req,
                                                         const CallContext& ctx) {
  if (auto st = Authorize(ctx, authz::Need::RoleIn(policy::Role::kViewer, req.workspace())); !st.ok()) {
    return st.error();
  }
  v1::PipelineList out;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    if (auto s = WorkspaceExists(tx, req.workspace()); !s.ok()) return s;
    for (const auto& r : tx.exec_params(std::string("SELECT ") + kPipelineColumns +
                                            " FROM pipelines WHERE workspace = $1 ORDER BY name",
                                        req.workspace())) {
      *out.add_pipelines() = PipelineFromRow(r);
    }
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  return out;
}

Result<v1::Pipeline> SchedulerService::GetPipeline(const v1::GetPipelineRequest& req,
                                                   const CallContext& ctx) {
  if (auto st = Authorize(ctx, authz::Need::RoleIn(policy::Role::kViewer, req.workspace())); !st.ok()) {
    return st.error();
  }
  return LoadPipeline(req.workspace(), req.name());
}

Result<v1::Pipeline> SchedulerService::LoadPipeline(const std::string& ws, const std::string& name) {
  v1::Pipeline p;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    auto r = tx.exec_params(std::string("SELECT ") + kPipelineColumns +
                                " FROM pipelines WHERE workspace = $1 AND name = $2",
                            ws, name);
    if (r.empty()) {
      return Error::NotFound("pipeline \"" + name + "\" does not exist in workspace \"" + ws + "\"");
    }
    p = PipelineFromRow(r[0]);
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  return p;
}

Result<v1::Empty> SchedulerService::DeletePipeline(const v1::DeletePipelineRequest& req,
                                                   const CallContext& ctx) {
  if (auto st = Authorize(ctx, authz::Need::RoleIn(policy::Role::kOperator, req.workspace())); !st.ok()) {
    return st.error();
  }
  std::lock_guard lock(mu_);
  uint32_t version = 0;
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    auto r = tx.exec_params(
        "DELETE FROM pipelines WHERE workspace = $1 AND name = $2 RETURNING version", req.workspace(),
        req.name());
    if (r.empty()) {
      return Error::NotFound("pipeline \"" + req.name() + "\" does not exist in workspace \"" +
                             req.workspace() + "\"");
    }
    version = r[0][0].as<uint32_t>();
    tx.exec_params(
        "INSERT INTO audit_log (at_ms, actor, action, workspace, target) VALUES ($1, $2, 'pipeline.delete', $3, $4)",
        clock_.NowMs(), ctx.principal, req.workspace(), req.name());
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  auto changes = Reconcile(req.workspace());
  if (!changes.ok()) return changes.error();
  ClearRetained(topics::PipelineConfig(req.workspace(), req.name(), version));
  v1::WorkspaceEvent ev;
  ev.set_type(v1::WorkspaceEvent::PIPELINE_DELETED);
  ev.set_workspace(req.workspace());
  ev.set_pipeline(req.name());
  PublishEvent(std::move(ev));
  spdlog::info("pipeline {}/{} deleted by {}", req.workspace(), req.name(), ctx.principal);
  return v1::Empty();
}

Result<v1::PipelineStatus> SchedulerService::GetPipelineStatus(const v1::GetPipelineRequest& req,
                                                               const CallContext& ctx) {
  if (auto st = Authorize(ctx, authz::Need::RoleIn(policy::Role::kViewer, req.workspace())); !st.ok()) {
    return st.error();
  }
  auto p = LoadPipeline(req.workspace(), req.name());
  if (!p.ok()) return p.error();
  v1::PipelineStatus out;
  out.set_name(p->name());
  out.set_workspace(p->workspace());
  out.set_version(p->version());
  int64_t now = clock_.NowMs();
  auto st = db_.Tx([&](pqxx::work& tx) -> Status {
    for (const auto& r : tx.exec_params(
             "SELECT d.node, d.generation, encode(d.desired, 'hex'), n.state,"
             " CASE WHEN n.health IS NULL THEN '' ELSE encode(n.health, 'hex') END,"
             " n.health_ms, n.health_interval_s, n.state_since_ms, n.last_seen_ms,"
             " COALESCE((SELECT started_ms FROM service_starts WHERE service = 'registry'), 0)"
             " FROM node_desired d JOIN nodes n ON n.workspace = d.workspace AND n.name = d.node"
             " WHERE d.workspace = $1 ORDER BY d.node",
             req.workspace())) {
      v1::DesiredState d;
      auto raw = tls::HexDecode(r[2].as<std::string>());
      if (!raw.ok() || !d.ParseFromString(*raw)) continue;
      bool targeted = std::any_of(d.pipelines().begin(), d.pipelines().end(),
                                  [&](const v1::PipelineRef& ref) { return ref.name() == p->name(); });
      if (!targeted) continue;
      v1::PipelineNodeStatus* ns = out.add_nodes();
      ns->set_node(r[0].as<std::string>());
      // The registry's rule, with the registry's start for its grace period.
      liveness::NodeFacts facts{r[3].as<std::string>(), r[7].as<int64_t>(), r[8].as<int64_t>(),
                                r[5].as<int64_t>(), r[6].as<int>()};
      std::string state = liveness::NodeLiveness(facts, {now, r[9].as<int64_t>()});
      ns->set_node_state(state);
      out.set_targeted(out.targeted() + 1);
      v1::NodeHealth h;
      std::string hh = r[4].as<std::string>();
      bool have_health = false;
      if (!hh.empty()) {
        auto hraw = tls::HexDecode(hh);
        have_health = hraw.ok() && h.ParseFromString(*hraw);
      }
      std::string status = "pending";
      if (have_health && state != "offline" && state != "revoked" &&
          h.applied_generation() >= static_cast<uint64_t>(r[1].as<int64_t>())) {
        status = "applied";
        out.set_applied(out.applied() + 1);
        for (const auto& ph : h.pipelines()) {
          if (ph.name() != p->name()) continue;
          ns->set_applied_version(ph.version());
          if (ph.version() != p->version()) break;
          if (ph.state() == v1::PipelineHealth::RUNNING) {
            status = "running";
            out.set_running(out.running() + 1);
          } else if (ph.state() == v1::PipelineHealth::FAILED) {
            status = "failed";
            ns->set_last_error(ph.last_error());
            out.set_failed(out.failed() + 1);
          }
        }
      } else {
        out.set_pending(out.pending() + 1);
      }
      ns->set_status(status);
    }
    return OkStatus();
  });
  if (!st.ok()) return st.error();
  return out;
}

}  // namespace cairn::scheduler
