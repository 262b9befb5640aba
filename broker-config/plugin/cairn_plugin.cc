// cairn_mosquitto_plugin: the Mosquitto 2.0 plugin (API v5) that enforces
// Cairn identities and topic permissions. Every decision is made by
// cairn::policy::BrokerPolicy (broker-config/policy, unit-tested); this file
// only turns broker events into policy calls and carries out the answers:
//   BASIC_AUTH  -> BrokerPolicy::Connect (password logins, and certificate
//                  logins on the node listener, which must NOT set
//                  use_identity_as_username: with it Mosquitto skips this
//                  event). A node that sent no username gets its CN as
//                  username (mosquitto_set_username).
//   ACL_CHECK   -> BrokerPolicy::CheckAccess (publish = write, subscribe,
//                  and every delivery = read, which Mosquitto 2.0.11 checks
//                  per message, so a removed binding stops reads at once)
//   MESSAGE     -> BrokerPolicy::Message (size and rate limits, response
//                  topics, forged stamps, revocations); accepted messages are
//                  stamped with the user property cairn-principal = username
//   DISCONNECT  -> BrokerPolicy::Disconnected (live client-id holders,
//                  bootstrap connection count)
//   TICK        -> re-reads changed files (access snapshot within a second),
//                  BrokerPolicy::Tick, disconnects what the policy asks for,
//                  logs the refusal summary.
//
// Enable it (see broker-config/mosquitto.conf.template, which documents every
// option and its default):
//   per_listener_settings false
//   plugin /path/to/cairn_mosquitto_plugin.so
//   plugin_opt_credentials_file /path/to/credentials      (required; svc:* lines)
//   plugin_opt_access_file /path/to/access                 (users, integrators)
//   plugin_opt_revocations_file /path/to/revoked-principals
//   plugin_opt_<limit> <number>   any field of cairn::policy::Limits
//
// Files: the credentials file ("svc:{name} <sha256 hex>" lines) and the
// access snapshot (policy/access.h) are re-read when they change; unreadable
// or invalid means fail closed (service logins, resp. user and integrator
// logins refused; live users and integrators kicked). The revocations file
// is rewritten atomically on every change. Mosquitto started as root drops
// to user "mosquitto": these files must be readable by it.
//
// Thread-safety: Mosquitto 2.0 calls every plugin callback from its single
// main thread, so the state below is used without locks.

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>
#include <strings.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "cairn/common/text.h"
#include "cairn/policy/access.h"
#include "cairn/policy/broker_policy.h"
#include "support.h"

namespace {

using cairn::plugin::FileStamp;
using cairn::plugin::SteadyMs;
using cairn::plugin::StampOf;
using cairn::plugin::WallMs;
namespace policy = cairn::policy;

std::string Printable(const char* raw) {
  if (raw == nullptr) return "(none)";
  std::string q = cairn::Quoted(std::string_view(raw).substr(0, 256));
  return q.substr(1, q.size() - 2);
}

std::string_view View(const char* raw) { return raw ? std::string_view(raw) : std::string_view(); }

class CairnPlugin {
 public:
  CairnPlugin(policy::Limits limits, std::string credentials, std::string access, std::string revocations)
      : policy_(limits),
        credentials_path_(std::move(credentials)),
        access_path_(std::move(access)),
        revocations_path_(std::move(revocations)) {}

