#include "cairn/ctl/format.h"

#include <gtest/gtest.h>

namespace cairn::ctl {
namespace {

TEST(CtlFormat, TableAlignsColumnsToTheWidestCell) {
  EXPECT_EQ(Table({"NAME", "STATE"}, {{"edge-1", "online"}, {"n", "offline"}}),
            "NAME    STATE\n"
            "edge-1  online\n"
            "n       offline\n");
}

TEST(CtlFormat, TableMeasuresUtf8ByCharactersNotBytes) {
  EXPECT_EQ(Table({"USES", "X"}, {{"1/∞", "a"}, {"10/20", "b"}}),
            "USES   X\n"
            "1/∞    a\n"
            "10/20  b\n");
}

TEST(CtlFormat, AgeUsesTheLargestSensibleUnit) {
  EXPECT_EQ(Age(0, 1000), "-");
  EXPECT_EQ(Age(1000, 6000), "5s");
  EXPECT_EQ(Age(0 + 1, 1 + 600'000), "10m");
  EXPECT_EQ(Age(1, 1 + 3 * 3600'000), "3h");
  EXPECT_EQ(Age(1, 1 + 5 * 86400'000LL), "5d");
}

TEST(CtlFormat, LabelsPrintSortedOrNone) {
  EXPECT_EQ(LabelString({}), "<none>");
  EXPECT_EQ(LabelString({{"role", "x"}, {"env", "prod"}}), "env=prod,role=x");
}

TEST(CtlFormat, BytesUseBinaryUnits) {
  EXPECT_EQ(Bytes(512), "512B");
  EXPECT_EQ(Bytes(1536), "1.5KiB");
  EXPECT_EQ(Bytes(3ULL << 30), "3.0GiB");
}

}  // namespace
}  // namespace cairn::ctl
