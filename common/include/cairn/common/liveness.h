// The one liveness rule: which state a node is in (new, online, stale,
// offline, revoked), computed from the facts the registry stores about it
// and the time. Every place that shows or acts on a node's state (the
// registry's sweep and RPCs, the scheduler's status counts, cairnctl through
// those RPCs) calls NodeLiveness; no other code compares times against
// health intervals. Also the birth/death rule for NodeStatus messages
// (StatusApplies). See docs/architecture.md, "Liveness".
// Thread-safety: pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cairn::liveness {

// How many of its own health intervals a connected node may stay silent
// before it is stale.
inline constexpr int kStaleIntervals = 3;
// The interval assumed before a node's first health report (and for an
// out-of-range stored value); matches the nodes table's default.
inline constexpr int kDefaultIntervalS = 10;

// What the registry stores about a node (the nodes table's columns).
struct NodeFacts {
  std::string stored_state;    // new | online | stale | offline | revoked
  int64_t state_since_ms = 0;  // when stored_state was last set
  int64_t last_seen_ms = 0;    // last birth or health report (old or new)
  int64_t health_ms = 0;       // when the newest health report was stored
  int health_interval_s = 0;   // interval_seconds of that report
};

// The moment the rule is evaluated at.
struct Moment {
  int64_t now_ms = 0;
  // When the registry (the listener of health) last started; 0 = unknown.
  // Silence from before that, plus kStaleIntervals intervals, does not make
  // a node stale: the registry may have missed its reports while down.
  int64_t registry_started_ms = 0;
};

// The node's state now:
// - revoked, offline, new: as stored (revocation, the node's last will or
//   clean shutdown, never heard from);
// - stale as stored (the registry stores "online" again on the node's next
//   health report or birth);
// - online as stored: stale when nothing was heard from the node (health
//   report, birth, or becoming online) for more than kStaleIntervals of its
//   own health intervals, counted from no earlier than the registry's
//   start; otherwise online.
// Unknown stored states are returned unchanged.
std::string NodeLiveness(const NodeFacts& facts, const Moment& at);

// The time after which an online node with these facts is stale (the
// deadline NodeLiveness compares now_ms against); for a sweep that wants to
// know when to look again.
int64_t StaleAfterMs(const NodeFacts& facts, const Moment& at);

// Whether a NodeStatus message (birth: online = true; death/last will:
// online = false) with `incoming_bd_seq` may change a node stored in
// `stored_state` with `stored_bd_seq`. A revoked node is final. A death
// from an older session (lower bd_seq) than the stored birth never marks a
// reconnected node offline; a birth always applies (a node whose data dir
// was reset starts counting again).
bool StatusApplies(std::string_view stored_state, uint64_t stored_bd_seq, bool online,
                   uint64_t incoming_bd_seq);

}  // namespace cairn::liveness
