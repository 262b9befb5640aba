#include "cairn/ctl/ctl.h"

#include <cstdlib>
#include <functional>
#include <iostream>
#include <iterator>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <set>

#include <google/protobuf/util/json_util.h>

#include "cairn/common/config.h"
#include "cairn/common/files.h"
#include "cairn/common/mqtt_paho.h"
#include "cairn/common/pipeline_spec.h"
#include "cairn/common/rpc.h"
#include "cairn/common/clock.h"
#include "cairn/common/selector.h"
#include "cairn/common/topics.h"
#include "cairn/ctl/format.h"
#include "cairn/v1/events.pb.h"
#include "cairn/v1/rpc.pb.h"

namespace cairn::ctl {
namespace {

constexpr char kUsage[] = R"(usage: cairnctl [-w WORKSPACE] [-o table|json] COMMAND ...

  workspace create NAME [--description TEXT]
  workspace list | get NAME | delete NAME [--force]
  token create [--label k=v]... [--ttl DURATION] [--uses N] [--description TEXT]
  token list | revoke ID
  node list [-l SELECTOR] | get NAME | revoke NAME
  node label NAME k=v... [k-]...        (k- removes label k)
  pipeline apply -f FILE [--dry-run]
  pipeline list | get NAME | delete NAME | status NAME
  events [--count N]                    follow the workspace's events (Ctrl-C stops)

Connection (flags or environment):
  --broker-url URL       CAIRN_BROKER_URL      ssl://host:port
  --ca-file FILE         CAIRN_CA_FILE         CA that verifies the broker
  --user NAME            CAIRN_USER            operator name (principal user:NAME)
  --password-file FILE   CAIRN_PASSWORD_FILE   (or CAIRN_PASSWORD)
  -w, --workspace WS     CAIRN_WORKSPACE
  --timeout DURATION     how long to wait for a service's reply (default 10s)
)";

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

struct Options {
  std::string workspace = Env("CAIRN_WORKSPACE");
  std::string output = "table";
  std::string broker_url = Env("CAIRN_BROKER_URL");
  std::string ca_file = Env("CAIRN_CA_FILE");
  std::string user = Env("CAIRN_USER");
  std::string password_file = Env("CAIRN_PASSWORD_FILE");
  std::string password = Env("CAIRN_PASSWORD");
  std::chrono::milliseconds timeout{10000};
};

// Command-line words after global options: positional args and --flags.
struct Args {
  std::vector<std::string> pos;
  std::multimap<std::string, std::string> flags;
  std::set<std::string> bools;

  std::string Flag(const std::string& k, const std::string& def = "") const {
    auto it = flags.find(k);
    return it == flags.end() ? def : it->second;
  }
  std::vector<std::string> All(const std::string& k) const {
    std::vector<std::string> out;
    auto [a, b] = flags.equal_range(k);
    for (auto it = a; it != b; ++it) out.push_back(it->second);
    return out;
  }
};

class Ctl {
 public:
  Ctl(Options opts, std::ostream& out, std::ostream& err) : o_(std::move(opts)), out_(out), err_(err) {}

  Status Connect() {
    if (o_.broker_url.empty()) {
      return Error::InvalidArgument("no broker: set CAIRN_BROKER_URL or --broker-url (try: eval \"$(./cairn-dev env)\")");
    }
    MqttOptions mo;
    mo.uri = o_.broker_url;
    mo.client_id = RandomClientId("ctl");
    mo.ca_file = o_.ca_file;
    mo.username = o_.user.empty() ? "" : "user:" + o_.user;
    if (!o_.password_file.empty()) {
      auto pw = ReadFile(o_.password_file);
      if (!pw.ok()) return Error::InvalidArgument("password file: " + pw.error().message);
      std::string p = *pw;
      while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
      mo.password = p;
    } else {
      mo.password = o_.password;
    }
    mo.connect_timeout_s = 10;
    client_ = MakePahoMqttClient(mo);
    rpc_ = std::make_unique<RpcClient>(*client_);
    client_->SetMessageHandler([this](const MqttMessage& m) {
      if (rpc_->OnMessage(m)) return;
      {
        std::lock_guard lock(events_mu_);
        events_.push_back(m);
      }
      events_cv_.notify_all();
    });
    if (auto st = client_->Connect(); !st.ok()) return st;
    return rpc_->Start();
  }

  template <typename Resp>
  Result<Resp> Call(const std::string& service, const std::string& method, const google::protobuf::Message& req) {
    return rpc_->Call<Resp>(service, method, req, o_.timeout);
  }

