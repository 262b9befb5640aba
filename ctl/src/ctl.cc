#include "cairn/ctl/ctl.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include <google/protobuf/util/json_util.h>

#include "cairn/common/mqtt_paho.h"
#include "cairn/ctl/command_line.h"
#include "cairn/ctl/connection.h"
#include "cairn/ctl/format.h"
#include "help.h"
#include "login.h"
#include "session.h"

namespace cairn::ctl {

Status NeedArgs(const Args& a, size_t n, const std::string& usage) {
  if (a.pos.size() != n) return Error::InvalidArgument("usage: cairnctl " + usage);
  return OkStatus();
}

Ctl::~Ctl() {
  if (client_) client_->Disconnect();
}

Status Ctl::Connect(const ResolvedConnection& c, const std::string& password) {
  conn_ = c;
  MqttOptions mo;
  mo.uri = c.broker_url;
  mo.client_id = RandomClientId("ctl");
  mo.ca_file = c.ca_file;
  mo.username = c.Principal();
  mo.password = password;
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

void Ctl::PrintJson(const google::protobuf::Message& m) {
  std::string s;
  google::protobuf::util::JsonPrintOptions jo;
  jo.add_whitespace = true;
  jo.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &s, jo);
  out_ << s;
  if (s.empty() || s.back() != '\n') out_ << "\n";
}

Result<std::string> Ctl::Workspace() {
  if (!cl_.workspace.empty()) return cl_.workspace;
  if (!env_workspace_.empty()) return env_workspace_;
  return Error::InvalidArgument("no workspace: pass -w WORKSPACE or set CAIRN_WORKSPACE");
}

Status Ctl::Run(const std::string& group, const std::string& verb, const Args& a) {
  if (group == "events") return EventsCmd(a);
  if (group == "whoami") return WhoAmICmd(a);
  if (group == "workspace" || group == "workspaces" || group == "ws") return WorkspaceCmd(verb, a);
  if (group == "token" || group == "tokens") return TokenCmd(verb, a);
  if (group == "node" || group == "nodes") return NodeCmd(verb, a);
  if (group == "pipeline" || group == "pipelines") return PipelineCmd(verb, a);
  if (group == "user" || group == "users") return UserCmd(verb, a);
  if (group == "role" || group == "roles") return RoleCmd(verb, a);
  if (group == "credential" || group == "credentials") return CredentialCmd(verb, a);
  if (group == "cert" || group == "certificate") return CertCmd(verb, a);
  return Error::InvalidArgument("unknown command \"" + group + "\" (try: cairnctl --help)");
}

namespace {

// Groups that run without a verb.
bool TakesNoVerb(const std::string& group) { return group == "events" || group == "whoami"; }

int Fail(std::ostream& err, const Error& e, int code) {
  err << "cairnctl: " << Printable(e.message) << "\n";
  return code;
}

}  // namespace

int Main(const std::vector<std::string>& argv, std::istream& in, std::ostream& out, std::ostream& err) {
  auto parsed = ParseCommandLine(argv);
  if (!parsed.ok()) return Fail(err, parsed.error(), 2);
  const CommandLine& cl = *parsed;
  const std::string group = cl.words.empty() ? "" : cl.words[0];
  const std::string verb = cl.words.size() > 1 ? cl.words[1] : "";
  if (cl.help || verb == "help") {
    const char* page = GroupHelp(group);
    out << (page ? page : Usage());
    return 0;
  }
  if (group.empty()) {
    err << Usage();
    return 2;
  }
  const GetEnv getenv_fn = [](const char* name) { return std::getenv(name); };
  const bool interactive = &in == &std::cin && ::isatty(STDIN_FILENO);
  LoginState login;
  if (auto path = LoginConfigPath(getenv_fn); path.ok()) login.path = *path;
  if (group == "logout") return Logout(cl, login.path, out, err);
  if (!login.path.empty()) {
    auto stored = LoadLoginConfig(login.path);
    if (stored.ok()) {
      login.stored = *stored;
    } else {
      err << "cairnctl: warning: ignoring the login config: " << Printable(stored.error().message) << "\n";
    }
  }
  const ConnectionSettings env = SettingsFromEnvironment(getenv_fn);
  if (group == "login") return Login(cl, env, login, in, interactive, out, err);
  if (verb.empty() && !TakesNoVerb(group)) {
    const char* page = GroupHelp(group);
    err << (page ? page : Usage());
    return 2;
  }

  auto conn = ResolveConnection(cl.connection, env, login.stored);
  if (!conn.ok()) return Fail(err, conn.error(), 1);
  auto password = ReadPassword(*conn);
  if (!password.ok()) return Fail(err, password.error(), 1);
  const char* env_ws = std::getenv("CAIRN_WORKSPACE");
  Ctl ctl(cl, env_ws ? env_ws : "", login, in, out, err);
  if (auto st = ctl.Connect(*conn, *password); !st.ok()) {
    Error e = st.error();
    if (e.code == ErrorCode::kUnauthenticated && conn->password_source == Source::kLoginConfig) {
      e.message += " (the password stored by `cairnctl login` in " + login.path + "; run `cairnctl login` again)";
    }
    return Fail(err, e, 1);
  }
  Args a{cl, {}};
  if (cl.words.size() > (TakesNoVerb(group) ? 1u : 2u)) {
    a.pos.assign(cl.words.begin() + (TakesNoVerb(group) ? 1 : 2), cl.words.end());
  }
  auto st = ctl.Run(group, verb, a);
  if (!st.ok()) return Fail(err, st.error(), st.error().code == ErrorCode::kInvalidArgument ? 2 : 1);
  return 0;
}

int Main(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  return Main(argv, std::cin, out, err);
}

}  // namespace cairn::ctl
