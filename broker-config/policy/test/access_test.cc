#include "cairn/policy/access.h"

#include <gtest/gtest.h>

#include "cairn/policy/password.h"
#include "cairn/policy/principal.h"

namespace cairn::policy {
namespace {

// Cheap hashes keep the test fast; the cost is a parameter of the format.
std::string Hash(const std::string& pw) { return HashPassword(pw, kMinIterations).value(); }

TEST(Password, VerifiesTheRightPasswordOnly) {
  auto h = HashPassword("s3cret", kMinIterations);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->starts_with("pbkdf2-sha256$1000$"));
  EXPECT_TRUE(VerifyPassword(*h, "s3cret"));
  EXPECT_FALSE(VerifyPassword(*h, "s3cret "));
  EXPECT_FALSE(VerifyPassword(*h, ""));
}

TEST(Password, SaltsEveryHash) { EXPECT_NE(Hash("same"), Hash("same")); }

TEST(Password, RejectsMalformedHashes) {
  std::string good = Hash("x");
  for (std::string bad : {std::string(""), std::string("sha256$1000$abc$def"),
                          std::string("pbkdf2-sha256$10$") + good.substr(good.find('$', 15) + 1),
                          good.substr(0, good.size() - 2), good + "$", std::string("pbkdf2-sha256$x$y$z")}) {
    EXPECT_FALSE(IsWellFormedHash(bad)) << bad;
    EXPECT_FALSE(VerifyPassword(bad, "x")) << bad;
  }
  EXPECT_TRUE(IsWellFormedHash(good));
}

TEST(Password, GeneratesDistinctUrlSafePasswords) {
  auto a = GeneratePassword();
  auto b = GeneratePassword();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 32u);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
}

TEST(AccessSnapshot, RoundTrips) {
  AccessSnapshot s;
  s.generated_ms = 42;
  s.users["alice"] = {Hash("a"), {{"*", Role::kAdmin}}};
  s.users["bob"] = {Hash("b"), {{"demo", Role::kViewer}, {"prod", Role::kOperator}}};
  s.credentials[CredentialPrincipal("demo", "telegraf")] = {"demo", "telegraf", Hash("t"), 99};
  auto parsed = ParseAccess(SerializeAccess(s));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->generated_ms, 42);
  ASSERT_EQ(parsed->users.size(), 2u);
  EXPECT_EQ(parsed->users["bob"].roles["prod"], Role::kOperator);
  EXPECT_EQ(parsed->credentials["cred:demo:telegraf"].expires_ms, 99);
  EXPECT_TRUE(VerifyPassword(parsed->users["alice"].password_hash, "a"));
}

TEST(AccessSnapshot, RejectsTruncatedOrForeignInput) {
  AccessSnapshot s;
  s.users["alice"] = {Hash("a"), {{"demo", Role::kAdmin}}};
  std::string text = SerializeAccess(s);
  ASSERT_TRUE(ParseAccess(text).ok());
  EXPECT_FALSE(ParseAccess(text.substr(0, text.size() - 4)).ok());  // no "end"
  EXPECT_FALSE(ParseAccess(text.substr(0, text.size() - 1)).ok());  // no final newline
  EXPECT_FALSE(ParseAccess("").ok());
  EXPECT_FALSE(ParseAccess("cairn-access 2\nend\n").ok());
  EXPECT_FALSE(ParseAccess(text + "user x y\n").ok());
  std::string extra = text;
  extra.insert(extra.find("end\n"), "role alice demo superuser\n");
  EXPECT_FALSE(ParseAccess(extra).ok());
  std::string unknown_user = text;
  unknown_user.insert(unknown_user.find("end\n"), "role mallory demo admin\n");
  EXPECT_FALSE(ParseAccess(unknown_user).ok());
  std::string bad_ws = text;
  bad_ws.insert(bad_ws.find("end\n"), "role alice cairn/v1/# admin\n");
  EXPECT_FALSE(ParseAccess(bad_ws).ok());
}

TEST(AccessSnapshot, RoleInTakesTheStrongerOfWorkspaceAndClusterBindings) {
  AccessUser u{"", {{"demo", Role::kViewer}, {"*", Role::kOperator}, {"prod", Role::kAdmin}}};
  EXPECT_EQ(RoleIn(u, "demo"), Role::kOperator);
  EXPECT_EQ(RoleIn(u, "prod"), Role::kAdmin);
  EXPECT_EQ(RoleIn(u, "other"), Role::kOperator);
  AccessUser v{"", {{"demo", Role::kViewer}}};
  EXPECT_EQ(RoleIn(v, "other"), Role::kNone);
}

TEST(Principal, ParsesEveryKindAndRejectsTheRest) {
  EXPECT_EQ(ParsePrincipal("user:alice").kind, PrincipalKind::kUser);
  EXPECT_EQ(ParsePrincipal("svc:registry").kind, PrincipalKind::kService);
  auto c = ParsePrincipal("cred:demo:telegraf");
  EXPECT_EQ(c.kind, PrincipalKind::kIntegrator);
  EXPECT_EQ(c.ws, "demo");
  EXPECT_EQ(c.name, "telegraf");
  auto n = ParsePrincipal("node:demo:edge-1");
  EXPECT_EQ(n.kind, PrincipalKind::kNode);
  EXPECT_EQ(n.name, "edge-1");
  EXPECT_EQ(ParsePrincipal("bootstrap").kind, PrincipalKind::kBootstrap);
  for (const char* bad : {"", "user:", "user:Alice", "user:a/b", "cred:demo", "cred:demo:", "node:demo:a:b",
                          "node:de mo:x", "svc:", "admin", "user:a+", "bootstrap2"}) {
    EXPECT_EQ(ParsePrincipal(bad).kind, PrincipalKind::kUnknown) << bad;
  }
}

}  // namespace
}  // namespace cairn::policy