  bool Start() {
    if (!LoadCredentials()) return false;
    LoadAccess();
    if (!revocations_path_.empty()) {
      std::optional<std::string> text = cairn::plugin::ReadFile(revocations_path_);
      if (!text && errno != ENOENT) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "cairn: cannot read revocations file %s: %s",
                             revocations_path_.c_str(), std::strerror(errno));
        return false;
      }
      int skipped = 0;
      policy_.SetRevocations(policy::Revocations::Parse(text.value_or(""), &skipped));
      mosquitto_log_printf(MOSQ_LOG_NOTICE, "cairn: %zu principals revoked (from %s; %d lines skipped)",
                           policy_.revocations().size(), revocations_path_.c_str(), skipped);
    }
    return true;
  }

  int OnBasicAuth(const mosquitto_evt_basic_auth& ev) {
    ReloadIfChanged();
    policy::ConnectRequest r;
    r.client = ev.client;
    if (ev.username) r.username = ev.username;
    if (ev.password) r.password = ev.password;
    r.client_id = View(mosquitto_client_id(ev.client));
    r.certificate = cairn::plugin::CertificateOf(ev.client);
    policy::ConnectDecision d = policy_.Connect(r, SteadyMs(), WallMs());
    if (d.refusal != policy::Refusal::kNone) {
      mosquitto_log_printf(MOSQ_LOG_NOTICE, "cairn: denied connect of '%s' (client %s) from %s: %s",
                           Printable(d.username.empty() ? ev.username : d.username.c_str()).c_str(),
                           Printable(mosquitto_client_id(ev.client)).c_str(),
                           Printable(mosquitto_client_address(ev.client)).c_str(), policy::RefusalName(d.refusal));
      policy_.TakeNotes();  // the line above says it all
      return MOSQ_ERR_AUTH;
    }
    if (d.set_username && mosquitto_set_username(ev.client, d.username.c_str()) != MOSQ_ERR_SUCCESS) {
      policy_.Disconnected(ev.client);
      return MOSQ_ERR_AUTH;
    }
    LogNotes();
    return MOSQ_ERR_SUCCESS;
  }

  int OnAclCheck(const mosquitto_evt_acl_check& ev) {
    policy::Access access;
    switch (ev.access) {
      case MOSQ_ACL_READ: access = policy::Access::kRead; break;
      case MOSQ_ACL_WRITE: access = policy::Access::kWrite; break;
      case MOSQ_ACL_SUBSCRIBE: access = policy::Access::kSubscribe; break;
      default:
        policy_.OtherEvent();  // unsubscribe
        return MOSQ_ERR_SUCCESS;
    }
    const char* user = mosquitto_client_username(ev.client);
    const char* cid = mosquitto_client_id(ev.client);
    if (user && std::strncmp(user, "node:", 5) == 0 && !policy_.HasSession(ev.client) &&
        cairn::plugin::CertificateOf(ev.client)) {
      // A certificate login that never passed BASIC_AUTH: the node listener
      // must not set use_identity_as_username.
      mosquitto_log_printf(MOSQ_LOG_WARNING,
                           "cairn: refusing everything to '%s' (client %s): its certificate login skipped "
                           "the plugin (remove use_identity_as_username from the node listener)",
                           Printable(user).c_str(), Printable(cid).c_str());
      return MOSQ_ERR_ACL_DENIED;
    }
    std::optional<std::string_view> username;
    if (user) username = user;
    policy::Refusal r =
        policy_.CheckAccess(ev.client, username, View(cid), access, View(ev.topic), ev.retain, WallMs());
    LogNotes();
    return r == policy::Refusal::kNone ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
  }

  int OnMessage(mosquitto_evt_message& ev) {
    if (ev.client == nullptr) return MOSQ_ERR_SUCCESS;  // broker-internal
    const char* user = mosquitto_client_username(ev.client);
    if (user == nullptr) return MOSQ_ERR_ACL_DENIED;
    char* response = nullptr;
    mosquitto_property_read_string(ev.properties, MQTT_PROP_RESPONSE_TOPIC, &response, false);
    policy::MessageRequest m;
    m.client = ev.client;
    m.username = user;
    m.client_id = View(mosquitto_client_id(ev.client));
    m.topic = View(ev.topic);
    m.payload = std::string_view(static_cast<const char*>(ev.payload), ev.payload ? ev.payloadlen : 0);
    m.retain = ev.retain;
    m.has_principal_property = HasPrincipalProperty(ev.properties);
    if (response) m.response_topic = response;
    policy::Refusal r = policy_.Message(m, SteadyMs());
    std::free(response);
    if (policy_.TakeRevocationsChanged()) SaveRevocations();
    LogNotes();
    Kick();
    if (r != policy::Refusal::kNone) return MOSQ_ERR_ACL_DENIED;
    return mosquitto_property_add_string_pair(&ev.properties, MQTT_PROP_USER_PROPERTY,
                                              std::string(policy::kPrincipalProperty).c_str(), user);
  }

  int OnTick() {
    int64_t now = SteadyMs();
    if (now - last_reload_check_ms_ >= 250) {
      last_reload_check_ms_ = now;
      ReloadIfChanged();
    }
    policy_.Tick(now, WallMs());
    LogNotes();
    Kick();
    return MOSQ_ERR_SUCCESS;
  }

  int OnDisconnect(const mosquitto_evt_disconnect& ev) {
    policy_.Disconnected(ev.client);
    return MOSQ_ERR_SUCCESS;
  }

 private:
  // True if `props` has a user property named cairn-principal (any case).
  static bool HasPrincipalProperty(const mosquitto_property* props) {
    char* name = nullptr;
    char* value = nullptr;
    bool found = false;
    const mosquitto_property* p =
        mosquitto_property_read_string_pair(props, MQTT_PROP_USER_PROPERTY, &name, &value, false);
    while (p != nullptr && !found) {
      found = name && strcasecmp(name, std::string(policy::kPrincipalProperty).c_str()) == 0;
      std::free(name);
      std::free(value);
      name = value = nullptr;
      if (!found) p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value, true);
    }
    return found;
  }

  void LogNotes() {
    for (const policy::Note& n : policy_.TakeNotes()) {
      mosquitto_log_printf(n.level == policy::Note::Level::kWarning ? MOSQ_LOG_WARNING : MOSQ_LOG_NOTICE,
                           "cairn: %s", n.text.c_str());
    }
  }

  void Kick() {
    for (const policy::Kick& k : policy_.TakeKicks()) {
      mosquitto_log_printf(MOSQ_LOG_NOTICE, "cairn: disconnecting client %s: %s", Printable(k.client_id.c_str()).c_str(),
                           Printable(k.why.c_str()).c_str());
      mosquitto_kick_client_by_clientid(k.client_id.c_str(), false);
    }
  }

  void ReloadIfChanged() {
    if (StampOf(credentials_path_) != credentials_stamp_ && !LoadCredentials()) {
      policy_.SetServiceCredentials({});  // fail closed
      mosquitto_log_printf(MOSQ_LOG_WARNING, "cairn: credentials unreadable; refusing service logins until fixed");
    }
    if (!access_path_.empty() && StampOf(access_path_) != access_stamp_) {
      LoadAccess();
      Kick();
    }
  }

  bool LoadCredentials() {
    credentials_stamp_ = StampOf(credentials_path_);
    std::optional<std::string> text = cairn::plugin::ReadFile(credentials_path_);
    if (!text) {
      mosquitto_log_printf(MOSQ_LOG_ERR, "cairn: cannot read credentials file %s: %s", credentials_path_.c_str(),
                           std::strerror(errno));
      return false;
    }
    policy::ServiceCredentials creds = policy::ParseServiceCredentials(*text);
    for (int line : creds.skipped) {
      mosquitto_log_printf(MOSQ_LOG_WARNING, "cairn: %s:%d: ignored (not \"svc:<name> <sha256 hex>\")",
                           credentials_path_.c_str(), line);
    }
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "cairn: loaded %zu credentials from %s", creds.by_principal.size(),
                         credentials_path_.c_str());
    policy_.SetServiceCredentials(std::move(creds));
    return true;
  }

  void LoadAccess() {
    if (access_path_.empty()) {
      mosquitto_log_printf(MOSQ_LOG_NOTICE,
                           "cairn: no plugin_opt_access_file: user and integrator logins are refused");
      policy_.SetAccess(nullptr, WallMs());
      return;
    }
    access_stamp_ = StampOf(access_path_);
    std::optional<std::string> text = cairn::plugin::ReadFile(access_path_);
    if (!text) {
      mosquitto_log_printf(MOSQ_LOG_WARNING,
                           "cairn: cannot read access file %s: %s; refusing user and integrator logins",
                           access_path_.c_str(), std::strerror(errno));
      policy_.SetAccess(nullptr, WallMs());
      return;
    }
    cairn::Result<policy::AccessSnapshot> parsed = policy::ParseAccess(*text);
    if (!parsed.ok()) {
      mosquitto_log_printf(MOSQ_LOG_WARNING, "cairn: invalid access file %s: %s; refusing user and integrator logins",
                           access_path_.c_str(), Printable(parsed.error().message.c_str()).c_str());
      policy_.SetAccess(nullptr, WallMs());
      return;
    }
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "cairn: loaded access snapshot %s: %zu users, %zu credentials",
                         access_path_.c_str(), parsed->users.size(), parsed->credentials.size());
    policy_.SetAccess(std::make_shared<const policy::AccessSnapshot>(std::move(parsed).value()), WallMs());
  }

  void SaveRevocations() {
    if (revocations_path_.empty()) return;
    if (!cairn::plugin::WriteFileAtomically(revocations_path_, policy_.revocations().Serialize())) {
      mosquitto_log_printf(MOSQ_LOG_WARNING, "cairn: could not save revocations to %s: %s (kept in memory)",
                           revocations_path_.c_str(), std::strerror(errno));
    }
  }

  policy::BrokerPolicy policy_;
  std::string credentials_path_;
  std::string access_path_;
  std::string revocations_path_;
  FileStamp credentials_stamp_;
  FileStamp access_stamp_;
  int64_t last_reload_check_ms_ = 0;
};

