// Why the broker refused something, and a counter of refusals for the log:
// a summary by reason at most once per interval (when any were counted),
// and the first refusal of each client, so a log shows who ran into a limit
// without one line per refused message.
// Thread-safety: none; one caller at a time (the broker's main thread).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>

namespace cairn::policy {

// Opaque identity of one live connection (the plugin passes the broker's
// client pointer). Never dereferenced by the policy.
using ClientHandle = const void*;

enum class Refusal {
  kNone = 0,
  // connect
  kNoUsername,
  kBadUsername,
  kUnknownPrincipal,
  kWrongPassword,
  kLoginThrottled,
  kLoginBusy,
  kAccessUnavailable,
  kCredentialExpired,
  kRevoked,
  kCertificateRequired,
  kCertificateMismatch,
  kReservedClientId,
  kClientIdHeld,
  kBootstrapFull,
  // topics
  kNotWritable,
  kNotReadable,
  kNotSubscribable,
  kRetainNotAllowed,
  kBadResponseTopic,
  kForgedPrincipal,
  kWillOnRpcTopic,
  // limits
  kMessageTooLarge,
  kMessageRate,
  kHealthRate,
  kBootstrapRpcRate,
  kBootstrapExpired,
  kCount  // not a reason
};

// Short stable name, e.g. "health-rate", used in logs and in tests.
const char* RefusalName(Refusal reason);

class RefusalCounter {
 public:
  // Counts `reason` for `client`; true if it is the first refusal counted
  // for that client (the caller logs it in full).
  bool Count(Refusal reason, ClientHandle client);
  // The client is gone: a new connection at the same address is a new client.
  void Forget(ClientHandle client);
  // "refusals in the last 60 s: health-rate=12 message-rate=3" and resets
  // the counts, if any were counted and `interval_ms` passed since the last
  // summary (or since the first call); nullopt otherwise.
  std::optional<std::string> Summary(int64_t now_ms, int64_t interval_ms);
  // Counted since the last summary.
  uint64_t Pending(Refusal reason) const { return counts_[static_cast<int>(reason)]; }

 private:
  std::array<uint64_t, static_cast<int>(Refusal::kCount)> counts_{};
  std::set<ClientHandle> seen_;
  int64_t last_summary_ms_ = INT64_MIN;
};

}  // namespace cairn::policy
