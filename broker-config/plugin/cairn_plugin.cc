// cairn_mosquitto_plugin: the Mosquitto plugin that enforces Cairn identities
// and topic permissions (ARCHITECTURE.md sections 2 and 3).
//
// What it does (plugin API v5, Mosquitto 2.0):
//   * BASIC_AUTH  - who may connect. "bootstrap" with any password; a principal
//                   listed in the credentials file if sha256(password) matches;
//                   "node:{ws}:{node}" only with a client certificate whose CN
//                   is exactly that name, never with a password. Revoked
//                   principals and names with '+', '#', '/' or control
//                   characters are refused. Client ids starting with "node:"
//                   are reserved for nodes: a node's client id IS its
//                   principal, so a password client using one is refused
//                   (before Mosquitto would hand it the node's session and
//                   disconnect the node).
//   * ACL_CHECK   - what each principal may publish, subscribe and receive
//                   (see `RulesFor()` below). Mosquitto 2.0 passes shared
//                   subscriptions with their "$share/{group}/" prefix; the
//                   filter behind it is checked, and a filter is allowed only
//                   if every topic it can match is allowed. A client holding a
//                   certificate must be the node its CN names and use that
//                   name as its client id; otherwise every check (publish,
//                   subscribe, delivery) is denied and it is dropped at the
//                   next tick.
//   * MESSAGE     - stamps every published message with the MQTT v5 user
//                   property "cairn-principal" = the publisher's username, so
//                   services know who sent an RPC; a message that already
//                   carries that property is refused (nobody may forge it).
//                   A message on cairn/v1/rpc/... must carry a response topic
//                   under cairn/v1/reply/{publisher's client id}/ without
//                   wildcards, so nobody can make a service reply into
//                   another client's reply topics.
//                   "svc:registry" publishing a principal to
//                   cairn/v1/sys/revoke revokes it and disconnects it at once;
//                   cairn/v1/sys/unrevoke lifts the revocation.
//   * TICK        - disconnects revoked principals that reconnected, and
//                   certificate clients whose CN or client id is not their
//                   node principal. In Mosquitto 2.0 a certificate login on a
//                   listener with use_identity_as_username skips BASIC_AUTH,
//                   so such a client can complete a CONNECT; it is refused
//                   every publish, subscribe and delivery and dropped at the
//                   next tick. (Because that CONNECT is never shown to the
//                   plugin, a node certificate used with another node's client
//                   id still takes over, i.e. disconnects, that node's
//                   connection once before it is refused everything; only a
//                   holder of a CA-signed node key can do that.)
//
// Topic permissions (services, "svc:*", may publish and subscribe anything;
// {cid} is the client's own client id, granted only if it has no '+', '#'
// or '/'):
//   principal          publish                                  subscribe / receive
//   user:*             cairn/v1/rpc/#                           cairn/v1/ws/#, cairn/v1/reply/{cid}/#
//   bootstrap          cairn/v1/rpc/registry/Bootstrap          cairn/v1/reply/{cid}/#
//   node:{ws}:{node}   cairn/v1/ws/{ws}/nodes/{node}/status,    cairn/v1/ws/{ws}/#,
//                      .../health, .../logs,                    cairn/v1/reply/{cid}/#
//                      cairn/v1/ws/{ws}/data/#
//                      (no RPC topic: see "Last wills" below)
//
// Last wills (what Mosquitto 2.0.11 does, and why nodes may not write RPC
// topics): when the broker sends a will it checks the will's TOPIC with
// ACL_CHECK (write access, as the client), but the will never passes the
// MESSAGE event, and ACL_CHECK gets no properties (event.properties is always
// NULL in 2.0). So a will is not stamped with cairn-principal, and its user
// properties and response topic are never checked: a will on an RPC topic
// would reach a service unstamped, or with a FORGED cairn-principal, and with
// any response topic. Therefore no principal-bearing (RPC) topic may be
// writable by principals whose wills could matter:
//   * nodes get no RPC topic at all (they call no RPC yet);
//   * operators and "bootstrap" must write RPC topics, so their wills are
//     dropped by WillGuard (below): an ordinary PUBLISH is ACL_CHECK(write),
//     MESSAGE, then ACL_CHECK(read) per subscriber; a will is the write check
//     and the reads with no MESSAGE in between, so the reads that follow an
//     allowed RPC write without MESSAGE are refused. This relies on the
//     event order of Mosquitto 2.0.11 (plugin_test.sh checks it);
//   * retained writes to RPC topics are refused (a retained will would be
//     stored and handed to later subscribers outside that order);
//   * services ("svc:*") may write anything; their wills are their own code's.
// Wills on other topics (a node's offline status) are delivered as usual,
// without cairn-principal: consumers must not expect the stamp on a will.
//
// How to enable it (see broker-config/mosquitto.conf.template):
//   per_listener_settings false
//   plugin /path/to/cairn_mosquitto_plugin.so
//   plugin_opt_credentials_file /path/to/credentials
//   plugin_opt_revocations_file /path/to/revoked-principals   (optional)
//
// Credentials file: one "<principal> <sha256 hex of password>" per line
// (optionally followed by a '#' comment), '#' comment lines and blank lines
// ignored; malformed lines are skipped with a warning. It is re-read when its mtime (or size or
// inode) changes, checked at each BASIC_AUTH; write it atomically (write a
// temporary file, then rename). If it becomes unreadable, every password
// login is refused until it is readable again (fail closed).
//
// Revocations file (optional): the revoked set, one principal per line,
// loaded at start and rewritten atomically on every change, so a revocation
// survives a broker restart. It must be in a directory the broker user can
// write (the broker data directory).
//
// Mosquitto started as root drops to user "mosquitto": the plugin, the
// credentials file and the revocations directory must be accessible to it.
//
// Thread-safety: Mosquitto 2.0 calls every plugin callback from its single
// main thread, so the plugin state below is used without locks.

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