mosquitto_plugin_id_t* g_id = nullptr;

int BasicAuthCallback(int, void* event_data, void* userdata) {
  return static_cast<CairnPlugin*>(userdata)->OnBasicAuth(*static_cast<mosquitto_evt_basic_auth*>(event_data));
}
int AclCheckCallback(int, void* event_data, void* userdata) {
  return static_cast<CairnPlugin*>(userdata)->OnAclCheck(*static_cast<mosquitto_evt_acl_check*>(event_data));
}
int MessageCallback(int, void* event_data, void* userdata) {
  return static_cast<CairnPlugin*>(userdata)->OnMessage(*static_cast<mosquitto_evt_message*>(event_data));
}
int TickCallback(int, void*, void* userdata) { return static_cast<CairnPlugin*>(userdata)->OnTick(); }
int DisconnectCallback(int, void* event_data, void* userdata) {
  return static_cast<CairnPlugin*>(userdata)->OnDisconnect(*static_cast<mosquitto_evt_disconnect*>(event_data));
}

struct Registration {
  int event;
  MOSQ_FUNC_generic_callback cb;
};
const Registration kCallbacks[] = {
    {MOSQ_EVT_BASIC_AUTH, BasicAuthCallback}, {MOSQ_EVT_ACL_CHECK, AclCheckCallback},
    {MOSQ_EVT_MESSAGE, MessageCallback},      {MOSQ_EVT_TICK, TickCallback},
    {MOSQ_EVT_DISCONNECT, DisconnectCallback},
};

