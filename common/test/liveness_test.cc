// The one liveness rule (NodeLiveness) and the birth/death rule
// (StatusApplies), as tables of cases with an injected time.
#include "cairn/common/liveness.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cairn::liveness {
namespace {

constexpr int64_t kT = 1'700'000'000'000;  // an arbitrary "now" base
constexpr int64_t kS = 1000;

struct Case {
  std::string name;  // the sentence the case proves
  NodeFacts facts;
  Moment at;
  std::string want;
};

NodeFacts Online(int64_t since_ms, int64_t health_ms, int interval_s) {
  NodeFacts f;
  f.stored_state = "online";
  f.state_since_ms = since_ms;
  f.last_seen_ms = std::max(since_ms, health_ms);
  f.health_ms = health_ms;
  f.health_interval_s = interval_s;
  return f;
}

NodeFacts Stored(const std::string& state, int64_t since_ms) {
  NodeFacts f;
  f.stored_state = state;
  f.state_since_ms = since_ms;
  f.last_seen_ms = since_ms;
  return f;
}

TEST(LivenessTest, EachCaseOfTheTableGetsItsState) {
  std::vector<Case> cases = {
      {"a node with a health report one interval ago is online", Online(kT - 60 * kS, kT - 10 * kS, 10),
       {kT, 0}, "online"},
      {"a node silent for exactly three intervals is still online", Online(kT - 60 * kS, kT - 30 * kS, 10),
       {kT, 0}, "online"},
      {"a node silent for just over three intervals is stale", Online(kT - 60 * kS, kT - 30 * kS - 1, 10),
       {kT, 0}, "stale"},
      {"the node's own interval counts, not a fixed one", Online(kT - 600 * kS, kT - 100 * kS, 60),
       {kT, 0}, "online"},
      {"a short interval makes a node stale sooner", Online(kT - 60 * kS, kT - 4 * kS, 1), {kT, 0}, "stale"},
      {"a node that just came online without health yet is online", Online(kT - 5 * kS, 0, 0), {kT, 0},
       "online"},
      {"a node online for long without any health is stale after the default interval",
       Online(kT - 31 * kS, 0, 0), {kT, 0}, "stale"},
      {"a birth after old health restarts the count", Online(kT - 2 * kS, kT - 3600 * kS, 10), {kT, 0},
       "online"},
      {"an older report drained from the queue counts as heard (last seen)",
       [] {
         NodeFacts f = Online(kT - 600 * kS, kT - 300 * kS, 10);
         f.last_seen_ms = kT - 5 * kS;
         return f;
       }(),
       {kT, 0}, "online"},
      {"an out-of-range interval falls back to the default", Online(kT - 600 * kS, kT - 29 * kS, 99999),
       {kT, 0}, "online"},
      {"a stored stale node stays stale until it is heard from", Stored("stale", kT - 1 * kS), {kT, 0},
       "stale"},
      {"an offline node (last will or clean shutdown) stays offline", Stored("offline", kT - 3600 * kS),
       {kT, 0}, "offline"},
      {"a revoked node stays revoked whatever its health", [] {
         NodeFacts f = Stored("revoked", kT - 3600 * kS);
         f.health_ms = kT - 1 * kS;
         f.last_seen_ms = kT - 1 * kS;
         return f;
       }(),
       {kT, 0}, "revoked"},
      {"a node never heard from stays new", Stored("new", kT - 3600 * kS), {kT, 0}, "new"},
      {"after a registry restart a silent node is online during the grace period",
       Online(kT - 3600 * kS, kT - 600 * kS, 10), {kT, kT - 20 * kS}, "online"},
      {"after the grace period a silent node is stale", Online(kT - 3600 * kS, kT - 600 * kS, 10),
       {kT, kT - 31 * kS}, "stale"},
      {"the grace period is three of the node's own intervals", Online(kT - 3600 * kS, kT - 600 * kS, 60),
       {kT, kT - 150 * kS}, "online"},
      {"the grace period does not revive an offline node", Stored("offline", kT - 3600 * kS),
       {kT, kT - 1 * kS}, "offline"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(NodeLiveness(c.facts, c.at), c.want) << c.name;
  }
}

TEST(LivenessTest, StaleAfterIsTheLastSignOfLifePlusThreeIntervals) {
  NodeFacts f = Online(kT - 60 * kS, kT - 10 * kS, 10);
  EXPECT_EQ(StaleAfterMs(f, {kT, 0}), kT - 10 * kS + 30 * kS);
  EXPECT_EQ(NodeLiveness(f, {StaleAfterMs(f, {kT, 0}), 0}), "online");
  EXPECT_EQ(NodeLiveness(f, {StaleAfterMs(f, {kT, 0}) + 1, 0}), "stale");
}

TEST(LivenessTest, ALateWillOfAnOlderSessionNeverMarksAReconnectedNodeOffline) {
  EXPECT_FALSE(StatusApplies("online", 7, /*online=*/false, 6));
}

TEST(LivenessTest, TheWillOfTheCurrentSessionMarksTheNodeOffline) {
  EXPECT_TRUE(StatusApplies("online", 7, /*online=*/false, 7));
  EXPECT_TRUE(StatusApplies("stale", 7, /*online=*/false, 7));
}

TEST(LivenessTest, AWillOfANewerSessionMarksTheNodeOffline) {
  EXPECT_TRUE(StatusApplies("online", 7, /*online=*/false, 8));
}

TEST(LivenessTest, ABirthAlwaysAppliesEvenWhenTheNodesCounterStartedAgain) {
  EXPECT_TRUE(StatusApplies("offline", 7, /*online=*/true, 8));
  EXPECT_TRUE(StatusApplies("offline", 7, /*online=*/true, 0));
  EXPECT_TRUE(StatusApplies("new", 0, /*online=*/true, 1));
}

TEST(LivenessTest, NoStatusChangesARevokedNode) {
  EXPECT_FALSE(StatusApplies("revoked", 7, /*online=*/true, 8));
  EXPECT_FALSE(StatusApplies("revoked", 7, /*online=*/false, 8));
}

}  // namespace
}  // namespace cairn::liveness
