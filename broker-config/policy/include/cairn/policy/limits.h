// Rate and size limits of the broker policy: a token bucket driven by a time
// argument (no clock inside, so tests pass fake time), and the plugin's
// tunable limits with their defaults (each is a plugin_opt_<name> option,
// documented in broker-config/mosquitto.conf.template).
// Thread-safety: value types; one caller at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cairn/common/result.h"

namespace cairn::policy {

// Holds up to `burst` tokens and gains `rate_per_s` per second. Starts full.
class TokenBucket {
 public:
  TokenBucket() = default;
  TokenBucket(double rate_per_s, double burst) : rate_(rate_per_s), burst_(burst), tokens_(burst) {}

  // Takes one token at `now_ms` (a steady clock in milliseconds); false if
  // none is left. A rate of 0 or less disables the limit (always true).
  bool Take(int64_t now_ms);
  // True if a token is available at `now_ms`, without taking it.
  bool Available(int64_t now_ms);

 private:
  void Refill(int64_t now_ms);
  double rate_ = 0;
  double burst_ = 0;
  double tokens_ = 0;
  int64_t last_ms_ = INT64_MIN;
};

// Every limit the plugin enforces. A rate of 0 disables that limit.
struct Limits {
  // Any client but a service: largest PUBLISH payload, and messages per
  // second (with a burst) per connection.
  std::size_t max_message_bytes = 1024 * 1024;
  double client_messages_per_second = 50;
  double client_message_burst = 200;
  // Per node principal, across its connections: health reports per second.
  double node_health_per_second = 1;
  double node_health_burst = 5;
  // Bootstrap: concurrent connections, connection lifetime, and Bootstrap
  // RPCs per second (all bootstrap clients together, and per connection).
  int bootstrap_max_connections = 32;
  int64_t bootstrap_max_session_seconds = 60;
  double bootstrap_rpc_per_second = 5;
  double bootstrap_rpc_burst = 10;
  double bootstrap_client_rpc_per_second = 0.2;
  double bootstrap_client_rpc_burst = 2;
  // Password checks (PBKDF2, ~20-60 ms each on the broker's one thread):
  // wrong passwords tolerated per username before further tries of that
  // username are refused without a check, and checks per second overall.
  double login_failure_burst = 5;
  double login_failures_per_second = 0.1;
  double password_checks_per_second = 10;
  double password_check_burst = 20;
  // How long a successful password check is remembered (cache).
  int64_t login_cache_seconds = 3600;
  // Refusal summary in the broker log at most this often.
  int64_t refusal_summary_seconds = 60;
};

// Sets the limit named `key` (the option name without "plugin_opt_", e.g.
// "max_message_bytes") from `value`. NotFound if `key` is no limit,
// InvalidArgument if `value` is not a valid number for it.
Status SetLimit(Limits* limits, std::string_view key, std::string_view value);

}  // namespace cairn::policy