void UnregisterAll(mosquitto_plugin_id_t* id) {
  for (const Registration& r : kCallbacks) mosquitto_callback_unregister(id, r.event, r.cb, nullptr);
}

}  // namespace

// The library is built with hidden visibility; only these three are exported.
#define CAIRN_PLUGIN_EXPORT __attribute__((visibility("default")))

extern "C" {

CAIRN_PLUGIN_EXPORT int mosquitto_plugin_version(int supported_version_count, const int* supported_versions) {
  for (int i = 0; i < supported_version_count; ++i) {
    if (supported_versions[i] == 5) return 5;
  }
  return -1;
}

CAIRN_PLUGIN_EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t* identifier, void** userdata,
                                              struct mosquitto_opt* options, int option_count) {
  std::string credentials, access, revocations;
  policy::Limits limits;
  for (int i = 0; i < option_count; ++i) {
    std::string_view key = View(options[i].key);
    const char* value = options[i].value ? options[i].value : "";
    if (key == "credentials_file") {
      credentials = value;
    } else if (key == "access_file") {
      access = value;
    } else if (key == "revocations_file") {
      revocations = value;
    } else if (cairn::Status s = policy::SetLimit(&limits, key, value); !s.ok()) {
      mosquitto_log_printf(MOSQ_LOG_ERR, "cairn: %s", Printable(s.error().message.c_str()).c_str());
      return MOSQ_ERR_INVAL;
    }
  }
  if (credentials.empty()) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "cairn: plugin_opt_credentials_file is required");
    return MOSQ_ERR_INVAL;
  }
  auto plugin = std::make_unique<CairnPlugin>(limits, credentials, access, revocations);
  if (!plugin->Start()) return MOSQ_ERR_INVAL;
  for (const Registration& r : kCallbacks) {
    int rc = mosquitto_callback_register(identifier, r.event, r.cb, nullptr, plugin.get());
    if (rc != MOSQ_ERR_SUCCESS) {
      mosquitto_log_printf(MOSQ_LOG_ERR, "cairn: cannot register callbacks (%d)", rc);
      UnregisterAll(identifier);
      return rc;
    }
  }
  g_id = identifier;
  *userdata = plugin.release();
  mosquitto_log_printf(MOSQ_LOG_NOTICE, "cairn: plugin ready");
  return MOSQ_ERR_SUCCESS;
}

CAIRN_PLUGIN_EXPORT int mosquitto_plugin_cleanup(void* userdata, struct mosquitto_opt*, int) {
  if (g_id != nullptr) UnregisterAll(g_id);
  delete static_cast<CairnPlugin*>(userdata);
  g_id = nullptr;
  return MOSQ_ERR_SUCCESS;
}

}  // extern "C"
