#include "cairn/policy/refusals.h"

namespace cairn::policy {

const char* RefusalName(Refusal reason) {
  switch (reason) {
    case Refusal::kNone: return "none";
    case Refusal::kNoUsername: return "no-username";
    case Refusal::kBadUsername: return "bad-username";
    case Refusal::kUnknownPrincipal: return "unknown-principal";
    case Refusal::kWrongPassword: return "wrong-password";
    case Refusal::kLoginThrottled: return "login-throttled";
    case Refusal::kLoginBusy: return "login-busy";
    case Refusal::kAccessUnavailable: return "access-unavailable";
    case Refusal::kCredentialExpired: return "credential-expired";
    case Refusal::kRevoked: return "revoked";
    case Refusal::kCertificateRequired: return "certificate-required";
    case Refusal::kCertificateMismatch: return "certificate-mismatch";
    case Refusal::kReservedClientId: return "reserved-client-id";
    case Refusal::kClientIdHeld: return "client-id-held";
    case Refusal::kBootstrapFull: return "bootstrap-full";
    case Refusal::kNotWritable: return "not-writable";
    case Refusal::kNotReadable: return "not-readable";
    case Refusal::kNotSubscribable: return "not-subscribable";
    case Refusal::kRetainNotAllowed: return "retain-not-allowed";
    case Refusal::kBadResponseTopic: return "bad-response-topic";
    case Refusal::kForgedPrincipal: return "forged-principal";
    case Refusal::kWillOnRpcTopic: return "will-on-rpc-topic";
    case Refusal::kMessageTooLarge: return "message-too-large";
    case Refusal::kMessageRate: return "message-rate";
    case Refusal::kHealthRate: return "health-rate";
    case Refusal::kBootstrapRpcRate: return "bootstrap-rpc-rate";
    case Refusal::kBootstrapExpired: return "bootstrap-expired";
    case Refusal::kCount: break;
  }
  return "unknown";
}

bool RefusalCounter::Count(Refusal reason, ClientHandle client) {
  if (reason == Refusal::kNone || reason == Refusal::kCount) return false;
  ++counts_[static_cast<int>(reason)];
  if (client == nullptr) return true;
  return seen_.insert(client).second;
}

void RefusalCounter::Forget(ClientHandle client) { seen_.erase(client); }

std::optional<std::string> RefusalCounter::Summary(int64_t now_ms, int64_t interval_ms) {
  if (last_summary_ms_ == INT64_MIN) last_summary_ms_ = now_ms;
  if (now_ms - last_summary_ms_ < interval_ms) return std::nullopt;
  std::string text;
  for (int i = 1; i < static_cast<int>(Refusal::kCount); ++i) {
    if (counts_[i] == 0) continue;
    text += ' ';
    text += RefusalName(static_cast<Refusal>(i));
    text += '=';
    text += std::to_string(counts_[i]);
  }
  if (text.empty()) return std::nullopt;
  std::string out = "refusals in the last " + std::to_string((now_ms - last_summary_ms_) / 1000) +
                    " s:" + text;
  counts_.fill(0);
  last_summary_ms_ = now_ms;
  return out;
}

}  // namespace cairn::policy
