// cairnctl commands for the fleet: workspaces, bootstrap tokens, nodes,
// pipelines and the event stream.
#include <ctime>
#include <iterator>

#include <google/protobuf/util/json_util.h>

#include "cairn/common/clock.h"
#include "cairn/common/config.h"
#include "cairn/common/files.h"
#include "cairn/common/pipeline_spec.h"
#include "cairn/common/selector.h"
#include "cairn/common/topics.h"
#include "cairn/ctl/command_line.h"
#include "cairn/ctl/format.h"
#include "cairn/v1/events.pb.h"
#include "cairn/v1/node.pb.h"
#include "cairn/v1/rpc.pb.h"
#include "session.h"

namespace cairn::ctl {
namespace {

const char* PipelineStateName(v1::PipelineHealth::State state) {
  switch (state) {
    case v1::PipelineHealth::RUNNING: return "running";
    case v1::PipelineHealth::FAILED: return "failed";
    case v1::PipelineHealth::PENDING: return "pending";
    default: return "stopped";
  }
}

std::string PipelineSummary(const v1::NodeHealth& h) {
  if (h.pipelines_size() == 0) return "-";
  std::string s;
  for (const auto& p : h.pipelines()) {
    if (!s.empty()) s += ",";
    s += p.name() + ":" + PipelineStateName(p.state());
  }
  return s;
}

const char* EventTypeName(v1::WorkspaceEvent::Type t) {
  switch (t) {
    case v1::WorkspaceEvent::NODE_JOINED: return "node-joined";
    case v1::WorkspaceEvent::NODE_LEFT: return "node-left";
    case v1::WorkspaceEvent::NODE_STATUS_CHANGED: return "node-status";
    case v1::WorkspaceEvent::NODE_LABELS_CHANGED: return "node-labels";
    case v1::WorkspaceEvent::NODE_REVOKED: return "node-revoked";
    case v1::WorkspaceEvent::PIPELINE_APPLIED: return "pipeline-applied";
    case v1::WorkspaceEvent::PIPELINE_DELETED: return "pipeline-deleted";
    default: return "unknown";
  }
}

const char* LogLevelName(v1::LogLine::Level level) {
  switch (level) {
    case v1::LogLine::DEBUG: return "DEBUG";
    case v1::LogLine::INFO: return "INFO ";
    case v1::LogLine::WARN: return "WARN ";
    case v1::LogLine::ERROR: return "ERROR";
    default: return "?    ";
  }
}

// "2026-12-02T08:32:36.658Z" (UTC).
std::string UtcMillis(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

// One batch of a node's log as text: a line per log line, then what the
// node dropped. Everything the node wrote goes through Printable().
std::string FormatNodeLogs(const v1::NodeLogs& logs) {
  std::string s;
  for (const auto& l : logs.lines()) {
    s += UtcMillis(l.timestamp_ms()) + "  " + LogLevelName(l.level()) + "  " +
         (l.pipeline().empty() ? std::string("node") : "pipeline/" + Printable(l.pipeline())) + "  " +
         Printable(l.text()) + (l.truncated() ? " [cut]" : "") + "\n";
  }
  if (logs.dropped() > 0) {
    s += "-- the node dropped " + std::to_string(logs.dropped()) + " line(s) here (rate limit or full buffer; " +
         std::to_string(logs.dropped_total()) + " since it started)\n";
  }
  return s;
}

}  // namespace

Status Ctl::WorkspaceCmd(const std::string& verb, const Args& a) {
  int64_t now = SystemClock::Instance().NowMs();
  if (verb == "create") {
    CAIRN_TRY(NeedArgs(a, 1, "workspace create NAME [--description TEXT]"));
    v1::CreateWorkspaceRequest req;
    req.set_name(a.pos[0]);
    req.set_description(a.Flag("description"));
    auto r = Call<v1::Workspace>("registry", "CreateWorkspace", req);
    if (!r.ok()) return r.error();
    if (Json()) PrintJson(*r); else out_ << "workspace " << Printable(r->name()) << " created\n";
    return OkStatus();
  }
  if (verb == "list") {
    auto r = Call<v1::WorkspaceList>("registry", "ListWorkspaces", v1::ListWorkspacesRequest());
    if (!r.ok()) return r.error();
    if (Json()) { PrintJson(*r); return OkStatus(); }
    std::vector<std::vector<std::string>> rows;
    for (const auto& w : r->workspaces()) {
      rows.push_back({w.name(), std::to_string(w.node_count()), Age(w.created_ms(), now), w.description()});
    }
    out_ << Table({"NAME", "NODES", "AGE", "DESCRIPTION"}, rows);
    return OkStatus();
  }
  if (verb == "get") {
    CAIRN_TRY(NeedArgs(a, 1, "workspace get NAME"));
    v1::GetWorkspaceRequest req;
    req.set_name(a.pos[0]);
    auto r = Call<v1::Workspace>("registry", "GetWorkspace", req);
    if (!r.ok()) return r.error();
    if (Json()) { PrintJson(*r); return OkStatus(); }
    out_ << "name:         " << Printable(r->name()) << "\ndescription:  " << Printable(r->description())
         << "\nnodes:        " << r->node_count() << "\nage:          " << Age(r->created_ms(), now) << "\n";
    return OkStatus();
  }
  if (verb == "delete") {
    CAIRN_TRY(NeedArgs(a, 1, "workspace delete NAME [--force]"));
    v1::DeleteWorkspaceRequest req;
    req.set_name(a.pos[0]);
    req.set_force(a.Bool("force"));
    auto r = Call<v1::Empty>("registry", "DeleteWorkspace", req);
    if (!r.ok()) return r.error();
    out_ << "workspace " << Printable(a.pos[0]) << " deleted\n";
    return OkStatus();
  }
  return Error::InvalidArgument("unknown command: workspace " + verb);
}

Status Ctl::TokenCmd(const std::string& verb, const Args& a) {
  auto ws = Workspace();
  if (!ws.ok()) return ws.error();
  int64_t now = SystemClock::Instance().NowMs();
  if (verb == "create") {
    CAIRN_TRY(NeedArgs(a, 0, "token create [--label k=v]... [--ttl DURATION] [--uses N] [--description TEXT]"));
    v1::CreateTokenRequest req;
    req.set_workspace(*ws);
    for (const auto& kv : a.All("label")) {
      auto p = ParseKeyValue(kv);
      if (!p.ok()) return p.error();
      (*req.mutable_labels())[p->first] = p->second;
    }
    auto ttl = ParseTtlSeconds(a.Flag("ttl", "24h"));
    if (!ttl.ok()) return ttl.error();
    req.set_ttl_seconds(*ttl);
    auto uses = ParseUses(a.Flag("uses", "1"));
    if (!uses.ok()) return uses.error();
    req.set_uses(*uses);
    req.set_description(a.Flag("description"));
    auto r = Call<v1::CreateTokenResponse>("registry", "CreateToken", req);
    if (!r.ok()) return r.error();
    if (Json()) PrintJson(*r); else out_ << Printable(r->token()) << "\n";
    return OkStatus();
  }
  if (verb == "list") {
    v1::ListTokensRequest req;
    req.set_workspace(*ws);
    auto r = Call<v1::TokenList>("registry", "ListTokens", req);
    if (!r.ok()) return r.error();
    if (Json()) { PrintJson(*r); return OkStatus(); }
    std::vector<std::vector<std::string>> rows;
    for (const auto& t : r->tokens()) {
      std::string state = t.revoked() ? "revoked"
                          : (t.expires_ms() && t.expires_ms() <= now) ? "expired"
                          : (t.uses_allowed() && t.uses() >= t.uses_allowed()) ? "used-up"
                                                                               : "valid";
      std::string uses = std::to_string(t.uses()) + "/" + (t.uses_allowed() ? std::to_string(t.uses_allowed()) : "∞");
      std::string expires = t.expires_ms() ? (t.expires_ms() > now ? "in " + Age(now, t.expires_ms()) : "expired") : "never";
      rows.push_back({t.id(), state, uses, expires,
                      LabelString({t.labels().begin(), t.labels().end()}), t.description()});
    }
    out_ << Table({"ID", "STATE", "USES", "EXPIRES", "LABELS", "DESCRIPTION"}, rows);
    return OkStatus();
  }
  if (verb == "revoke") {
    CAIRN_TRY(NeedArgs(a, 1, "token revoke ID"));
    v1::RevokeTokenRequest req;
    req.set_workspace(*ws);
    req.set_id(a.pos[0]);
    auto r = Call<v1::Empty>("registry", "RevokeToken", req);
    if (!r.ok()) return r.error();
    out_ << "token " << Printable(a.pos[0]) << " revoked\n";
    return OkStatus();
  }
  return Error::InvalidArgument("unknown command: token " + verb);
}

Status Ctl::NodeCmd(const std::string& verb, const Args& a) {
  auto ws = Workspace();
  if (!ws.ok()) return ws.error();
  int64_t now = SystemClock::Instance().NowMs();
  if (verb == "list") {
    CAIRN_TRY(NeedArgs(a, 0, "node list [-l SELECTOR]"));
    v1::ListNodesRequest req;
    req.set_workspace(*ws);
    req.set_selector(a.Flag("l"));
    auto sel = Selector::Parse(req.selector());  // fail fast with the parser's message
    if (!sel.ok()) return sel.error();
    auto r = Call<v1::NodeList>("registry", "ListNodes", req);
    if (!r.ok()) return r.error();
    if (Json()) { PrintJson(*r); return OkStatus(); }
    std::vector<std::vector<std::string>> rows;
    for (const auto& n : r->nodes()) {
      const auto& h = n.health();
      std::string cpu = n.has_health() ? std::to_string(static_cast<int>(h.cpu_percent())) + "%" : "-";
      std::string mem = n.has_health() ? Bytes(h.memory_used_bytes()) + "/" + Bytes(h.memory_total_bytes()) : "-";
      rows.push_back({n.name(), n.state(), Age(n.last_seen_ms(), now), cpu, mem, PipelineSummary(h),
                      LabelString({n.labels().begin(), n.labels().end()})});
    }
    out_ << Table({"NAME", "STATE", "SEEN", "CPU", "MEMORY", "PIPELINES", "LABELS"}, rows);
    return OkStatus();
  }
  if (verb == "get") {
    CAIRN_TRY(NeedArgs(a, 1, "node get NAME"));
    v1::GetNodeRequest req;
    req.set_workspace(*ws);
    req.set_name(a.pos[0]);
    auto r = Call<v1::Node>("registry", "GetNode", req);
    if (!r.ok()) return r.error();
    if (Json()) { PrintJson(*r); return OkStatus(); }
    const auto& h = r->health();
    out_ << "name:        " << Printable(r->name()) << "\nworkspace:   " << Printable(r->workspace())
         << "\nstate:       " << Printable(r->state()) << " (for " << Age(r->state_since_ms(), now)
         << ")\nlabels:      " << Printable(LabelString({r->labels().begin(), r->labels().end()}))
         << "\nlast seen:   " << Age(r->last_seen_ms(), now) << " ago\nagent:       " << Printable(r->agent_version())
         << "\ncertificate: "
         << (r->cert_serial().empty() ? std::string("-")
                                      : "serial " + Printable(r->cert_serial()) + ", expires " +
                                            (r->cert_expires_ms() > now ? "in " + Age(now, r->cert_expires_ms())
                                                                        : std::string("(expired)")))
         << "\n";
    if (r->has_health()) {
      out_ << "cpu:         " << h.cpu_percent() << "%\nmemory:      " << Bytes(h.memory_used_bytes()) << " / "
           << Bytes(h.memory_total_bytes()) << "\ndisk:        " << Bytes(h.disk_used_bytes()) << " / "
           << Bytes(h.disk_total_bytes()) << "\ngeneration:  " << h.applied_generation()
           << "\nqueue:       " << h.buffered_messages() << " waiting, " << h.dropped_messages()
           << " dropped (full), " << h.refused_messages() << " refused by the broker\npipelines:\n";
      for (const auto& p : h.pipelines()) {
        out_ << "  " << Printable(p.name()) << " v" << p.version() << "  " << PipelineStateName(p.state())
             << "  in=" << p.records_in() << " out=" << p.records_out() << " dropped=" << p.records_dropped()
             << (p.last_error().empty() ? "" : "  error: " + Printable(p.last_error())) << "\n";
      }
      for (const auto& e : h.recent_errors()) out_ << "recent error: " << Printable(e) << "\n";
    }
    return OkStatus();
  }
  if (verb == "label") {
    if (a.pos.size() < 2) return Error::InvalidArgument("usage: cairnctl node label NAME k=v... [k-]...");
    v1::LabelNodeRequest req;
    req.set_workspace(*ws);
    req.set_name(a.pos[0]);
    for (size_t i = 1; i < a.pos.size(); ++i) {
      const std::string& w = a.pos[i];
      if (!w.empty() && w.back() == '-' && w.find('=') == std::string::npos) {
        req.add_remove(w.substr(0, w.size() - 1));
        continue;
      }
      auto p = ParseKeyValue(w);
      if (!p.ok()) return Error::InvalidArgument("\"" + w + "\": expected k=v (set) or k- (remove)");
      (*req.mutable_set())[p->first] = p->second;
    }
    auto r = Call<v1::Node>("registry", "LabelNode", req);
    if (!r.ok()) return r.error();
    if (Json()) {
      PrintJson(*r);
    } else {
      out_ << "node " << Printable(r->name())
           << " labels: " << Printable(LabelString({r->labels().begin(), r->labels().end()})) << "\n";
    }
    return OkStatus();
  }
  if (verb == "revoke") {
    CAIRN_TRY(NeedArgs(a, 1, "node revoke NAME"));
    v1::RevokeNodeRequest req;
    req.set_workspace(*ws);
    req.set_name(a.pos[0]);
    auto r = Call<v1::Empty>("registry", "RevokeNode", req);
    if (!r.ok()) return r.error();
    out_ << "node " << Printable(a.pos[0]) << " revoked\n";
    return OkStatus();
  }
  if (verb == "logs") {
    // The node's own log lines, live. They are not retained: without -f, what
    // arrives within --timeout is printed.
    constexpr char kUsage[] = "node logs NAME [-f] [--timeout DURATION]";
    bool follow = a.Bool("follow");
    std::vector<std::string> pos = a.pos;
    // Until the command line knows `-f` without a value here, `node logs -f
    // NAME` arrives as -f=NAME.
    if (a.HasFlag("f")) {
      follow = true;
      if (pos.empty()) pos.push_back(a.Flag("f"));
    }
    if (pos.size() != 1) return Error::InvalidArgument(std::string("usage: cairnctl ") + kUsage);
    const std::string& node = pos[0];
    if (auto st = topics::ValidateName("node", node); !st.ok()) return st.error();
    if (auto st = client_->Subscribe(topics::NodeLogs(*ws, node), 1); !st.ok()) return st;
    const auto wait = cl_.timeout;
    if (follow) {
      err_ << "following the log of node " << Printable(node) << " (Ctrl-C stops)" << std::endl;
    } else {
      err_ << "log lines of node " << Printable(node) << " for " << wait.count() / 1000.0
           << "s (logs are not retained; -f follows)" << std::endl;
    }
    const auto deadline = std::chrono::steady_clock::now() + wait;
    uint64_t batches = 0;
    for (;;) {
      MqttMessage m;
      {
        std::unique_lock lock(events_mu_);
        if (follow) {
          events_cv_.wait(lock, [this] { return !events_.empty(); });
        } else if (!events_cv_.wait_until(lock, deadline, [this] { return !events_.empty(); })) {
          break;
        }
        m = std::move(events_.front());
        events_.pop_front();
      }
      v1::NodeLogs logs;
      if (!logs.ParseFromString(m.payload)) {
        err_ << "cairnctl: undecodable log batch on " << Printable(m.topic) << "\n";
        continue;
      }
      ++batches;
      if (Json()) {
        std::string s;
        (void)google::protobuf::util::MessageToJsonString(logs, &s);
        out_ << s << std::endl;
      } else {
        out_ << FormatNodeLogs(logs) << std::flush;
      }
    }
    if (batches == 0) {
      err_ << "no log lines from node " << Printable(node) << " within " << wait.count() / 1000.0
           << "s (a node sends its warnings and errors as they happen; follow them with `cairnctl node logs "
           << Printable(node) << " -f`)\n";
    }
    return OkStatus();
  }
  return Error::InvalidArgument("unknown command: node " + verb);
}


Status Ctl::PipelineCmd(const std::string& verb, const Args& a) {
  int64_t now = SystemClock::Instance().NowMs();
  if (verb == "apply") {
    std::string file = a.Flag("f");
    if (file.empty() || !a.pos.empty()) return Error::InvalidArgument("usage: cairnctl pipeline apply -f FILE [--dry-run]");
    auto text = file == "-" ? Result<std::string>(std::string(std::istreambuf_iterator<char>(in_), {})) : ReadFile(file);
    if (!text.ok()) return text.error();
    auto p = ParsePipelineYaml(*text, cl_.workspace.empty() ? env_workspace_ : cl_.workspace);
    if (!p.ok()) return Error::InvalidArgument(file + ": " + p.error().message);
    if (p->workspace().empty()) return Error::InvalidArgument(file + ": no workspace (add `workspace:` or pass -w)");
    v1::ApplyPipelineRequest req;
    *req.mutable_pipeline() = *p;
    req.set_dry_run(a.Bool("dry-run"));
    auto r = Call<v1::ApplyPipelineResponse>("scheduler", "ApplyPipeline", req);
    if (!r.ok()) return r.error();
    if (Json()) { PrintJson(*r); return OkStatus(); }
    std::string nodes;
    for (const auto& n : r->targeted_nodes()) nodes += (nodes.empty() ? "" : ", ") + n;
    if (req.dry_run()) {
      out_ << "dry run: pipeline " << Printable(p->name()) << " would " << (r->changed() ? "change" : "not change")
           << "; selector matches " << r->targeted_nodes_size() << " node(s)"
           << (nodes.empty() ? "" : ": " + Printable(nodes)) << "\n";
    } else {
      out_ << "pipeline " << Printable(r->pipeline().name()) << " " << (r->changed() ? "applied" : "unchanged")
           << " (version " << r->pipeline().version() << "), " << r->targeted_nodes_size() << " node(s) targeted"
           << (nodes.empty() ? "" : ": " + Printable(nodes)) << "\n";
    }
    return OkStatus();
  }
  auto ws = Workspace();
  if (!ws.ok()) return ws.error();
  if (verb == "list") {
    v1::ListPipelinesRequest req;
    req.set_workspace(*ws);
    auto r = Call<v1::PipelineList>("scheduler", "ListPipelines", req);
    if (!r.ok()) return r.error();
    if (Json()) { PrintJson(*r); return OkStatus(); }
    std::vector<std::vector<std::string>> rows;
    for (const auto& p : r->pipelines()) {
      rows.push_back({p.name(), std::to_string(p.version()), p.selector().empty() ? "<all nodes>" : p.selector(),
                      Age(p.updated_ms(), now)});
    }
    out_ << Table({"NAME", "VERSION", "SELECTOR", "UPDATED"}, rows);
    return OkStatus();
  }
  if (verb == "get") {
    CAIRN_TRY(NeedArgs(a, 1, "pipeline get NAME"));
    v1::GetPipelineRequest req;
    req.set_workspace(*ws);
    req.set_name(a.pos[0]);
    auto r = Call<v1::Pipeline>("scheduler", "GetPipeline", req);
    if (!r.ok()) return r.error();
    if (Json()) { PrintJson(*r); return OkStatus(); }
    out_ << "name: " << Printable(r->name()) << "\nworkspace: " << Printable(r->workspace()) << "\nselector: \""
         << Printable(r->selector()) << "\"\n# version " << r->version() << ", digest "
         << Printable(r->digest().substr(0, 12)) << "\npipeline:\n";
    std::string yaml = PipelineSpecToYaml(r->spec());
    size_t pos = 0;
    while (pos < yaml.size()) {
      size_t end = yaml.find('\n', pos);
      if (end == std::string::npos) end = yaml.size();
      out_ << "  " << Printable(yaml.substr(pos, end - pos)) << "\n";
      pos = end + 1;
    }
    return OkStatus();
  }
  if (verb == "delete") {
    CAIRN_TRY(NeedArgs(a, 1, "pipeline delete NAME"));
    v1::DeletePipelineRequest req;
    req.set_workspace(*ws);
    req.set_name(a.pos[0]);
    auto r = Call<v1::Empty>("scheduler", "DeletePipeline", req);
    if (!r.ok()) return r.error();
    out_ << "pipeline " << Printable(a.pos[0]) << " deleted\n";
    return OkStatus();
  }
  if (verb == "status") {
    CAIRN_TRY(NeedArgs(a, 1, "pipeline status NAME"));
    v1::GetPipelineRequest req;
    req.set_workspace(*ws);
    req.set_name(a.pos[0]);
    auto r = Call<v1::PipelineStatus>("scheduler", "PipelineStatus", req);
    if (!r.ok()) return r.error();
    if (Json()) { PrintJson(*r); return OkStatus(); }
    out_ << "pipeline " << Printable(r->name()) << " version " << r->version() << ": targeted " << r->targeted() << ", applied "
         << r->applied() << ", running " << r->running() << ", failed " << r->failed() << ", pending "
         << r->pending() << "\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& n : r->nodes()) {
      rows.push_back({n.node(), n.node_state(), n.status(), n.applied_version() ? std::to_string(n.applied_version()) : "-",
                      n.last_error()});
    }
    if (!rows.empty()) out_ << Table({"NODE", "NODE STATE", "STATUS", "VERSION", "ERROR"}, rows);
    return OkStatus();
  }
  return Error::InvalidArgument("unknown command: pipeline " + verb);
}

Status Ctl::EventsCmd(const Args& a) {
  auto ws = Workspace();
  if (!ws.ok()) return ws.error();
  long count = 0;
  if (std::string c = a.Flag("count"); !c.empty()) {
    try {
      count = std::stol(c);
      if (count < 1) throw std::out_of_range("count");
    } catch (const std::exception&) {
      return Error::InvalidArgument("--count takes a positive whole number");
    }
  }
  if (auto st = client_->Subscribe(topics::Events(*ws), 1); !st.ok()) return st;
  err_ << "following events of workspace " << Printable(*ws) << " (Ctrl-C stops)" << std::endl;
  for (long seen = 0; count == 0 || seen < count;) {
    MqttMessage m;
    {
      std::unique_lock lock(events_mu_);
      events_cv_.wait(lock, [this] { return !events_.empty(); });
      m = std::move(events_.front());
      events_.pop_front();
    }
    v1::WorkspaceEvent ev;
    if (!ev.ParseFromString(m.payload)) {
      err_ << "cairnctl: undecodable event on " << Printable(m.topic) << "\n";
      continue;
    }
    ++seen;
    if (Json()) {
      std::string s;
      (void)google::protobuf::util::MessageToJsonString(ev, &s);
      out_ << s << std::endl;
      continue;
    }
    std::time_t secs = static_cast<std::time_t>(ev.timestamp_ms() / 1000);
    char when[32];
    std::strftime(when, sizeof(when), "%H:%M:%S", std::localtime(&secs));
    std::string subject = !ev.node().empty() ? "node " + ev.node() : "pipeline " + ev.pipeline();
    out_ << when << "  " << EventTypeName(ev.type()) << "  " << Printable(subject);
    if (!ev.state().empty()) out_ << "  " << Printable(ev.state());
    if (!ev.labels().empty()) out_ << "  " << Printable(LabelString({ev.labels().begin(), ev.labels().end()}));
    if (!ev.detail().empty()) out_ << "  (" << Printable(ev.detail()) << ")";
    out_ << std::endl;
  }
  return OkStatus();
}

}  // namespace cairn::ctl
