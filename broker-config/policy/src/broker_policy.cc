#include "cairn/policy/broker_policy.h"

#include "cairn/common/text.h"
#include "cairn/common/topics.h"

namespace cairn::policy {
namespace {

// 'text' with control characters escaped, for log lines.
std::string Shown(std::string_view text) {
  std::string q = Quoted(text.substr(0, 256));
  return "'" + q.substr(1, q.size() - 2) + "'";
}

// `text` escaped as in Shown(), without quotes.
std::string Bare(std::string_view text) {
  std::string q = Quoted(text.substr(0, 256));
  return q.substr(1, q.size() - 2);
}

bool IsUserOrIntegrator(const Principal& p) {
  return p.kind == PrincipalKind::kUser || p.kind == PrincipalKind::kIntegrator;
}

}  // namespace

BrokerPolicy::BrokerPolicy(Limits limits)
    : limits_(limits),
      passwords_(limits_),
      bootstrap_rpcs_(limits_.bootstrap_rpc_per_second, limits_.bootstrap_rpc_burst) {}

void BrokerPolicy::SetServiceCredentials(ServiceCredentials services) {
  passwords_.SetServices(std::move(services));
}

void BrokerPolicy::SetAccess(std::shared_ptr<const AccessSnapshot> access, int64_t wall_ms) {
  passwords_.SetAccess(std::move(access));
  RevalidateSessions(wall_ms);
}

Refusal BrokerPolicy::Refuse(Refusal reason, ClientHandle client, std::string_view what,
                             std::string_view username, std::string_view client_id, std::string_view topic) {
  if (refusals_.Count(reason, client)) {
    std::string text = "refused " + std::string(what) + " of " + Shown(username) + " (client " +
                       Shown(client_id) + ")";
    if (!topic.empty()) text += " on " + Shown(topic);
    text += ": " + std::string(RefusalName(reason)) + " (first refusal of this client; later ones are counted)";
    notes_.push_back({Note::Level::kNotice, std::move(text)});
  }
  return reason;
}

int BrokerPolicy::BootstrapSessions() const {
  int n = 0;
  for (const auto& [client, s] : sessions_) n += s.principal.kind == PrincipalKind::kBootstrap;
  return n;
}

ConnectDecision BrokerPolicy::Authenticate(const ConnectRequest& r, int64_t now_ms, int64_t wall_ms) {
  ConnectDecision d;
  if (r.certificate) {
    // Node listener: the certificate decides who this is.
    const Certificate& cert = *r.certificate;
    if (!cert.common_name || ParsePrincipal(*cert.common_name).kind != PrincipalKind::kNode) {
      d.refusal = Refusal::kCertificateMismatch;
      d.username = cert.common_name.value_or("");
      return d;
    }
    d.username = *cert.common_name;
    if (r.username && !r.username->empty() && *r.username != d.username) {
      d.refusal = Refusal::kCertificateMismatch;
    } else if (r.client_id != d.username) {
      d.refusal = Refusal::kCertificateMismatch;
    } else if (revocations_.IsRevoked(d.username) || revocations_.IsSerialRevoked(cert.serial)) {
      d.refusal = Refusal::kRevoked;
    }
    d.set_username = d.refusal == Refusal::kNone && (!r.username || r.username->empty());
    return d;
  }
  if (!r.username) {
    d.refusal = Refusal::kNoUsername;
    return d;
  }
  d.username = std::string(*r.username);
  if (!IsAcceptableUsername(d.username)) {
    d.refusal = Refusal::kBadUsername;
    return d;
  }
  Principal p = ParsePrincipal(d.username);
  if (p.kind == PrincipalKind::kUnknown) {
    d.refusal = Refusal::kUnknownPrincipal;
  } else if (p.kind == PrincipalKind::kNode) {
    d.refusal = Refusal::kCertificateRequired;
  } else if (r.client_id.substr(0, 5) == "node:") {
    d.refusal = Refusal::kReservedClientId;  // a node's client id is its principal
  } else if (revocations_.IsRevoked(d.username)) {
    d.refusal = Refusal::kRevoked;
  } else if (p.kind == PrincipalKind::kBootstrap) {
    if (BootstrapSessions() >= limits_.bootstrap_max_connections) d.refusal = Refusal::kBootstrapFull;
  } else {
    LoginResult login = passwords_.Check(p, d.username, r.password.value_or(""), now_ms, wall_ms);
    d.refusal = login.refusal;
  }
  return d;
}

ConnectDecision BrokerPolicy::Connect(const ConnectRequest& r, int64_t now_ms, int64_t wall_ms) {
  will_topic_.reset();
  ConnectDecision d = Authenticate(r, now_ms, wall_ms);
  if (d.refusal == Refusal::kNone) {
    auto held = holders_.find(r.client_id);
    if (held != holders_.end() && held->second != r.client) {
      auto s = sessions_.find(held->second);
      if (s != sessions_.end() && s->second.username != d.username) d.refusal = Refusal::kClientIdHeld;
    }
  }
  if (d.refusal != Refusal::kNone) {
    std::string_view who = d.username.empty() ? std::string_view(r.username.value_or("")) : d.username;
    Refuse(d.refusal, r.client, "connect", who, r.client_id);
    return d;
  }
  Session s;
  s.username = d.username;
  s.principal = ParsePrincipal(d.username);
  s.client_id = std::string(r.client_id);
  if (r.certificate) s.serial = NormaliseSerial(r.certificate->serial).value_or("");
  if (IsUserOrIntegrator(s.principal)) {
    s.password_hash = CurrentHash(passwords_.access(), s.principal, wall_ms).value_or("");
  }
  s.connected_ms = now_ms;
  s.messages = TokenBucket(limits_.client_messages_per_second, limits_.client_message_burst);
  s.bootstrap_rpcs = TokenBucket(limits_.bootstrap_client_rpc_per_second, limits_.bootstrap_client_rpc_burst);
  sessions_[r.client] = std::move(s);
  holders_[std::string(r.client_id)] = r.client;
  return d;
}

void BrokerPolicy::Disconnected(ClientHandle client) {
  will_topic_.reset();
  refusals_.Forget(client);
  auto it = sessions_.find(client);
  if (it == sessions_.end()) return;
  auto held = holders_.find(it->second.client_id);
  if (held != holders_.end() && held->second == client) holders_.erase(held);
  sessions_.erase(it);
}

Refusal BrokerPolicy::SessionInvalid(const Session& s, int64_t wall_ms) const {
  if (revocations_.IsRevoked(s.username)) return Refusal::kRevoked;
  if (!s.serial.empty() && revocations_.IsSerialRevoked(s.serial)) return Refusal::kRevoked;
  if (IsUserOrIntegrator(s.principal)) {
    std::optional<std::string> hash = CurrentHash(passwords_.access(), s.principal, wall_ms);
    if (!hash || *hash != s.password_hash) {
      return passwords_.access() == nullptr ? Refusal::kAccessUnavailable : Refusal::kUnknownPrincipal;
    }
  }
  return Refusal::kNone;
}

void BrokerPolicy::ScheduleKick(ClientHandle client, const Session& s, std::string why) {
  for (const Kick& k : kicks_) {
    if (k.client == client) return;
  }
  kicks_.push_back({client, s.client_id, std::move(why)});
}

void BrokerPolicy::RevalidateSessions(int64_t wall_ms) {
  for (const auto& [client, s] : sessions_) {
    Refusal why = SessionInvalid(s, wall_ms);
    if (why != Refusal::kNone) {
      ScheduleKick(client, s, std::string(RefusalName(why)) + " (" + s.username + ")");
    }
  }
}

Refusal BrokerPolicy::CheckAccess(ClientHandle client, std::optional<std::string_view> username,
                                  std::string_view client_id, Access access, std::string_view topic,
                                  bool retain, int64_t wall_ms) {
  if (access == Access::kRead && will_topic_ && *will_topic_ == topic) {
    std::string who(username.value_or(""));
    return Refuse(Refusal::kWillOnRpcTopic, client, "last will", who, client_id, topic);
  }
  will_topic_.reset();
  Refusal denied = access == Access::kWrite  ? Refusal::kNotWritable
                   : access == Access::kRead ? Refusal::kNotReadable
                                             : Refusal::kNotSubscribable;
  if (!username) return Refuse(denied, client, AccessName(access), "", client_id, topic);
  Principal p = ParsePrincipal(*username);
  if (p.kind == PrincipalKind::kUnknown) return Refuse(denied, client, AccessName(access), *username, client_id, topic);

  auto live = sessions_.find(client);
  if (live != sessions_.end()) {
    Refusal invalid = SessionInvalid(live->second, wall_ms);
    if (invalid != Refusal::kNone) {
      ScheduleKick(client, live->second, RefusalName(invalid));
      return Refuse(invalid, client, AccessName(access), *username, client_id, topic);
    }
  } else if (revocations_.IsRevoked(*username)) {
    return Refuse(Refusal::kRevoked, client, AccessName(access), *username, client_id, topic);
  }

  const AccessUser* user = nullptr;
  if (IsUserOrIntegrator(p)) {
    if (!CurrentHash(passwords_.access(), p, wall_ms)) {
      return Refuse(Refusal::kAccessUnavailable, client, AccessName(access), *username, client_id, topic);
    }
    if (p.kind == PrincipalKind::kUser) user = &passwords_.access()->users.at(p.name);
  }
  Subject subject{p, *username, client_id, user};
  Refusal r = CheckTopic(subject, access, topic, retain);
  if (r != Refusal::kNone) return Refuse(r, client, AccessName(access), *username, client_id, topic);
  if (access == Access::kWrite && p.kind != PrincipalKind::kService && topics::IsRpcTopic(topic)) {
    will_topic_ = std::string(topic);
  }
  return Refusal::kNone;
}

Refusal BrokerPolicy::Message(const MessageRequest& m, int64_t now_ms) {
  will_topic_.reset();
  if (m.has_principal_property) {
    Refuse(Refusal::kForgedPrincipal, m.client, "message", m.username, m.client_id, m.topic);
    notes_.push_back({Note::Level::kWarning, "refused message from " + Shown(m.username) + " on " +
                                                 Shown(m.topic) + ": it carries a forged " +
                                                 std::string(kPrincipalProperty) + " property"});
    return Refusal::kForgedPrincipal;
  }
  Principal p = ParsePrincipal(m.username);
  auto live = sessions_.find(m.client);
  Session* s = live == sessions_.end() ? nullptr : &live->second;
  if (p.kind != PrincipalKind::kService) {
    if (m.payload.size() > limits_.max_message_bytes) {
      return Refuse(Refusal::kMessageTooLarge, m.client, "message", m.username, m.client_id, m.topic);
    }
    if (s != nullptr && !s->messages.Take(now_ms)) {
      return Refuse(Refusal::kMessageRate, m.client, "message", m.username, m.client_id, m.topic);
    }
    if (p.kind == PrincipalKind::kNode && m.topic == topics::NodeHealth(p.ws, p.name)) {
      auto [bucket, added] = node_health_.try_emplace(std::string(m.username), limits_.node_health_per_second,
                                                      limits_.node_health_burst);
      if (!bucket->second.Take(now_ms)) {
        return Refuse(Refusal::kHealthRate, m.client, "health report", m.username, m.client_id, m.topic);
      }
    }
    if (p.kind == PrincipalKind::kBootstrap && m.topic == topics::RpcRequest("registry", "Bootstrap")) {
      bool ok = (s == nullptr || s->bootstrap_rpcs.Take(now_ms)) && bootstrap_rpcs_.Take(now_ms);
      if (!ok) return Refuse(Refusal::kBootstrapRpcRate, m.client, "request", m.username, m.client_id, m.topic);
    }
  }
  if (topics::IsRpcTopic(m.topic)) {
    Refusal r = CheckResponseTopic(m.username, m.client_id, m.response_topic);
    if (r != Refusal::kNone) {
      if (refusals_.Count(r, nullptr)) {
        notes_.push_back({Note::Level::kWarning, "refused request from " + Shown(m.username) + " (client " +
                                                     Bare(m.client_id) + ") on " +
                                                     Shown(m.topic) + ": " + RefusalName(r)});
      }
      return r;
    }
  }
  if (m.topic == topics::RevokeTopic()) HandleRevocation(m, true);
  if (m.topic == topics::UnrevokeTopic()) HandleRevocation(m, false);
  return Refusal::kNone;
}

void BrokerPolicy::HandleRevocation(const MessageRequest& m, bool revoke) {
  std::string topic(m.topic);
  if (m.username != kRegistryPrincipal) {
    notes_.push_back({Note::Level::kWarning, "ignored " + topic + " from " + std::string(m.username) +
                                                 ": only " + std::string(kRegistryPrincipal) + " may revoke"});
    return;
  }
  std::optional<RevocationEntry> e = ParseRevocationEntry(m.payload);
  if (!e) {
    notes_.push_back({Note::Level::kWarning, "ignored " + topic + " with invalid entry " + Shown(m.payload)});
    return;
  }
  if (revoke) {
    if (revocations_.Revoke(*e)) revocations_changed_ = true;
    notes_.push_back({Note::Level::kNotice, "revoked " + Shown(e->ToString()) + "; disconnecting it"});
  } else {
    if (revocations_.Unrevoke(*e)) revocations_changed_ = true;
    notes_.push_back({Note::Level::kNotice, "unrevoked " + Shown(e->ToString())});
  }
  for (const auto& [client, s] : sessions_) {
    if (SessionInvalid(s, 0) == Refusal::kRevoked) ScheduleKick(client, s, "revoked " + e->ToString());
  }
}

void BrokerPolicy::Tick(int64_t now_ms, int64_t wall_ms) {
  will_topic_.reset();
  if (last_revalidate_ms_ != INT64_MIN && now_ms - last_revalidate_ms_ < 500) return;
  last_revalidate_ms_ = now_ms;
  for (const auto& [client, s] : sessions_) {
    if (s.principal.kind == PrincipalKind::kBootstrap &&
        now_ms - s.connected_ms >= limits_.bootstrap_max_session_seconds * 1000) {
      Refuse(Refusal::kBootstrapExpired, client, "session", s.username, s.client_id);
      ScheduleKick(client, s, "bootstrap session older than " +
                                  std::to_string(limits_.bootstrap_max_session_seconds) + " s");
    }
  }
  RevalidateSessions(wall_ms);
  if (auto summary = refusals_.Summary(now_ms, limits_.refusal_summary_seconds * 1000)) {
    notes_.push_back({Note::Level::kNotice, std::move(*summary)});
  }
}

std::vector<Kick> BrokerPolicy::TakeKicks() {
  std::vector<Kick> out;
  for (Kick& k : kicks_) {
    auto held = holders_.find(k.client_id);
    if (held != holders_.end() && held->second == k.client) out.push_back(std::move(k));
  }
  kicks_.clear();
  return out;
}

std::vector<Note> BrokerPolicy::TakeNotes() {
  std::vector<Note> out;
  out.swap(notes_);
  return out;
}

bool BrokerPolicy::TakeRevocationsChanged() {
  bool changed = revocations_changed_;
  revocations_changed_ = false;
  return changed;
}

}  // namespace cairn::policy
