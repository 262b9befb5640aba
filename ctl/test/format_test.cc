#include "cairn/ctl/format.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
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

namespace cairn::ctl {
namespace {

TEST(CtlPrintable, PassesPrintableAsciiAndUtf8Unchanged) {
  EXPECT_EQ(Printable("edge-1 v1.2.3 (ok) \\ \"q\""), "edge-1 v1.2.3 (ok) \\ \"q\"");
  EXPECT_EQ(Printable("Zürich ∞ 東京 🙂"), "Zürich ∞ 東京 🙂");
  EXPECT_EQ(Printable(""), "");
}

TEST(CtlPrintable, EscapesControlCharactersAndAnsiSequences) {
  struct Case {
    std::string in;
    std::string out;
  } cases[] = {
      {"a\nb", "a\\nb"},
      {"a\r\tb", "a\\r\\tb"},
      {"\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"},
      {std::string("nul\0x", 5), "nul\\x00x"},
      {"bell\x07", "bell\\x07"},
      {"del\x7f", "del\\x7f"},
      {"\x1b]0;title\x07", "\\x1b]0;title\\x07"},
  };
  for (const auto& c : cases) EXPECT_EQ(Printable(c.in), c.out) << c.out;
}

TEST(CtlPrintable, EscapesC1ControlsBidiOverridesAndInvisibleCharacters) {
  EXPECT_EQ(Printable("\xc2\x9b" "31m"), "\\u009b31m");               // C1 CSI
  EXPECT_EQ(Printable("abc\xe2\x80\xae" "fdp.exe"), "abc\\u202efdp.exe");  // right-to-left override
  EXPECT_EQ(Printable("a\xe2\x80\x8b" "b"), "a\\u200bb");             // zero-width space
  EXPECT_EQ(Printable("\xef\xbb\xbf" "x"), "\\ufeffx");               // BOM
  EXPECT_EQ(Printable("a\xe2\x80\xa8" "b"), "a\\u2028b");             // line separator
  EXPECT_EQ(Printable("\xf3\xa0\x80\x81"), "\\U000e0001");           // tag character
}

TEST(CtlPrintable, EscapesBytesThatAreNotUtf8) {
  EXPECT_EQ(Printable("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(Printable("\xc3"), "\\xc3");                    // truncated sequence
  EXPECT_EQ(Printable("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(Printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // surrogate
}

TEST(CtlPrintable, TableEscapesEveryCellAndMeasuresTheEscapedText) {
  EXPECT_EQ(Table({"NAME", "ERROR"}, {{"n1", "bad\x1b[2Jthing"}, {"n2", "ok"}}),
            "NAME  ERROR\n"
            "n1    bad\\x1b[2Jthing\n"
            "n2    ok\n");
  EXPECT_EQ(Table({"A", "B"}, {{"x\ny", "z"}}),
            "A     B\n"
            "x\\ny  z\n");
}

TEST(CtlJson, StringsAreEscapedPerRfc8259) {
  EXPECT_EQ(JsonString("plain"), "\"plain\"");
  EXPECT_EQ(JsonString("q\"b\\"), "\"q\\\"b\\\\\"");
  EXPECT_EQ(JsonString("a\nb\x1b"), "\"a\\nb\\u001b\"");
  EXPECT_EQ(JsonString("∞"), "\"∞\"");
  EXPECT_EQ(JsonString("\xff"), "\"\\ufffd\"");
}

TEST(CtlJson, SecretJsonHasExactlyUsernameAndPassword) {
  EXPECT_EQ(SecretJson("user:alice", "s3cr\"t"), "{\"username\": \"user:alice\", \"password\": \"s3cr\\\"t\"}");
  // It parses as JSON, with those two fields and nothing else.
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(SecretJson("cred:demo:grafana", "p\x01\\w"), &parsed).ok());
  ASSERT_EQ(parsed.fields().size(), 2u);
  EXPECT_EQ(parsed.fields().at("username").string_value(), "cred:demo:grafana");
  EXPECT_EQ(parsed.fields().at("password").string_value(), "p\x01\\w");
}

}  // namespace
}  // namespace cairn::ctl