  bool Json() const { return o_.output == "json"; }

  void PrintJson(const google::protobuf::Message& m) {
    std::string s;
    google::protobuf::util::JsonPrintOptions jo;
    jo.add_whitespace = true;
    jo.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(m, &s, jo);
    out_ << s;
    if (s.empty() || s.back() != '\n') out_ << "\n";
  }

  Result<std::string> Workspace() {
    if (o_.workspace.empty()) return Error::InvalidArgument("no workspace: pass -w WORKSPACE or set CAIRN_WORKSPACE");
    return o_.workspace;
  }

  Status Run(const std::string& group, const std::string& verb, const Args& a);

 private:
  Status WorkspaceCmd(const std::string& verb, const Args& a);
  Status TokenCmd(const std::string& verb, const Args& a);
  Status NodeCmd(const std::string& verb, const Args& a);
  Status PipelineCmd(const std::string& verb, const Args& a);
  Status EventsCmd(const Args& a);

  Options o_;
  std::ostream& out_;
  std::ostream& err_;
  std::unique_ptr<MqttClient> client_;
  std::unique_ptr<RpcClient> rpc_;
  std::mutex events_mu_;
  std::condition_variable events_cv_;
  std::deque<MqttMessage> events_;
};

Status NeedArgs(const Args& a, size_t n, const std::string& usage) {
  if (a.pos.size() != n) return Error::InvalidArgument("usage: cairnctl " + usage);
  return OkStatus();
}

#define CAIRN_TRY(expr)                  \
  do {                                   \
    auto _st = (expr);                   \
    if (!_st.ok()) return _st.error();   \
  } while (0)

Status Ctl::WorkspaceCmd(const std::string& verb, const Args& a) {
  int64_t now = SystemClock::Instance().NowMs();
  if (verb == "create") {
    CAIRN_TRY(NeedArgs(a, 1, "workspace create NAME [--description TEXT]"));
    v1::CreateWorkspaceRequest req;
    req.set_name(a.pos[0]);
    req.set_description(a.Flag("description"));
    auto r = Call<v1::Workspace>("registry", "CreateWorkspace", req);
    if (!r.ok()) return r.error();
    if (Json()) PrintJson(*r); else out_ << "workspace " << r->name() << " created\n";
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
    out_ << "name:         " << r->name() << "\ndescription:  " << r->description()
         << "\nnodes:        " << r->node_count() << "\nage:          " << Age(r->created_ms(), now) << "\n";
    return OkStatus();
  }
  if (verb == "delete") {
    CAIRN_TRY(NeedArgs(a, 1, "workspace delete NAME [--force]"));
    v1::DeleteWorkspaceRequest req;
    req.set_name(a.pos[0]);
    req.set_force(a.bools.count("force") > 0);
    auto r = Call<v1::Empty>("registry", "DeleteWorkspace", req);
    if (!r.ok()) return r.error();
    out_ << "workspace " << a.pos[0] << " deleted\n";
    return OkStatus();
  }
  return Error::InvalidArgument("unknown command: workspace " + verb);
}

Status Ctl::TokenCmd(const std::string& verb, const Args& a) {
  auto ws = Workspace();
  if (!ws.ok()) return ws.error();
  int64_t now = SystemClock::Instance().NowMs();
  if (verb == "create") {
    CAIRN_TRY(NeedArgs(a, 0, "token create [--label k=v]... [--ttl DURATION] [--uses N]"));
    v1::CreateTokenRequest req;
    req.set_workspace(*ws);
    for (const auto& kv : a.All("label")) {
      auto p = ParseKeyValue(kv);
      if (!p.ok()) return p.error();
      (*req.mutable_labels())[p->first] = p->second;
    }
    std::string ttl = a.Flag("ttl");
    if (!ttl.empty()) {
      auto d = ParseDuration(ttl);
      if (!d.ok()) return d.error();
      if (d->count() < 1000) return Error::InvalidArgument("--ttl must be at least 1s");
      req.set_ttl_seconds(static_cast<uint64_t>(d->count() / 1000));
    }
    std::string uses = a.Flag("uses");
    if (!uses.empty()) {
      try {
        long n = std::stol(uses);
        if (n < 0 || n > 1000000) throw std::out_of_range("uses");
        req.set_uses(static_cast<uint32_t>(n));
      } catch (const std::exception&) {
        return Error::InvalidArgument("--uses takes a whole number (0 = unlimited)");
      }
    }
    req.set_description(a.Flag("description"));
    auto r = Call<v1::CreateTokenResponse>("registry", "CreateToken", req);
    if (!r.ok()) return r.error();
    if (Json()) PrintJson(*r); else out_ << r->token() << "\n";
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
    out_ << "token " << a.pos[0] << " revoked\n";
    return OkStatus();
  }
  return Error::InvalidArgument("unknown command: token " + verb);
}

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
    out_ << "name:        " << r->name() << "\nworkspace:   " << r->workspace() << "\nstate:       " << r->state()
         << " (for " << Age(r->state_since_ms(), now) << ")\nlabels:      "
         << LabelString({r->labels().begin(), r->labels().end()}) << "\nlast seen:   " << Age(r->last_seen_ms(), now)
         << " ago\nagent:       " << r->agent_version() << "\n";
    if (r->has_health()) {
      out_ << "cpu:         " << h.cpu_percent() << "%\nmemory:      " << Bytes(h.memory_used_bytes()) << " / "
           << Bytes(h.memory_total_bytes()) << "\ndisk:        " << Bytes(h.disk_used_bytes()) << " / "
           << Bytes(h.disk_total_bytes()) << "\ngeneration:  " << h.applied_generation() << "\npipelines:\n";
      for (const auto& p : h.pipelines()) {
        out_ << "  " << p.name() << " v" << p.version() << "  " << PipelineStateName(p.state()) << "  in=" << p.records_in() << " out=" << p.records_out() << " dropped=" << p.records_dropped()
             << (p.last_error().empty() ? "" : "  error: " + p.last_error()) << "\n";
      }
      for (const auto& e : h.recent_errors()) out_ << "recent error: " << e << "\n";
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
    if (Json()) PrintJson(*r); else out_ << "node " << r->name() << " labels: " << LabelString({r->labels().begin(), r->labels().end()}) << "\n";
    return OkStatus();
  }
  if (verb == "revoke") {
    CAIRN_TRY(NeedArgs(a, 1, "node revoke NAME"));
    v1::RevokeNodeRequest req;
    req.set_workspace(*ws);
    req.set_name(a.pos[0]);
    auto r = Call<v1::Empty>("registry", "RevokeNode", req);
    if (!r.ok()) return r.error();
    out_ << "node " << a.pos[0] << " revoked\n";
    return OkStatus();
  }
  return Error::InvalidArgument("unknown command: node " + verb);
}

