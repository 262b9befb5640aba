// A cairnctl session: one MQTT connection as a user principal, RPC calls
// over it, and the output helpers every command uses. The commands live in
// one file per group (fleet_commands.cc, access_commands.cc) as methods.
// Private to ctl/.
// Thread-safety: single-threaded use (the MQTT dispatcher thread only feeds
// RPC replies and events into the session).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <istream>
#include <ostream>
#include <string>

#include <google/protobuf/message.h>

#include "cairn/common/mqtt_client.h"
#include "cairn/common/rpc.h"
#include "cairn/ctl/command_line.h"
#include "cairn/ctl/connection.h"

namespace cairn::ctl {

#define CAIRN_TRY(expr)                \
  do {                                 \
    auto _st = (expr);                 \
    if (!_st.ok()) return _st.error(); \
  } while (0)

// One command's arguments: the positional words after GROUP VERB, and the
// command line's flags.
struct Args {
  const CommandLine& cl;
  std::vector<std::string> pos;

  std::string Flag(const std::string& k, const std::string& def = "") const { return cl.Flag(k, def); }
  bool HasFlag(const std::string& k) const { return cl.HasFlag(k); }
  std::vector<std::string> All(const std::string& k) const { return cl.All(k); }
  bool Bool(const std::string& k) const { return cl.Bool(k); }
};

// InvalidArgument("usage: cairnctl " + usage) unless there are exactly n
// positional arguments.
Status NeedArgs(const Args& a, size_t n, const std::string& usage);

// Where the login config lives and what it holds (for login, logout and
// `user passwd`, which keeps a stored credential current).
struct LoginState {
  std::string path;
  std::optional<LoginConfig> stored;
};

class Ctl {
 public:
  Ctl(const CommandLine& cl, std::string env_workspace, LoginState login, std::istream& in, std::ostream& out,
      std::ostream& err)
      : cl_(cl), env_workspace_(std::move(env_workspace)), login_(std::move(login)), in_(in), out_(out), err_(err) {}
  ~Ctl();

  // Connects as `c` and subscribes to the reply prefix.
  Status Connect(const ResolvedConnection& c, const std::string& password);

  template <typename Resp>
  Result<Resp> Call(const std::string& service, const std::string& method, const google::protobuf::Message& req) {
    return rpc_->Call<Resp>(service, method, req, cl_.timeout);
  }

  bool Json() const { return cl_.output == "json"; }
  void PrintJson(const google::protobuf::Message& m);
  // A new credential's password alone on stdout, or with -o json
  // {"username": ..., "password": ...}.
  void PrintSecret(const std::string& username, const std::string& password);

  // -w, else CAIRN_WORKSPACE; an error naming both when neither is set.
  Result<std::string> Workspace();

  // Runs words[0] words[1] with words[2..] as positional arguments.
  Status Run(const std::string& group, const std::string& verb, const Args& a);

 private:
  Status WorkspaceCmd(const std::string& verb, const Args& a);
  Status TokenCmd(const std::string& verb, const Args& a);
  Status NodeCmd(const std::string& verb, const Args& a);
  Status PipelineCmd(const std::string& verb, const Args& a);
  Status EventsCmd(const Args& a);
  Status WhoAmICmd(const Args& a);
  Status UserCmd(const std::string& verb, const Args& a);
  Status RoleCmd(const std::string& verb, const Args& a);
  Status CredentialCmd(const std::string& verb, const Args& a);
  Status CertCmd(const std::string& verb, const Args& a);

  const CommandLine& cl_;
  std::string env_workspace_;
  LoginState login_;
  ResolvedConnection conn_;
  std::istream& in_;
  std::ostream& out_;
  std::ostream& err_;
  std::unique_ptr<MqttClient> client_;
  std::unique_ptr<RpcClient> rpc_;
  std::mutex events_mu_;
  std::condition_variable events_cv_;
  std::deque<MqttMessage> events_;
};

}  // namespace cairn::ctl