constexpr std::string_view kPrincipalProperty = "cairn-principal";
constexpr std::string_view kRegistryPrincipal = "svc:registry";
constexpr std::string_view kRevokeTopic = "cairn/v1/sys/revoke";
constexpr std::string_view kUnrevokeTopic = "cairn/v1/sys/unrevoke";
constexpr std::string_view kBootstrapPrincipal = "bootstrap";
constexpr std::string_view kNodePrefix = "node:";  // principals and client ids
constexpr std::string_view kRpcRoot = "cairn/v1/rpc";
constexpr std::string_view kReplyRoot = "cairn/v1/reply/";
constexpr std::size_t kMaxPrincipalLength = 512;

using Digest = std::array<unsigned char, 32>;

// ---------------------------------------------------------------------------
// Names and principals

// True if `name` is a DNS label: 1-63 of [a-z0-9-], starting and ending with a
// letter or digit (the same rule as cairn::topics::IsValidName).
bool IsDnsLabel(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  return name.front() != '-' && name.back() != '-';
}

// A username can become a principal only if it cannot widen or split a topic
// and cannot garble a log line.
bool IsAcceptableUsername(std::string_view name) {
  if (name.empty() || name.size() > kMaxPrincipalLength) return false;
  for (unsigned char c : name) {
    if (c == '+' || c == '#' || c == '/' || c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

// True if `cid` can be used as one topic level (the reply prefix
// cairn/v1/reply/{cid}/): not empty, no wildcard, no level separator.
bool IsTopicLevel(std::string_view cid) {
  return !cid.empty() && cid.find_first_of("+#/") == std::string_view::npos;
}

// True if `topic` is an RPC request topic (or the RPC root itself).
bool IsRpcTopic(std::string_view topic) {
  return topic.starts_with(kRpcRoot) &&
         (topic.size() == kRpcRoot.size() || topic[kRpcRoot.size()] == '/');
}

// The username made safe to log (control characters escaped, length capped).
std::string Printable(const char* raw) {
  if (raw == nullptr) return "(none)";
  std::string out;
  for (std::size_t i = 0; raw[i] != '\0' && i < 128; ++i) {
    auto c = static_cast<unsigned char>(raw[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

enum class Kind { kService, kUser, kBootstrap, kNode, kUnknown };

struct Principal {
  Kind kind = Kind::kUnknown;
  std::string_view ws;    // kNode only
  std::string_view node;  // kNode only
};

Principal ParsePrincipal(std::string_view name) {
  Principal p;
  if (!IsAcceptableUsername(name)) return p;
  if (name == kBootstrapPrincipal) {
    p.kind = Kind::kBootstrap;
  } else if (name.starts_with("svc:") && name.size() > 4) {
    p.kind = Kind::kService;
  } else if (name.starts_with("user:") && name.size() > 5) {
    p.kind = Kind::kUser;
  } else if (name.starts_with(kNodePrefix)) {
    std::string_view rest = name.substr(kNodePrefix.size());
    std::size_t colon = rest.find(':');
    if (colon == std::string_view::npos) return p;
    std::string_view ws = rest.substr(0, colon);
    std::string_view node = rest.substr(colon + 1);
    if (!IsDnsLabel(ws) || !IsDnsLabel(node)) return p;
    p.kind = Kind::kNode;
    p.ws = ws;
    p.node = node;
  }
  return p;
}

// ---------------------------------------------------------------------------
// Topic permissions

std::vector<std::string_view> SplitLevels(std::string_view s) {
  std::vector<std::string_view> levels;
  std::size_t start = 0;
  while (true) {
    std::size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) {
      levels.push_back(s.substr(start));
      return levels;
    }
    levels.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
}

// True if every topic that `filter` can match is matched by the allowed
// `pattern`. A concrete topic is a filter without wildcards, so this is also
// the plain "topic matches pattern" test for publish and delivery.
//   pattern literal  - needs the same literal (not + or #)
//   pattern '+'      - accepts a literal or '+'
//   pattern '#'      - (last level) accepts anything below, and the parent
bool Covers(std::string_view pattern, std::string_view filter) {
  std::vector<std::string_view> p = SplitLevels(pattern);
  std::vector<std::string_view> f = SplitLevels(filter);
  std::size_t i = 0;
  for (; i < p.size(); ++i) {
    if (p[i] == "#") return true;
    if (i >= f.size()) return false;
    if (f[i] == "#") return false;
    if (p[i] == "+") continue;
    if (f[i] == "+" || f[i] != p[i]) return false;
  }
  return i == f.size();
}

struct Rules {
  std::vector<std::string> write;
  std::vector<std::string> read;  // also what may be subscribed
};

// The permissions of `p` (the table in the header comment); `cid` is the
// client id. Services are handled before this is called. Names substituted
// into patterns are DNS labels or checked client ids, so they cannot
// introduce wildcards or extra levels.
Rules RulesFor(const Principal& p, std::string_view cid) {
  Rules r;
  bool cid_ok = IsTopicLevel(cid);
  std::string reply = std::string(kReplyRoot) + std::string(cid) + "/#";
  switch (p.kind) {
    case Kind::kUser:
      r.write = {"cairn/v1/rpc/#"};
      r.read = {"cairn/v1/ws/#"};
      if (cid_ok) r.read.push_back(reply);
      break;
    case Kind::kBootstrap:
      r.write = {"cairn/v1/rpc/registry/Bootstrap"};
      if (cid_ok) r.read.push_back(reply);
      break;
    case Kind::kNode: {
      std::string ws = "cairn/v1/ws/" + std::string(p.ws);
      std::string own = ws + "/nodes/" + std::string(p.node);
      // No RPC topic: a node's last will would reach the service unstamped.
      r.write = {own + "/status", own + "/health", own + "/logs", ws + "/data/#"};
      r.read = {ws + "/#"};
      if (cid_ok) r.read.push_back(reply);
      break;
    }
    case Kind::kService:
    case Kind::kUnknown:
      break;
  }
  return r;
}

bool AnyCovers(const std::vector<std::string>& patterns, std::string_view topic) {
  for (const auto& pattern : patterns) {
    if (Covers(pattern, topic)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Passwords

std::optional<Digest> Sha256(std::string_view data) {
  Digest out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != out.size()) {
    return std::nullopt;
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<Digest> ParseHexDigest(std::string_view hex) {
  Digest out{};
  if (hex.size() != out.size() * 2) return std::nullopt;
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  const char* ws = " \t\r\n";
  std::size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  std::size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

// ---------------------------------------------------------------------------
// Client certificates

struct PeerIdentity {
  bool has_certificate = false;
  std::optional<std::string> common_name;  // set only if exactly one valid CN
};

PeerIdentity PeerOf(const struct mosquitto* client) {
  PeerIdentity id;
  auto* cert = static_cast<X509*>(mosquitto_client_certificate(client));
  if (cert == nullptr) return id;
  id.has_certificate = true;
  X509_NAME* subject = X509_get_subject_name(cert);
  int idx = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
  if (idx >= 0 && X509_NAME_get_index_by_NID(subject, NID_commonName, idx) < 0) {
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
    unsigned char* utf8 = nullptr;
    int len = data ? ASN1_STRING_to_UTF8(&utf8, data) : -1;
    if (len >= 0) {
      std::string cn(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
      if (cn.find('\0') == std::string::npos) id.common_name = std::move(cn);
    }
    OPENSSL_free(utf8);
  }
  X509_free(cert);
  return id;
}

// A certificate is only requested on the node listener, so a client holding
// one must be the node named by its CN, connected with that name as its
// client id. Returns why not, or nullptr. (Node principals without a
// certificate never pass BASIC_AUTH; the broker's own retained-source checks
// use a detached client record without TLS, which must still pass here.)
const char* CertificateMismatch(const struct mosquitto* client, std::string_view username,
                                const Principal& p) {
  PeerIdentity peer = PeerOf(client);
  if (!peer.has_certificate) return nullptr;
  if (p.kind != Kind::kNode || !peer.common_name || *peer.common_name != username) {
    return "username does not match its certificate";
  }
  const char* cid = mosquitto_client_id(client);
  if (cid == nullptr || username != cid) return "client id is not the node principal";
  return nullptr;
}

// ---------------------------------------------------------------------------
// Plugin state

class CairnPlugin {
 public:
  CairnPlugin(std::string credentials_path, std::string revocations_path)
      : credentials_path_(std::move(credentials_path)),
        revocations_path_(std::move(revocations_path)) {}

  // Loads the files at start; false (and a log line) on misconfiguration.
  bool Start() {
    if (!LoadCredentials()) return false;
    if (!revocations_path_.empty() && !LoadRevocations()) return false;
    return true;
  }

  int OnBasicAuth(const mosquitto_evt_basic_auth& ev) {
    will_guard_.Reset();
    const char* raw = ev.username;
    std::string who = Printable(raw);
    if (raw == nullptr) {
      mosquitto_log_printf(MOSQ_LOG_NOTICE, "cairn: denied connect without username from %s",
                           Address(ev.client));
      return MOSQ_ERR_AUTH;
    }
    std::string_view username = raw;
    const char* raw_cid = mosquitto_client_id(ev.client);
    std::string_view cid = raw_cid ? std::string_view(raw_cid) : std::string_view();
    if (cid.starts_with(kNodePrefix) && cid != username) {
      // Reserved for node certificates (checked below if this is one).
      return Deny(ev.client, who, "client ids starting with 'node:' are reserved for nodes");
    }
    Principal p = ParsePrincipal(username);
    if (p.kind == Kind::kUnknown && !IsAcceptableUsername(username)) {
      return Deny(ev.client, who, "username has '+', '#', '/' or control characters");
    }
    if (revoked_.count(std::string(username)) != 0) return Deny(ev.client, who, "principal is revoked");
    if (p.kind == Kind::kBootstrap) return MOSQ_ERR_SUCCESS;
    if (username.starts_with(kNodePrefix) || cid.starts_with(kNodePrefix)) {
      // Only reached if the broker asks about a certificate login (Mosquitto
      // 2.0 does not when use_identity_as_username is set).
      if (p.kind != Kind::kNode) return Deny(ev.client, who, "malformed node principal");
      PeerIdentity peer = PeerOf(ev.client);
      if (!peer.has_certificate) return Deny(ev.client, who, "node principal without certificate");
      if (!peer.common_name || *peer.common_name != username) {
        return Deny(ev.client, who, "certificate CN does not match node principal");
      }
      if (cid != username) return Deny(ev.client, who, "client id is not the node principal");
      return MOSQ_ERR_SUCCESS;
    }
    ReloadCredentialsIfChanged();
    auto it = credentials_.find(std::string(username));
    if (it == credentials_.end()) return Deny(ev.client, who, "unknown principal");
    std::optional<Digest> given = Sha256(ev.password ? std::string_view(ev.password) : "");
    if (!given || CRYPTO_memcmp(given->data(), it->second.data(), it->second.size()) != 0) {
      return Deny(ev.client, who, "wrong password");
    }
    return MOSQ_ERR_SUCCESS;
  }

  int OnAclCheck(const mosquitto_evt_acl_check& ev) {
    // A delivery of the message whose RPC write was just allowed without a
    // MESSAGE event in between: a last will (see WillGuard).
    if (ev.access == MOSQ_ACL_READ && will_guard_.Matches(ev.topic)) {
      will_guard_.LogDrop();
      return MOSQ_ERR_ACL_DENIED;
    }
    will_guard_.Reset();
    if (ev.access == MOSQ_ACL_UNSUBSCRIBE) return MOSQ_ERR_SUCCESS;
    const char* why = AclDenial(ev);
    if (why == nullptr) {
      if (ev.access == MOSQ_ACL_WRITE && ev.topic != nullptr && IsRpcTopic(ev.topic)) {
        will_guard_.Arm(ev.topic, mosquitto_client_username(ev.client),
                        mosquitto_client_id(ev.client));
      }
      return MOSQ_ERR_SUCCESS;
    }
    mosquitto_log_printf(MOSQ_LOG_DEBUG, "cairn: denied %s '%s' to '%s' (client %s): %s",
                         AccessName(ev.access), Printable(ev.topic).c_str(),
                         Printable(mosquitto_client_username(ev.client)).c_str(),
                         Printable(mosquitto_client_id(ev.client)).c_str(), why);
    return MOSQ_ERR_ACL_DENIED;
  }

  // Revoked principals that used the broker since the last tick, and
  // certificate clients that are not the node they claim to be, are
  // disconnected here, outside the packet handling of their own connection.
  // (Certificate logins on the node listener do not pass through
  // BASIC_AUTH in Mosquitto 2.0, so such a client can complete a CONNECT; it
  // is refused everything and dropped at its first request.)
  int OnTick() {
    will_guard_.Reset();
    if (!pending_kicks_.empty()) {
      std::set<std::string> kicks;
      kicks.swap(pending_kicks_);
      for (const auto& principal : kicks) {
        mosquitto_log_printf(MOSQ_LOG_NOTICE, "cairn: disconnecting revoked '%s'",
                             Printable(principal.c_str()).c_str());
        mosquitto_kick_client_by_username(principal.c_str(), false);
      }
    }
    if (!pending_client_kicks_.empty()) {
      std::set<std::string> kicks;
      kicks.swap(pending_client_kicks_);
      for (const auto& cid : kicks) {
        mosquitto_log_printf(MOSQ_LOG_NOTICE, "cairn: disconnecting client %s (certificate mismatch)",
                             Printable(cid.c_str()).c_str());
        mosquitto_kick_client_by_clientid(cid.c_str(), false);
      }
    }
    return MOSQ_ERR_SUCCESS;
  }

  int OnMessage(mosquitto_evt_message& ev) {
    will_guard_.Reset();  // the write just checked was an ordinary PUBLISH
    if (ev.client == nullptr) return MOSQ_ERR_SUCCESS;  // broker-internal
    const char* raw_user = mosquitto_client_username(ev.client);
    if (raw_user == nullptr) return MOSQ_ERR_ACL_DENIED;
    if (HasPrincipalProperty(ev.properties, nullptr)) {
      LogForged(raw_user, ev.topic);
      return MOSQ_ERR_ACL_DENIED;
    }
    std::string_view topic = ev.topic ? std::string_view(ev.topic) : std::string_view();
    if (IsRpcTopic(topic)) {
      const char* cid = mosquitto_client_id(ev.client);
      if (const char* why = ResponseTopicDenial(ev.properties, cid)) {
        mosquitto_log_printf(MOSQ_LOG_WARNING, "cairn: refused request from '%s' (client %s) on '%s': %s",
                             Printable(raw_user).c_str(), Printable(cid).c_str(),
                             Printable(ev.topic).c_str(), why);
        return MOSQ_ERR_ACL_DENIED;
      }
    }
    int rc = mosquitto_property_add_string_pair(&ev.properties, MQTT_PROP_USER_PROPERTY,
                                                std::string(kPrincipalProperty).c_str(), raw_user);
    if (rc != MOSQ_ERR_SUCCESS) return rc;

    if (topic == kRevokeTopic || topic == kUnrevokeTopic) {
      HandleRevocation(raw_user, topic == kRevokeTopic, ev);
    }
    return MOSQ_ERR_SUCCESS;
  }

 private:
  static const char* AccessName(int access) {
    switch (access) {
      case MOSQ_ACL_READ:
        return "read";
      case MOSQ_ACL_WRITE:
        return "write";
      case MOSQ_ACL_SUBSCRIBE:
        return "subscribe";
      default:
        return "access";
    }
  }

  // Why `ev` is denied, or nullptr if it is allowed.
  const char* AclDenial(const mosquitto_evt_acl_check& ev) {
    const char* raw_user = mosquitto_client_username(ev.client);
    if (raw_user == nullptr) return "no username";
    if (ev.topic == nullptr) return "no topic";
    std::string_view username = raw_user;
    Principal p = ParsePrincipal(username);
    if (p.kind == Kind::kUnknown) return "not a Cairn principal";
    if (revoked_.count(std::string(username)) != 0) {
      pending_kicks_.insert(std::string(username));
      return "principal is revoked";
    }

    std::string_view topic = ev.topic;
    if (ev.access == MOSQ_ACL_SUBSCRIBE && topic.starts_with("$share/")) {
      std::size_t slash = topic.find('/', 7);
      if (slash == std::string_view::npos || slash == 7) return "malformed shared subscription";
      topic = topic.substr(slash + 1);
    }
    // Every access, deliveries included: a client that took over a durable
    // session under another client id must not receive what was queued or
    // subscribed for it.
    const char* cid = mosquitto_client_id(ev.client);
    if (const char* mismatch = CertificateMismatch(ev.client, username, p)) {
      std::string key = cid ? cid : "";
      if (!key.empty() && pending_client_kicks_.insert(key).second) {
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "cairn: refusing everything to '%s' (client %s): %s; disconnecting it",
                             Printable(raw_user).c_str(), Printable(cid).c_str(), mismatch);
      }
      return mismatch;
    }
    if (ev.access == MOSQ_ACL_WRITE && ev.retain && IsRpcTopic(topic)) {
      // A retained request (or will) would be handed to every future
      // subscriber, and its retained deliveries escape WillGuard.
      return "RPC requests cannot be retained";
    }
    if (ev.access == MOSQ_ACL_WRITE && HasPrincipalProperty(ev.properties, raw_user)) {
      // Mosquitto 2.0 passes no properties to ACL_CHECK (always NULL), so
      // this only matters for brokers that do; it would cover wills, which
      // skip MESSAGE. A stored message re-checked for its source
      // (check_retain_source) carries the true value and passes.
      LogForged(raw_user, ev.topic);
      return "forged cairn-principal property";
    }
    if (p.kind == Kind::kService) return nullptr;

    Rules rules = RulesFor(p, cid ? std::string_view(cid) : std::string_view());
    switch (ev.access) {
      case MOSQ_ACL_WRITE:
        return AnyCovers(rules.write, topic) ? nullptr : "not writable by this principal";
      case MOSQ_ACL_READ:
      case MOSQ_ACL_SUBSCRIBE:
        return AnyCovers(rules.read, topic) ? nullptr : "not readable by this principal";
      default:
        return "unknown access";
    }
  }

  static const char* Address(const struct mosquitto* client) {
    const char* a = mosquitto_client_address(client);
    return a ? a : "?";
  }

  static int Deny(const struct mosquitto* client, const std::string& who, const char* why) {
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "cairn: denied connect of '%s' (client %s) from %s: %s",
                         who.c_str(), Printable(mosquitto_client_id(client)).c_str(),
                         Address(client), why);
    return MOSQ_ERR_AUTH;
  }

  static void LogForged(const char* user, const char* topic) {
    mosquitto_log_printf(MOSQ_LOG_WARNING,
                         "cairn: refused message from '%s' on '%s': it carries a forged %s property",
                         Printable(user).c_str(), Printable(topic).c_str(),
                         std::string(kPrincipalProperty).c_str());
  }

  // Why the response topic in `props` is not acceptable for an RPC request
  // from client `cid`, or nullptr. It must lie under the client's own reply
  // prefix cairn/v1/reply/{cid}/ and contain no wildcard, so that the
  // service's reply can only reach the requester.
  static const char* ResponseTopicDenial(const mosquitto_property* props, const char* cid) {
    if (cid == nullptr || !IsTopicLevel(cid)) return "client id cannot own a reply topic";
    char* value = nullptr;
    if (mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &value, false) == nullptr ||
        value == nullptr) {
      std::free(value);
      return "no response topic";
    }
    std::string_view response = value;
    std::string prefix = std::string(kReplyRoot) + cid + "/";
    const char* why = nullptr;
    if (!response.starts_with(prefix)) {
      why = "response topic is not under the client's own reply prefix";
    } else if (response.find_first_of("+#") != std::string_view::npos) {
      why = "response topic contains a wildcard";
    }
    std::free(value);
    return why;
  }

  // True if `props` has a cairn-principal user property (name compared
  // case-insensitively) whose value is not `allowed_value` (nullptr: any).
  static bool HasPrincipalProperty(const mosquitto_property* props, const char* allowed_value) {
    char* name = nullptr;
    char* value = nullptr;
    bool found = false;
    const mosquitto_property* p =
        mosquitto_property_read_string_pair(props, MQTT_PROP_USER_PROPERTY, &name, &value, false);
    while (p != nullptr && !found) {
      if (name && strcasecmp(name, std::string(kPrincipalProperty).c_str()) == 0) {
        found = allowed_value == nullptr || value == nullptr || std::strcmp(value, allowed_value) != 0;
      }
      std::free(name);
      std::free(value);
      name = value = nullptr;
      if (!found) {
        p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value, true);
      }
    }
    return found;
  }

  void HandleRevocation(const char* publisher, bool revoke, const mosquitto_evt_message& ev) {
    if (std::string_view(publisher) != kRegistryPrincipal) {
      mosquitto_log_printf(MOSQ_LOG_WARNING, "cairn: ignored %s from %s: only %s may revoke",
                           ev.topic, Printable(publisher).c_str(),
                           std::string(kRegistryPrincipal).c_str());
      return;
    }
    std::string_view payload(static_cast<const char*>(ev.payload), ev.payload ? ev.payloadlen : 0);
    std::string principal(Trim(payload));
    if (!IsAcceptableUsername(principal) || principal == kRegistryPrincipal) {
      mosquitto_log_printf(MOSQ_LOG_WARNING, "cairn: ignored %s with invalid principal '%s'",
                           ev.topic, Printable(principal.c_str()).c_str());
      return;
    }
    if (revoke) {
      revoked_.insert(principal);
      mosquitto_log_printf(MOSQ_LOG_NOTICE, "cairn: revoked '%s'; disconnecting it",
                           principal.c_str());
      SaveRevocations();
      mosquitto_kick_client_by_username(principal.c_str(), false);
    } else {
      revoked_.erase(principal);
      mosquitto_log_printf(MOSQ_LOG_NOTICE, "cairn: unrevoked '%s'", principal.c_str());
      SaveRevocations();
    }
  }

  struct FileStamp {
    bool exists = false;
    struct timespec mtime {};
    off_t size = 0;
    ino_t inode = 0;
    bool operator==(const FileStamp& o) const {
      return exists == o.exists && mtime.tv_sec == o.mtime.tv_sec &&
             mtime.tv_nsec == o.mtime.tv_nsec && size == o.size && inode == o.inode;
    }
  };

  static FileStamp StampOf(const std::string& path) {
    FileStamp s;
    struct stat st {};
    if (stat(path.c_str(), &st) == 0) {
      s.exists = true;
      s.mtime = st.st_mtim;
      s.size = st.st_size;
      s.inode = st.st_ino;
    }
    return s;
  }

  void ReloadCredentialsIfChanged() {
    if (StampOf(credentials_path_) == credentials_stamp_) return;
    if (!LoadCredentials()) {
      credentials_.clear();  // fail closed
      mosquitto_log_printf(MOSQ_LOG_WARNING,
                           "cairn: credentials unreadable; refusing password logins until fixed");
    }
  }

  bool LoadCredentials() {
    credentials_stamp_ = StampOf(credentials_path_);
    std::ifstream in(credentials_path_);
    if (!in) {
      mosquitto_log_printf(MOSQ_LOG_ERR, "cairn: cannot read credentials file %s: %s",
                           credentials_path_.c_str(), std::strerror(errno));
      return false;
    }
    std::unordered_map<std::string, Digest> loaded;
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      std::string_view l = Trim(line);
      if (l.empty() || l.front() == '#') continue;
      std::size_t sep = l.find_first_of(" \t");
      std::string_view name = l.substr(0, sep);
      std::string_view rest = sep == std::string_view::npos ? "" : Trim(l.substr(sep));
      std::size_t hash_end = rest.find_first_of(" \t");
      std::string_view hash = rest.substr(0, hash_end);
      std::string_view tail = hash_end == std::string_view::npos ? "" : Trim(rest.substr(hash_end));
      if (!tail.empty() && tail.front() != '#') hash = {};  // extra fields: malformed
      std::optional<Digest> digest = ParseHexDigest(hash);
      if (!IsAcceptableUsername(name) || !digest) {
        mosquitto_log_printf(MOSQ_LOG_WARNING, "cairn: %s:%d: ignored malformed line",
                             credentials_path_.c_str(), lineno);
        continue;
      }
      loaded[std::string(name)] = *digest;
    }
    credentials_ = std::move(loaded);
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "cairn: loaded %zu credentials from %s",
                         credentials_.size(), credentials_path_.c_str());
    return true;
  }

  bool LoadRevocations() {
    std::ifstream in(revocations_path_);
    if (!in) {
      if (errno == ENOENT) return true;  // nothing revoked yet
      mosquitto_log_printf(MOSQ_LOG_ERR, "cairn: cannot read revocations file %s: %s",
                           revocations_path_.c_str(), std::strerror(errno));
      return false;
    }
    std::string line;
    while (std::getline(in, line)) {
      std::string_view l = Trim(line);
      if (l.empty() || l.front() == '#') continue;
      if (IsAcceptableUsername(l)) revoked_.insert(std::string(l));
    }
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "cairn: %zu principals revoked (from %s)",
                         revoked_.size(), revocations_path_.c_str());
    return true;
  }

  void SaveRevocations() {
    if (revocations_path_.empty()) return;
    std::string tmp = revocations_path_ + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    bool ok = f != nullptr;
    if (ok) {
      std::fputs("# Principals revoked through cairn/v1/sys/revoke (written by the broker).\n", f);
      for (const auto& p : revoked_) ok = ok && std::fprintf(f, "%s\n", p.c_str()) > 0;
      ok = (std::fflush(f) == 0) && ok;
      ok = (fsync(fileno(f)) == 0) && ok;
      ok = (std::fclose(f) == 0) && ok;
    }
    if (ok) ok = std::rename(tmp.c_str(), revocations_path_.c_str()) == 0;
    if (!ok) {
      mosquitto_log_printf(MOSQ_LOG_WARNING,
                           "cairn: could not save revocations to %s: %s (kept in memory)",
                           revocations_path_.c_str(), std::strerror(errno));
    }
  }

  // Last wills on RPC topics (Mosquitto 2.0.11). A will reaches no plugin
  // event with its properties: it is not stamped, and a forged
  // cairn-principal or foreign response topic in it is not seen. What the
  // plugin does see: an ordinary PUBLISH is ACL_CHECK(write), then MESSAGE,
  // then one ACL_CHECK(read) per subscriber, all in one go; a will is
  // ACL_CHECK(write), then the reads, with no MESSAGE. So after an allowed
  // write on an RPC topic the guard is armed; MESSAGE (or any other event)
  // disarms it; reads of that topic while it is armed are deliveries of a
  // will and are refused. (Retained RPC writes are refused outright, so a
  // will cannot be stored and delivered later either.)
  class WillGuard {
   public:
    void Arm(const char* topic, const char* user, const char* cid) {
      armed_ = true;
      logged_ = false;
      topic_ = topic;
      user_ = Printable(user);
      cid_ = Printable(cid);
    }
    void Reset() { armed_ = false; }
    bool Matches(const char* topic) const { return armed_ && topic != nullptr && topic_ == topic; }
    void LogDrop() {
      if (logged_) return;
      logged_ = true;
      mosquitto_log_printf(MOSQ_LOG_WARNING,
                           "cairn: dropped a last will of '%s' (client %s) on '%s': wills on RPC "
                           "topics carry no broker-stamped principal",
                           user_.c_str(), cid_.c_str(), Printable(topic_.c_str()).c_str());
    }

   private:
    bool armed_ = false;
    bool logged_ = false;
    std::string topic_;
    std::string user_;
    std::string cid_;
  };

  WillGuard will_guard_;
  std::string credentials_path_;
  std::string revocations_path_;
  FileStamp credentials_stamp_;
  std::unordered_map<std::string, Digest> credentials_;
  std::set<std::string> revoked_;
  std::set<std::string> pending_kicks_;         // usernames (revoked)
  std::set<std::string> pending_client_kicks_;  // client ids (certificate mismatch)
};

mosquitto_plugin_id_t* g_id = nullptr;

int BasicAuthCallback(int, void* event_data, void* userdata) {
  return static_cast<CairnPlugin*>(userdata)->OnBasicAuth(
      *static_cast<mosquitto_evt_basic_auth*>(event_data));
}

int AclCheckCallback(int, void* event_data, void* userdata) {
  return static_cast<CairnPlugin*>(userdata)->OnAclCheck(
      *static_cast<mosquitto_evt_acl_check*>(event_data));
}

int TickCallback(int, void*, void* userdata) {
  return static_cast<CairnPlugin*>(userdata)->OnTick();
}

int MessageCallback(int, void* event_data, void* userdata) {
  return static_cast<CairnPlugin*>(userdata)->OnMessage(
      *static_cast<mosquitto_evt_message*>(event_data));
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
  std::string credentials;
  std::string revocations;
  for (int i = 0; i < option_count; ++i) {
    std::string_view key = options[i].key ? options[i].key : "";
    const char* value = options[i].value ? options[i].value : "";
    if (key == "credentials_file") {
      credentials = value;
    } else if (key == "revocations_file") {
      revocations = value;
    } else {
      mosquitto_log_printf(MOSQ_LOG_ERR, "cairn: unknown option plugin_opt_%s",
                           Printable(options[i].key).c_str());
      return MOSQ_ERR_INVAL;
    }
  }
  if (credentials.empty()) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "cairn: plugin_opt_credentials_file is required");
    return MOSQ_ERR_INVAL;
  }
  auto* plugin = new CairnPlugin(credentials, revocations);
  if (!plugin->Start()) {
    delete plugin;
    return MOSQ_ERR_INVAL;
  }
  int rc = mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, BasicAuthCallback, nullptr,
                                       plugin);
  if (rc == MOSQ_ERR_SUCCESS) {
    rc = mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, AclCheckCallback, nullptr,
                                     plugin);
  }
  if (rc == MOSQ_ERR_SUCCESS) {
    rc = mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, MessageCallback, nullptr, plugin);
  }
  if (rc == MOSQ_ERR_SUCCESS) {
    rc = mosquitto_callback_register(identifier, MOSQ_EVT_TICK, TickCallback, nullptr, plugin);
  }
  if (rc != MOSQ_ERR_SUCCESS) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "cairn: cannot register callbacks (%d)", rc);
    mosquitto_callback_unregister(identifier, MOSQ_EVT_BASIC_AUTH, BasicAuthCallback, nullptr);
    mosquitto_callback_unregister(identifier, MOSQ_EVT_ACL_CHECK, AclCheckCallback, nullptr);
    mosquitto_callback_unregister(identifier, MOSQ_EVT_MESSAGE, MessageCallback, nullptr);
    mosquitto_callback_unregister(identifier, MOSQ_EVT_TICK, TickCallback, nullptr);
    delete plugin;
    return rc;
  }
  g_id = identifier;
  *userdata = plugin;
  mosquitto_log_printf(MOSQ_LOG_NOTICE, "cairn: plugin ready");
  return MOSQ_ERR_SUCCESS;
}

CAIRN_PLUGIN_EXPORT int mosquitto_plugin_cleanup(void* userdata, struct mosquitto_opt*, int) {
  if (g_id != nullptr) {
    mosquitto_callback_unregister(g_id, MOSQ_EVT_BASIC_AUTH, BasicAuthCallback, nullptr);
    mosquitto_callback_unregister(g_id, MOSQ_EVT_ACL_CHECK, AclCheckCallback, nullptr);
    mosquitto_callback_unregister(g_id, MOSQ_EVT_MESSAGE, MessageCallback, nullptr);
    mosquitto_callback_unregister(g_id, MOSQ_EVT_TICK, TickCallback, nullptr);
  }
  delete static_cast<CairnPlugin*>(userdata);
  g_id = nullptr;
  return MOSQ_ERR_SUCCESS;
}

}  // extern "C"
