#include "cairn/common/selector.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cairn {
namespace {

using Op = Requirement::Op;

TEST(Selector, ParsesEveryOperatorOfTheStringForm) {
  struct Case {
    std::string text;
    std::vector<Requirement> want;
  };
  const std::vector<Case> cases = {
      {"", {}},
      {"   ", {}},
      {"env=prod", {{"env", Op::kEquals, {"prod"}}}},
      {"env==prod", {{"env", Op::kEquals, {"prod"}}}},
      {"env = prod", {{"env", Op::kEquals, {"prod"}}}},
      {"env=", {{"env", Op::kEquals, {""}}}},
      {"tier!=db", {{"tier", Op::kNotEquals, {"db"}}}},
      {"region in (us-east-1,eu-west-1)", {{"region", Op::kIn, {"eu-west-1", "us-east-1"}}}},
      {"region in(b, a ,a)", {{"region", Op::kIn, {"a", "b"}}}},
      {"region notin (a)", {{"region", Op::kNotIn, {"a"}}}},
      {"canary", {{"canary", Op::kExists, {}}}},
      {"!legacy", {{"legacy", Op::kNotExists, {}}}},
      {"! legacy", {{"legacy", Op::kNotExists, {}}}},
      {"example.com/team=core", {{"example.com/team", Op::kEquals, {"core"}}}},
      {"in in (in)", {{"in", Op::kIn, {"in"}}}},  // keywords are fine as keys and values
      {"env=prod,env=prod", {{"env", Op::kEquals, {"prod"}}}},
      {"env=production,region in (us-east-1,eu-west-1),tier!=db,canary,!legacy",
       {{"canary", Op::kExists, {}},
        {"env", Op::kEquals, {"production"}},
        {"legacy", Op::kNotExists, {}},
        {"region", Op::kIn, {"eu-west-1", "us-east-1"}},
        {"tier", Op::kNotEquals, {"db"}}}},
  };
  for (const Case& c : cases) {
    auto s = Selector::Parse(c.text);
    ASSERT_TRUE(s.ok()) << c.text << ": " << s.error().message;
    EXPECT_EQ(s->requirements(), c.want) << c.text;
    EXPECT_EQ(s->empty(), c.want.empty()) << c.text;
  }
}

TEST(Selector, RejectsInvalidSelectorsWithAClearReason) {
  struct Case {
    std::string text;
    std::string message;  // the whole error message
  };
  const std::vector<Case> cases = {
      {"env in (a", "invalid selector \"env in (a\": missing ')'"},
      {"env in (a,", "invalid selector \"env in (a,\": missing ')'"},
      {"env in ()", "invalid selector \"env in ()\": 'in' needs at least one value"},
      {"env notin ()", "invalid selector \"env notin ()\": 'notin' needs at least one value"},
      {"env in a", "invalid selector \"env in a\": expected '(' after 'in', got \"a\" at position 8"},
      {"env in (a,,b)", "invalid selector \"env in (a,,b)\": expected a value, got \",\" at position 11"},
      {"env in (a b)", "invalid selector \"env in (a b)\": expected ',' or ')', got \"b\" at position 11"},
      {"env=prod,", "invalid selector \"env=prod,\": trailing ','"},
      {",env", "invalid selector \",env\": empty requirement at position 1"},
      {"a,,b", "invalid selector \"a,,b\": empty requirement at position 3"},
      {"env prod", "invalid selector \"env prod\": expected '=', '==', '!=', 'in', 'notin', ',' or end "
                   "of input after key \"env\", got \"prod\" at position 5"},
      {"env=prod east", "invalid selector \"env=prod east\": expected ',' or end of input, got "
                        "\"east\" at position 10"},
      {"env=(a)", "invalid selector \"env=(a)\": expected a value after \"=\", got \"(\" at position 5"},
      {"!env=prod", "invalid selector \"!env=prod\": '!' takes only a key, got \"=\" at position 5"},
      {"=prod", "invalid selector \"=prod\": expected a label key, got \"=\" at position 1"},
      {"!", "invalid selector \"!\": expected a label key, got end of input"},
  };
  for (const Case& c : cases) {
    auto s = Selector::Parse(c.text);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(s.error().message, c.message);
  }
}

TEST(Selector, RejectsInvalidLabelKeysAndValues) {
  struct Case {
    std::string text;
    std::string reason;  // part of the message
  };
  const std::vector<Case> cases = {
      {"-env=a", "invalid label key \"-env\": must start and end with a letter or digit"},
      {"env_=a", "invalid label key \"env_\""},
      {"en$v=a", "character \"$\" is not allowed"},
      {"Example.com/env=a", "prefix must be a lower-case DNS subdomain"},
      {"/env=a", "prefix before '/' must not be empty"},
      {"a/b/c=a", "at most one '/' is allowed"},
      {"example.com/=a", "name must not be empty"},
      {std::string(64, 'k') + "=a", "longer than 63 characters"},
      {"env=" + std::string(64, 'v'), "invalid label value"},
      {"env=-prod", "invalid label value \"-prod\": must start and end with a letter or digit"},
      {"env in (ok,bad$)", "invalid label value \"bad$\""},
      {"env>1", "invalid label key \"env>1\""},
      {std::string("env=a\nb"), "got \"b\" at position 7"},
      {std::string("env=a\x01"), "invalid label value \"a\\x01\""},
  };
  for (const Case& c : cases) {
    auto s = Selector::Parse(c.text);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_NE(s.error().message.find(c.reason), std::string::npos) << s.error().message;
    EXPECT_EQ(s.error().message.rfind("invalid selector \"", 0), 0u) << s.error().message;
  }
}

TEST(Selector, MatchesLabelsLikeKubernetes) {
  const Labels prod = {{"env", "prod"}, {"region", "eu-west-1"}, {"canary", ""}};
  const Labels dev = {{"env", "dev"}, {"legacy", "true"}};
  const Labels bare = {};
  struct Case {
    std::string selector;
    bool prod, dev, bare;
  };
  const std::vector<Case> cases = {
      {"", true, true, true},
      {"env=prod", true, false, false},
      {"env!=prod", false, true, true},  // != also matches nodes lacking the key
      {"region in (eu-west-1,us-east-1)", true, false, false},
      {"region notin (eu-west-1)", false, true, true},  // notin matches nodes lacking the key
      {"canary", true, false, false},
      {"canary=", true, false, false},
      {"!legacy", true, false, true},
      {"env in (prod,dev),!legacy", true, false, false},
      {"env=prod,env=dev", false, false, false},
  };
  for (const Case& c : cases) {
    auto s = Selector::Parse(c.selector);
    ASSERT_TRUE(s.ok()) << c.selector;
    EXPECT_EQ(s->Matches(prod), c.prod) << c.selector << " on prod";
    EXPECT_EQ(s->Matches(dev), c.dev) << c.selector << " on dev";
    EXPECT_EQ(s->Matches(bare), c.bare) << c.selector << " on a node without labels";
  }
}

TEST(Selector, PrintsACanonicalFormThatParsesBackToTheSameSelector) {
  struct Case {
    std::string text;
    std::string canonical;
  };
  const std::vector<Case> cases = {
      {"", ""},
      {"env==prod", "env=prod"},
      {" tier != db , env = prod ", "env=prod,tier!=db"},
      {"region in (us-east-1, eu-west-1, us-east-1)", "region in (eu-west-1,us-east-1)"},
      {"!legacy,canary", "canary,!legacy"},
      {"env=production,region in (us-east-1,eu-west-1),tier!=db,canary,!legacy",
       "canary,env=production,!legacy,region in (eu-west-1,us-east-1),tier!=db"},
      {"a notin (x),a in (y),a!=z,a=w,!a,a", "a=w,a!=z,a in (y),a notin (x),a,!a"},
      {"env=", "env="},
  };
  for (const Case& c : cases) {
    auto s = Selector::Parse(c.text);
    ASSERT_TRUE(s.ok()) << c.text << ": " << s.error().message;
    EXPECT_EQ(s->ToString(), c.canonical) << c.text;
    auto again = Selector::Parse(s->ToString());
    ASSERT_TRUE(again.ok()) << s->ToString();
    EXPECT_EQ(again->requirements(), s->requirements()) << c.text;
    EXPECT_EQ(again->ToString(), c.canonical);
  }
}

TEST(Selector, BuildsFromTheMapFormAsEqualities) {
  auto s = Selector::FromMap({{"role", "log-processor"}, {"env", "production"}});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->ToString(), "env=production,role=log-processor");
  EXPECT_TRUE(s->Matches({{"env", "production"}, {"role", "log-processor"}, {"x", "y"}}));
  EXPECT_FALSE(s->Matches({{"env", "production"}}));

