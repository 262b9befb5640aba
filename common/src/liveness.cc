// The one liveness rule (see liveness.h). Pure.
#include "cairn/common/liveness.h"

#include <algorithm>

namespace cairn::liveness {
namespace {

int IntervalS(const NodeFacts& f) {
  // The registry stores 1..3599 from reports; anything else is not a report's.
  return f.health_interval_s > 0 && f.health_interval_s < 3600 ? f.health_interval_s : kDefaultIntervalS;
}

}  // namespace

int64_t StaleAfterMs(const NodeFacts& f, const Moment& at) {
  int64_t heard = std::max({f.health_ms, f.last_seen_ms, f.state_since_ms, at.registry_started_ms});
  return heard + static_cast<int64_t>(kStaleIntervals) * IntervalS(f) * 1000;
}

std::string NodeLiveness(const NodeFacts& f, const Moment& at) {
  // A stored "stale" was decided by this rule already; a health report or
  // birth stores "online" again (the registry's ingest), so it stays.
  if (f.stored_state != "online") return f.stored_state;
  return at.now_ms > StaleAfterMs(f, at) ? "stale" : "online";
}

bool StatusApplies(std::string_view stored_state, uint64_t stored_bd_seq, bool online,
                   uint64_t incoming_bd_seq) {
  if (stored_state == "revoked") return false;
  if (online) return true;
  return incoming_bd_seq >= stored_bd_seq;
}

}  // namespace cairn::liveness
