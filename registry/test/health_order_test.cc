// HealthReplacesStored: the registry keeps the newest health report of a
// node even when an outage's queued reports arrive after newer ones.
#include <gtest/gtest.h>

#include "cairn/registry/registry_service.h"

namespace cairn::registry {
namespace {

v1::NodeHealth Report(int64_t timestamp_ms, uint64_t seq) {
  v1::NodeHealth h;
  h.set_timestamp_ms(timestamp_ms);
  h.set_seq(seq);
  return h;
}

TEST(HealthOrderTest, ANewerReportReplacesTheStoredOne) {
  EXPECT_TRUE(HealthReplacesStored(Report(2000, 2), Report(1000, 1)));
}

TEST(HealthOrderTest, AnOlderReportDrainedAfterAnOutageDoesNotReplaceTheStoredOne) {
  EXPECT_FALSE(HealthReplacesStored(Report(1000, 9), Report(2000, 1)));
}

TEST(HealthOrderTest, TheSeqDecidesBetweenReportsOfTheSameMillisecond) {
  EXPECT_TRUE(HealthReplacesStored(Report(1000, 3), Report(1000, 2)));
  EXPECT_FALSE(HealthReplacesStored(Report(1000, 2), Report(1000, 3)));
}

TEST(HealthOrderTest, AnAgentRestartedLaterWinsThoughItsSeqStartsAgain) {
  EXPECT_TRUE(HealthReplacesStored(Report(5000, 1), Report(4000, 800)));
}

}  // namespace
}  // namespace cairn::registry
