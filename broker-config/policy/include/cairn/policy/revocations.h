// Revoked principals and certificate serials. svc:registry publishes an
// entry to cairn/v1/sys/revoke (or .../unrevoke): a principal
// ("node:demo:edge-1") or "serial:<HEX>" (a certificate serial in upper-case
// hex without leading zeros, as OpenSSL's BN_bn2hex prints it). The plugin
// keeps the set in its revocations file, one entry per line, so that a
// revocation survives a broker restart.
// Thread-safety: none; one caller at a time.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace cairn::policy {

struct RevocationEntry {
  enum class Kind { kPrincipal, kSerial } kind = Kind::kPrincipal;
  std::string value;  // the principal, or the normalised serial (no "serial:")
  std::string ToString() const;  // "node:demo:n1" or "serial:1A2B"
};

// Parses a revoke payload or file line (surrounding whitespace ignored):
// nullopt if it is neither an acceptable principal nor "serial:<hex>".
// Serials are normalised (upper case, leading zeros dropped). svc:registry
// itself cannot be revoked (it is the one who revokes).
std::optional<RevocationEntry> ParseRevocationEntry(std::string_view text);

// A certificate serial in its one canonical form: upper-case hex without
// leading zeros, as OpenSSL's BN_bn2hex prints it. Accepts what people paste:
// "serial=" (openssl x509 -serial), "0x", colons, lower case. nullopt if it
// is not hex, is zero, or is longer than 20 bytes (RFC 5280).
inline constexpr std::size_t kMaxSerialHexDigits = 40;
std::optional<std::string> NormaliseSerial(std::string_view text);

class Revocations {
 public:
  // Adds or removes `entry`; true if the set changed.
  bool Revoke(const RevocationEntry& entry);
  bool Unrevoke(const RevocationEntry& entry);
  bool IsRevoked(std::string_view principal) const;
  // `serial` as OpenSSL prints it (normalised here).
  bool IsSerialRevoked(std::string_view serial) const;
  std::size_t size() const { return principals_.size() + serials_.size(); }

  // File form: a comment line, then one entry per line.
  std::string Serialize() const;
  // Parses the file form; lines that are no entry are skipped and counted.
  static Revocations Parse(std::string_view text, int* skipped = nullptr);

 private:
  std::set<std::string, std::less<>> principals_;
  std::set<std::string, std::less<>> serials_;
};

}  // namespace cairn::policy
