#include "cairn/policy/revocations.h"

#include "cairn/policy/principal.h"

namespace cairn::policy {
namespace {

constexpr std::string_view kSerialPrefix = "serial:";

std::string_view Trim(std::string_view s) {
  const char* ws = " \t\r\n";
  std::size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace

std::string RevocationEntry::ToString() const {
  return kind == Kind::kSerial ? std::string(kSerialPrefix) + value : value;
}

std::optional<std::string> NormaliseSerial(std::string_view text) {
  for (std::string_view prefix : {"serial=", "0x", "0X"}) {
    if (text.substr(0, prefix.size()) == prefix) text.remove_prefix(prefix.size());
  }
  std::string out;
  for (char c : text) {
    if (c == ':') continue;
    if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return std::nullopt;
    if (out.empty() && c == '0') continue;
    out.push_back(c);
  }
  // RFC 5280: a positive serial of at most 20 bytes.
  if (out.empty() || out.size() > kMaxSerialHexDigits) return std::nullopt;
  return out;
}

std::optional<RevocationEntry> ParseRevocationEntry(std::string_view text) {
  text = Trim(text);
  RevocationEntry e;
  if (text.substr(0, kSerialPrefix.size()) == kSerialPrefix) {
    std::optional<std::string> serial = NormaliseSerial(text.substr(kSerialPrefix.size()));
    if (!serial) return std::nullopt;
    e.kind = RevocationEntry::Kind::kSerial;
    e.value = *serial;
    return e;
  }
  if (!IsAcceptableUsername(text) || text == kRegistryPrincipal) return std::nullopt;
  e.value = std::string(text);
  return e;
}

bool Revocations::Revoke(const RevocationEntry& e) {
  auto& set = e.kind == RevocationEntry::Kind::kSerial ? serials_ : principals_;
  return set.insert(e.value).second;
}

bool Revocations::Unrevoke(const RevocationEntry& e) {
  auto& set = e.kind == RevocationEntry::Kind::kSerial ? serials_ : principals_;
  return set.erase(e.value) != 0;
}

bool Revocations::IsRevoked(std::string_view principal) const {
  return principals_.find(principal) != principals_.end();
}

bool Revocations::IsSerialRevoked(std::string_view serial) const {
  std::optional<std::string> s = NormaliseSerial(serial);
  return s && serials_.find(*s) != serials_.end();
}

std::string Revocations::Serialize() const {
  std::string out = "# Revoked through cairn/v1/sys/revoke (written by the broker).\n";
  for (const auto& p : principals_) out += p + "\n";
  for (const auto& s : serials_) out += std::string(kSerialPrefix) + s + "\n";
  return out;
}

Revocations Revocations::Parse(std::string_view text, int* skipped) {
  Revocations r;
  int bad = 0;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    std::optional<RevocationEntry> e = ParseRevocationEntry(line);
    if (e) {
      r.Revoke(*e);
    } else {
      ++bad;
    }
  }
  if (skipped) *skipped = bad;
  return r;
}

}  // namespace cairn::policy
