#include "cairn/policy/limits.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

namespace cairn::policy {

void TokenBucket::Refill(int64_t now_ms) {
  if (last_ms_ == INT64_MIN) {
    last_ms_ = now_ms;
    return;
  }
  if (now_ms <= last_ms_) return;
  double gained = static_cast<double>(now_ms - last_ms_) * rate_ / 1000.0;
  tokens_ = std::min(burst_, tokens_ + gained);
  last_ms_ = now_ms;
}

bool TokenBucket::Take(int64_t now_ms) {
  if (rate_ <= 0) return true;
  Refill(now_ms);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

bool TokenBucket::Available(int64_t now_ms) {
  if (rate_ <= 0) return true;
  Refill(now_ms);
  return tokens_ >= 1.0;
}

namespace {

Result<double> ParseNumber(std::string_view key, std::string_view value) {
  double out = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || !std::isfinite(out) ||
      out < 0) {
    return Error::InvalidArgument("plugin_opt_" + std::string(key) + ": '" + std::string(value) +
                                  "' is not a number >= 0");
  }
  return out;
}

}  // namespace

Status SetLimit(Limits* limits, std::string_view key, std::string_view value) {
  struct Field {
    std::string_view name;
    double* real = nullptr;
    int64_t* whole = nullptr;
    int* small = nullptr;
    std::size_t* size = nullptr;
  };
  Field fields[] = {
      {"max_message_bytes", nullptr, nullptr, nullptr, &limits->max_message_bytes},
      {"client_messages_per_second", &limits->client_messages_per_second},
      {"client_message_burst", &limits->client_message_burst},
      {"node_health_per_second", &limits->node_health_per_second},
      {"node_health_burst", &limits->node_health_burst},
      {"bootstrap_max_connections", nullptr, nullptr, &limits->bootstrap_max_connections},
      {"bootstrap_max_session_seconds", nullptr, &limits->bootstrap_max_session_seconds},
      {"bootstrap_rpc_per_second", &limits->bootstrap_rpc_per_second},
      {"bootstrap_rpc_burst", &limits->bootstrap_rpc_burst},
      {"bootstrap_client_rpc_per_second", &limits->bootstrap_client_rpc_per_second},
      {"bootstrap_client_rpc_burst", &limits->bootstrap_client_rpc_burst},
      {"login_failure_burst", &limits->login_failure_burst},
      {"login_failures_per_second", &limits->login_failures_per_second},
      {"password_checks_per_second", &limits->password_checks_per_second},
      {"password_check_burst", &limits->password_check_burst},
      {"login_cache_seconds", nullptr, &limits->login_cache_seconds},
      {"refusal_summary_seconds", nullptr, &limits->refusal_summary_seconds},
  };
  for (Field& f : fields) {
    if (f.name != key) continue;
    Result<double> n = ParseNumber(key, value);
    if (!n.ok()) return n.error();
    bool whole = f.real == nullptr;
    if (whole && (*n != std::floor(*n) || *n > 1e12)) {
      return Error::InvalidArgument("plugin_opt_" + std::string(key) + ": '" + std::string(value) +
                                    "' is not a whole number");
    }
    if (f.real) *f.real = *n;
    if (f.whole) *f.whole = static_cast<int64_t>(*n);
    if (f.small) *f.small = static_cast<int>(std::min(*n, 1e9));
    if (f.size) *f.size = static_cast<std::size_t>(*n);
    return OkStatus();
  }
  return Error::NotFound("unknown option plugin_opt_" + std::string(key));
}

}  // namespace cairn::policy