Status Ctl::PipelineCmd(const std::string& verb, const Args& a) {
  int64_t now = SystemClock::Instance().NowMs();
  if (verb == "apply") {
    std::string file = a.Flag("f");
    if (file.empty() || !a.pos.empty()) return Error::InvalidArgument("usage: cairnctl pipeline apply -f FILE [--dry-run]");
    auto text = file == "-" ? Result<std::string>(std::string(std::istreambuf_iterator<char>(std::cin), {})) : ReadFile(file);
    if (!text.ok()) return text.error();
    auto p = ParsePipelineYaml(*text, o_.workspace);
    if (!p.ok()) return Error::InvalidArgument(file + ": " + p.error().message);
    if (p->workspace().empty()) return Error::InvalidArgument(file + ": no workspace (add `workspace:` or pass -w)");
    v1::ApplyPipelineRequest req;
    *req.mutable_pipeline() = *p;
    req.set_dry_run(a.bools.count("dry-run") > 0);
    auto r = Call<v1::ApplyPipelineResponse>("scheduler", "ApplyPipeline", req);
    if (!r.ok()) return r.error();
    if (Json()) { PrintJson(*r); return OkStatus(); }
    std::string nodes;
    for (const auto& n : r->targeted_nodes()) nodes += (nodes.empty() ? "" : ", ") + n;
    if (req.dry_run()) {
      out_ << "dry run: pipeline " << p->name() << " would " << (r->changed() ? "change" : "not change")
           << "; selector matches " << r->targeted_nodes_size() << " node(s)" << (nodes.empty() ? "" : ": " + nodes) << "\n";
    } else {
      out_ << "pipeline " << r->pipeline().name() << " " << (r->changed() ? "applied" : "unchanged") << " (version "
           << r->pipeline().version() << "), " << r->targeted_nodes_size() << " node(s) targeted"
           << (nodes.empty() ? "" : ": " + nodes) << "\n";
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
    out_ << "name: " << r->name() << "\nworkspace: " << r->workspace() << "\nselector: \"" << r->selector()
         << "\"\n# version " << r->version() << ", digest " << r->digest().substr(0, 12) << "\npipeline:\n";
    std::string yaml = PipelineSpecToYaml(r->spec());
    size_t pos = 0;
    while (pos < yaml.size()) {
      size_t end = yaml.find('\n', pos);
      if (end == std::string::npos) end = yaml.size();
      out_ << "  " << yaml.substr(pos, end - pos) << "\n";
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
    out_ << "pipeline " << a.pos[0] << " deleted\n";
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
    out_ << "pipeline " << r->name() << " version " << r->version() << ": targeted " << r->targeted() << ", applied "
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
  err_ << "following events of workspace " << *ws << " (Ctrl-C stops)" << std::endl;
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
      err_ << "cairnctl: undecodable event on " << m.topic << "\n";
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
    out_ << when << "  " << EventTypeName(ev.type()) << "  " << subject;
    if (!ev.state().empty()) out_ << "  " << ev.state();
    if (!ev.labels().empty()) out_ << "  " << LabelString({ev.labels().begin(), ev.labels().end()});
    if (!ev.detail().empty()) out_ << "  (" << ev.detail() << ")";
    out_ << std::endl;
  }
  return OkStatus();
}

Status Ctl::Run(const std::string& group, const std::string& verb, const Args& a) {
  if (group == "events") return EventsCmd(a);
  if (group == "workspace" || group == "workspaces" || group == "ws") return WorkspaceCmd(verb, a);
  if (group == "token" || group == "tokens") return TokenCmd(verb, a);
  if (group == "node" || group == "nodes") return NodeCmd(verb, a);
  if (group == "pipeline" || group == "pipelines") return PipelineCmd(verb, a);
  return Error::InvalidArgument("unknown command \"" + group + "\"");
}

}  // namespace

int Main(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  Options o;
  Args a;
  static const std::set<std::string> kBoolFlags = {"force", "dry-run"};
  static const std::map<std::string, std::string> kShort = {{"-w", "workspace"}, {"-o", "output"}, {"-l", "l"}, {"-f", "f"}};
  std::vector<std::string> words;
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string w = argv[i];
    if (w == "-h" || w == "--help" || w == "help") {
      out << kUsage;
      return 0;
    }
    std::string key, value;
    bool has_value = false;
    if (auto s = kShort.find(w); s != kShort.end()) {
      key = s->second;
    } else if (w.rfind("--", 0) == 0 && w.size() > 2) {
      key = w.substr(2);
      auto eq = key.find('=');
      if (eq != std::string::npos) {
        value = key.substr(eq + 1);
        key = key.substr(0, eq);
        has_value = true;
      }
    } else {
      words.push_back(w);
      continue;
    }
    if (kBoolFlags.count(key)) {
      a.bools.insert(key);
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argv.size()) {
        err << "cairnctl: " << w << " needs a value\n";
        return 2;
      }
      value = argv[++i];
    }
    if (key == "workspace") o.workspace = value;
    else if (key == "output") o.output = value;
    else if (key == "broker-url") o.broker_url = value;
    else if (key == "ca-file") o.ca_file = value;
    else if (key == "user") o.user = value;
    else if (key == "password-file") o.password_file = value;
    else if (key == "timeout") {
      auto d = ParseDuration(value);
      if (!d.ok()) {
        err << "cairnctl: --timeout: " << d.error().message << "\n";
        return 2;
      }
      o.timeout = *d;
    } else if (key == "l" || key == "f" || key == "label" || key == "ttl" || key == "uses" || key == "description" ||
               key == "count") {
      a.flags.emplace(key, value);
    } else {
      err << "cairnctl: unknown flag --" << key << "\n";
      return 2;
    }
  }
  if (o.output != "table" && o.output != "json") {
    err << "cairnctl: -o takes table or json\n";
    return 2;
  }
  if (words.empty() || (words.size() < 2 && words[0] != "events")) {
    err << kUsage;
    return 2;
  }
  if (words.size() < 2) words.push_back("");
  a.pos.assign(words.begin() + 2, words.end());
  Ctl ctl(o, out, err);
  if (auto st = ctl.Connect(); !st.ok()) {
    err << "cairnctl: " << st.error().message << "\n";
    return 1;
  }
  auto st = ctl.Run(words[0], words[1], a);
  if (!st.ok()) {
    err << "cairnctl: " << st.error().message << "\n";
    return st.error().code == ErrorCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}

}  // namespace cairn::ctl
