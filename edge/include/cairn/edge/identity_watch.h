// Decides, from the node's failed connection attempts, that its identity is
// finished, so that the daemon stops its pipelines and exits (code 78)
// instead of retrying forever:
// - revoked: the broker refused the certificate login with CONNACK 0x87
//   (not authorized) or 0x86 (bad user name or password) kRefusalsToGiveUp
//   times in a row. A link that is down, a TLS failure or a timeout neither
//   counts nor breaks the row; a successful connection starts it again.
// - expired: an attempt failed (for any reason) while the certificate is
//   past its notAfter: it can neither connect nor be renewed any more.
// The verdict carries the lines to log: what happened and what the owner
// can do (the exact commands to bootstrap again).
// Thread-safety: thread-safe; the handlers run on the MQTT dispatcher thread
// while main polls verdict().
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cairn/common/clock.h"
#include "cairn/common/mqtt_client.h"
#include "cairn/edge/certificate.h"
#include "cairn/edge/identity.h"

namespace cairn::edge {

inline constexpr int kRefusalsToGiveUp = 3;
// Exit code of a node whose identity is finished (EX_CONFIG in sysexits.h):
// systemd's RestartPreventExitStatus=78 keeps it from restarting in a loop.
inline constexpr int kExitIdentityFinished = 78;

struct IdentityVerdict {
  enum class Kind { kRevoked, kExpired };
  Kind kind = Kind::kRevoked;
  std::vector<std::string> lines;  // log each as an error
};

// True for the CONNACK reason codes that mean "this identity is refused".
bool IsIdentityRefusal(const ConnectFailure& failure);

// What the owner runs to bring the machine back: a new token, a fresh data
// dir and (the old name staying taken) a new node name.
std::vector<std::string> RebootstrapAdvice(const Identity& identity);

// The verdict for a certificate past notAfter (used at start, too).
IdentityVerdict ExpiredVerdict(const Identity& identity, const CertificateInfo& cert, int64_t now_ms);

class IdentityWatch {
 public:
  IdentityWatch(Identity identity, CertificateInfo cert, Clock& clock);

  void OnConnected();
  void OnConnectFailure(const ConnectFailure& failure);
  // After a renewal: expiry is judged by the new certificate.
  void SetCertificate(const CertificateInfo& cert);

  std::optional<IdentityVerdict> verdict() const;
  int refusals_in_a_row() const;

 private:
  const Identity id_;
  Clock& clock_;
  mutable std::mutex mu_;
  CertificateInfo cert_;
  int refusals_ = 0;
  int64_t first_refusal_ms_ = 0;
  std::optional<IdentityVerdict> verdict_;
};

}  // namespace cairn::edge
