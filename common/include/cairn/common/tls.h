// PKI and crypto helpers over OpenSSL 3: EC P-256 keys, CSRs, a small CA that
// signs node and broker certificates, certificate pins, and hashing/encoding
// utilities. PEM strings in, PEM strings out.
// Thread-safety: all functions are thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/result.h"
#include "cairn/common/text.h"

namespace cairn::tls {

// A new EC P-256 private key, PKCS#8 PEM.
Result<std::string> GenerateKey();

// A CSR for `common_name` signed by `key_pem`.
Result<std::string> MakeCsr(const std::string& key_pem, const std::string& common_name);

struct CertAuthority {
  std::string cert_pem;
  std::string key_pem;
};

// A self-signed CA certificate valid for `days`.
Result<CertAuthority> CreateCa(const std::string& common_name, int days);

// Signs `csr_pem` after verifying its self-signature. The subject is NOT taken
// from the CSR: the certificate gets exactly `common_name` (the caller decides
// the identity). Client-auth usage.
Result<std::string> SignClientCsr(const CertAuthority& ca, const std::string& csr_pem,
                                  const std::string& common_name, int days);

// A server certificate for `key_pem` with the given DNS names / IP addresses
// as subjectAltName. Server-auth usage.
Result<std::string> IssueServerCert(const CertAuthority& ca, const std::string& key_pem,
                                    const std::string& common_name,
                                    const std::vector<std::string>& sans, int days);

// SHA-256 of the certificate's DER encoding (32 raw bytes).
Result<std::string> CertSha256(const std::string& cert_pem);
Result<std::string> CertCommonName(const std::string& cert_pem);
// The subject CN a CSR asks for. The registry never copies it into a
// certificate; RenewCertificate requires it to be the caller's principal.
Result<std::string> CsrCommonName(const std::string& csr_pem);
Result<int64_t> CertNotAfterMs(const std::string& cert_pem);
// True if `cert_pem` was signed by `ca_cert_pem` and is currently valid.
Status VerifyCert(const std::string& ca_cert_pem, const std::string& cert_pem);

// Connects to host:port with TLS without trusting anything yet, reads the
// certificate chain the server sends, and returns (PEM) the certificate whose
// CertSha256 equals `pin`. Fails if none does: that server is not ours.
Result<std::string> FetchPinnedCa(const std::string& host, uint16_t port, const std::string& pin,
                                  int timeout_ms);

// Hash / randomness / encoding utilities.
std::string Sha256(std::string_view data);       // 32 raw bytes
std::string Sha256Hex(std::string_view data);    // 64 hex chars
std::string RandomBytes(size_t n);               // from the OpenSSL CSPRNG
std::string HexEncode(std::string_view data);
Result<std::string> HexDecode(std::string_view hex);
// base64url without padding (common/text.h, where the policy library can
// reach it too).
inline std::string Base64UrlEncode(std::string_view data) { return cairn::Base64UrlEncode(data); }
inline Result<std::string> Base64UrlDecode(std::string_view text) { return cairn::Base64UrlDecode(text); }
// Constant-time comparison.
bool SecureEquals(std::string_view a, std::string_view b);

}  // namespace cairn::tls
