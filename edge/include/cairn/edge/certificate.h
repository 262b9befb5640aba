// What the node needs to know about its own certificate over time: when it
// was issued and expires, when to renew it, whether it is still usable, and
// whether a key belongs to it.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "cairn/common/result.h"

namespace cairn::edge {

struct CertificateInfo {
  std::string common_name;  // the node principal, node:{ws}:{node}
  std::string serial_hex;   // upper-case hex without leading zeros (as BN_bn2hex prints it)
  int64_t not_before_ms = 0;
  int64_t not_after_ms = 0;
};

Result<CertificateInfo> ReadCertificateInfo(const std::string& cert_pem);

// The default moment to renew: two thirds of the way from notBefore to
// notAfter.
inline constexpr int kDefaultRenewPercent = 67;

// notBefore + percent/100 of the certificate's life (0 = at once).
int64_t RenewalDueMs(const CertificateInfo& cert, int percent = kDefaultRenewPercent);

// True when `now_ms` is at or past notAfter.
inline bool Expired(const CertificateInfo& cert, int64_t now_ms) { return now_ms >= cert.not_after_ms; }

// Ok when `key_pem` is the private key of `cert_pem`'s public key.
Status CheckKeyMatchesCertificate(const std::string& key_pem, const std::string& cert_pem);

// "2026-05-01 12:00:00 UTC".
std::string FormatUtc(int64_t ms);

}  // namespace cairn::edge
