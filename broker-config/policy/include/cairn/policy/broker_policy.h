// BrokerPolicy: every decision of the Cairn broker plugin, without Mosquitto
// types, so that it is unit-tested with fake time and could serve another
// front end (e.g. an HTTP authorisation endpoint of a clustered broker).
// The plugin's glue turns each broker event into one call here and carries
// out what comes back (refuse, set the username, kick clients, log notes).
//
// It tracks live connections (by an opaque ClientHandle, the broker's client
// pointer) from a successful Connect() until Disconnected() for the same
// handle, so a takeover's late disconnect of the old connection does not
// drop the new holder of a client id.
//
// Last wills on RPC topics (Mosquitto 2.0.11): a will is checked only as a
// write of its topic, never reaches the MESSAGE event (no cairn-principal
// stamp, no response-topic check) and is then delivered with one read
// check per subscriber. An ordinary PUBLISH is write, MESSAGE, reads. So
// after an allowed RPC write by a non-service, reads of that topic before
// any other event are a will's deliveries and are refused.
//
// Times: `now_ms` is a steady clock (limits, ages), `wall_ms` the Unix time
// in ms (integrator credential expiry); both are passed in.
// Thread-safety: none; the broker calls plugins from its one main thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/policy/access.h"
#include "cairn/policy/credentials.h"
#include "cairn/policy/limits.h"
#include "cairn/policy/principal.h"
#include "cairn/policy/refusals.h"
#include "cairn/policy/revocations.h"
#include "cairn/policy/topic_rules.h"

namespace cairn::policy {

inline constexpr std::string_view kPrincipalProperty = "cairn-principal";

// What the TLS layer proved about a client certificate.
struct Certificate {
  std::optional<std::string> common_name;  // set only if exactly one valid CN
  std::string serial;                      // hex, as BN_bn2hex prints it
};

struct ConnectRequest {
  ClientHandle client = nullptr;
  std::optional<std::string_view> username;  // nullopt: none sent
  std::optional<std::string_view> password;
  std::string_view client_id;
  std::optional<Certificate> certificate;  // only on the node listener
};

struct ConnectDecision {
  Refusal refusal = Refusal::kNone;
  std::string username;       // the principal the client acts as
  bool set_username = false;  // certificate login without username: use `username`
};

struct MessageRequest {
  ClientHandle client = nullptr;
  std::string_view username;
  std::string_view client_id;
  std::string_view topic;
  std::string_view payload;
  bool retain = false;
  bool has_principal_property = false;  // a cairn-principal user property (any case)
  std::optional<std::string_view> response_topic;
};

struct Kick {
  ClientHandle client = nullptr;
  std::string client_id;
  std::string why;
};

struct Note {
  enum class Level { kNotice, kWarning } level = Level::kNotice;
  std::string text;
};

class BrokerPolicy {
 public:
  explicit BrokerPolicy(Limits limits = {});
  BrokerPolicy(const BrokerPolicy&) = delete;
  BrokerPolicy& operator=(const BrokerPolicy&) = delete;

  const Limits& limits() const { return limits_; }

  // Inputs from files. SetAccess(nullptr) = missing or invalid snapshot:
  // user and integrator logins are refused and live ones kicked. Sessions
  // whose user or credential is gone, expired or has a new password are
  // kicked (see TakeKicks).
  void SetServiceCredentials(ServiceCredentials services);
  void SetAccess(std::shared_ptr<const AccessSnapshot> access, int64_t wall_ms);
  void SetRevocations(Revocations revocations) { revocations_ = std::move(revocations); }
  const Revocations& revocations() const { return revocations_; }

  // A CONNECT (the broker's basic-auth step).
  ConnectDecision Connect(const ConnectRequest& request, int64_t now_ms, int64_t wall_ms);
  // The connection `client` is gone (also for refused or replaced ones).
  void Disconnected(ClientHandle client);
  bool HasSession(ClientHandle client) const { return sessions_.count(client) != 0; }

  // A publish (write), subscribe or delivery (read) check. `username` is
  // nullopt when the client has none. `client` may be unknown (the broker's
  // retained-source check uses a detached record): then only the username
  // and client id count.
  Refusal CheckAccess(ClientHandle client, std::optional<std::string_view> username,
                      std::string_view client_id, Access access, std::string_view topic, bool retain,
                      int64_t wall_ms);
  // Any other broker event (unsubscribe, ...) between checks.
  void OtherEvent() { will_topic_.reset(); }

  // An accepted PUBLISH, before it is routed (limits, response topic,
  // forged stamp, revocations). kNone: deliver, stamped with
  // cairn-principal = username.
  Refusal Message(const MessageRequest& request, int64_t now_ms);

  // Periodic work: expires bootstrap sessions and integrator credentials.
  void Tick(int64_t now_ms, int64_t wall_ms);

  // Clients to disconnect now (each still the holder of its client id).
  std::vector<Kick> TakeKicks();
  // Log lines produced since the last call (first refusal per client,
  // revocations, periodic refusal summary).
  std::vector<Note> TakeNotes();
  // True once after the revocation set changed (the glue saves the file).
  bool TakeRevocationsChanged();

  const RefusalCounter& refusals() const { return refusals_; }
  const PasswordChecker& passwords() const { return passwords_; }

 private:
  struct Session {
    std::string username;
    Principal principal;
    std::string client_id;
    std::string serial;         // certificate logins
    std::string password_hash;  // users and integrators: hash at login
    int64_t connected_ms = 0;
    TokenBucket messages;
    TokenBucket bootstrap_rpcs;
  };

  Refusal Refuse(Refusal reason, ClientHandle client, std::string_view what, std::string_view username,
                 std::string_view client_id, std::string_view topic = {});
  ConnectDecision Authenticate(const ConnectRequest& request, int64_t now_ms, int64_t wall_ms);
  // Kicks sessions that may no longer be connected (access, revocations).
  void RevalidateSessions(int64_t wall_ms);
  // Why a live session must go, or kNone.
  Refusal SessionInvalid(const Session& s, int64_t wall_ms) const;
  void ScheduleKick(ClientHandle client, const Session& s, std::string why);
  void HandleRevocation(const MessageRequest& request, bool revoke);
  int BootstrapSessions() const;

  Limits limits_;
  PasswordChecker passwords_;
  Revocations revocations_;
  bool revocations_changed_ = false;
  std::map<ClientHandle, Session> sessions_;
  std::map<std::string, ClientHandle, std::less<>> holders_;  // client id -> live session
  std::map<std::string, TokenBucket, std::less<>> node_health_;
  TokenBucket bootstrap_rpcs_;
  RefusalCounter refusals_;
  std::vector<Kick> kicks_;
  std::vector<Note> notes_;
  std::optional<std::string> will_topic_;
  int64_t last_revalidate_ms_ = INT64_MIN;
};

}  // namespace cairn::policy