  auto empty = Selector::FromMap({});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  auto bad = Selector::FromMap({{"env", "not ok"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("invalid label value \"not ok\""), std::string::npos)
      << bad.error().message;
}

TEST(Selector, ValidatesLabelMaps) {
  EXPECT_TRUE(ValidateLabels({{"env", "prod"}, {"example.com/team", "core"}, {"empty", ""}}).ok());
  EXPECT_FALSE(ValidateLabels({{"env", "prod"}, {"bad key", "x"}}).ok());
  auto s = ValidateLabels({{"env", "bad value"}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("(label \"env\")"), std::string::npos) << s.error().message;
}

TEST(SelectorSql, EmptySelectorIsTrue) {
  std::vector<std::string> params;
  EXPECT_EQ(Selector().ToSql("labels", 1, &params), "TRUE");
  EXPECT_TRUE(params.empty());
}

TEST(SelectorSql, TranslatesEachOperatorWithParameters) {
  struct Case {
    std::string selector;
    std::string sql;
    std::vector<std::string> params;
  };
  const std::vector<Case> cases = {
      {"env=prod", "labels @> $3::jsonb", {R"({"env":"prod"})"}},
      {"env!=prod", "NOT (labels @> $3::jsonb)", {R"({"env":"prod"})"}},
      {"region in (b,a)", "(labels ->> $3) = ANY($4::text[])", {"region", R"({"a","b"})"}},
      {"region notin (a)", "NOT COALESCE((labels ->> $3) = ANY($4::text[]), false)",
       {"region", R"({"a"})"}},
      {"canary", "labels ? $3", {"canary"}},
      {"!legacy", "NOT (labels ? $3)", {"legacy"}},
      {"env=,x.io/k in (v)", "(labels @> $3::jsonb AND (labels ->> $4) = ANY($5::text[]))",
       {R"({"env":""})", "x.io/k", R"({"v"})"}},
  };
  for (const Case& c : cases) {
    auto s = Selector::Parse(c.selector);
    ASSERT_TRUE(s.ok()) << c.selector;
    std::vector<std::string> params = {"ws", "other"};  // parameters $1 and $2 already taken
    EXPECT_EQ(s->ToSql("labels", 3, &params), c.sql) << c.selector;
    std::vector<std::string> want = {"ws", "other"};
    want.insert(want.end(), c.params.begin(), c.params.end());
    EXPECT_EQ(params, want) << c.selector;
  }
}

TEST(SelectorSql, PassesKeysAndValuesOnlyAsQuotedParameters) {
  // Label syntax rules out quotes and backslashes, so the escaping of JSON and
  // array literals is defence in depth; what we can check is that every value
  // travels as a parameter, each array element double-quoted.
  auto s = Selector::Parse("k.a_b=v.x_y,k in (a.b,c_d)");
  ASSERT_TRUE(s.ok());
  std::vector<std::string> params;
  std::string sql = s->ToSql("labels", 1, &params);
  EXPECT_EQ(sql.find("a.b"), std::string::npos) << sql;
  EXPECT_EQ(sql.find("v.x_y"), std::string::npos) << sql;
  ASSERT_EQ(params.size(), 3u);
  EXPECT_EQ(params[0], "k");
  EXPECT_EQ(params[1], R"({"a.b","c_d"})");
  EXPECT_EQ(params[2], R"({"k.a_b":"v.x_y"})");
}

}  // namespace
}  // namespace cairn
