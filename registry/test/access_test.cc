#include "cairn/registry/access.h"

#include <gtest/gtest.h>

#include "cairn/policy/password.h"

namespace cairn::registry {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;

AccessRows SomeRows() {
  AccessRows rows;
  rows.users = {{"admin", "pbkdf2-sha256$1000$a$b"}, {"bob", "pbkdf2-sha256$1000$c$d"}};
  rows.bindings = {{"admin", "*", "admin"}, {"bob", "demo", "viewer"}, {"bob", "prod", "operator"},
                   {"ghost", "demo", "admin"}, {"bob", "lab", "superuser"}};
  rows.credentials = {
      {"demo", "forever", "h1", 0, false},
      {"demo", "later", "h2", kNow + 60'000, false},
      {"demo", "soon", "h3", kNow + 1'000, false},
      {"demo", "expired", "h4", kNow, false},
      {"demo", "revoked", "h5", 0, true},
  };
  return rows;
}

TEST(AccessSnapshot, HoldsEveryUserWithItsBindings) {
  auto s = BuildAccessSnapshot(SomeRows(), kNow);
  EXPECT_EQ(s.generated_ms, kNow);
  ASSERT_EQ(s.users.size(), 2u);
  EXPECT_EQ(s.users["admin"].password_hash, "pbkdf2-sha256$1000$a$b");
  EXPECT_EQ(s.users["admin"].roles.at("*"), policy::Role::kAdmin);
  EXPECT_EQ(s.users["bob"].roles.size(), 2u);
  EXPECT_EQ(s.users["bob"].roles.at("demo"), policy::Role::kViewer);
  EXPECT_EQ(s.users["bob"].roles.at("prod"), policy::Role::kOperator);
}

TEST(AccessSnapshot, LeavesOutBindingsOfUnknownUsersAndUnknownRoles) {
  auto s = BuildAccessSnapshot(SomeRows(), kNow);
  EXPECT_EQ(s.users.count("ghost"), 0u);
  EXPECT_EQ(s.users["bob"].roles.count("lab"), 0u);
}

TEST(AccessSnapshot, LeavesOutRevokedAndExpiredCredentials) {
  auto s = BuildAccessSnapshot(SomeRows(), kNow);
  EXPECT_EQ(s.credentials.size(), 3u);
  EXPECT_EQ(s.credentials.count("cred:demo:forever"), 1u);
  EXPECT_EQ(s.credentials.count("cred:demo:later"), 1u);
  EXPECT_EQ(s.credentials.count("cred:demo:soon"), 1u);
  EXPECT_EQ(s.credentials.count("cred:demo:expired"), 0u);  // expires exactly now
  EXPECT_EQ(s.credentials.count("cred:demo:revoked"), 0u);
  EXPECT_EQ(s.credentials["cred:demo:later"].expires_ms, kNow + 60'000);
  EXPECT_EQ(s.credentials["cred:demo:later"].ws, "demo");
  EXPECT_EQ(s.credentials["cred:demo:later"].name, "later");
}

TEST(AccessSnapshot, DropsACredentialOnceItsTimeHasCome) {
  auto rows = SomeRows();
  int64_t next = NextCredentialExpiry(rows, kNow);
  EXPECT_EQ(next, kNow + 1'000);
  auto after = BuildAccessSnapshot(rows, next);
  EXPECT_EQ(after.credentials.count("cred:demo:soon"), 0u);
  EXPECT_EQ(after.credentials.count("cred:demo:later"), 1u);
  EXPECT_EQ(NextCredentialExpiry(rows, next), kNow + 60'000);
  EXPECT_EQ(NextCredentialExpiry(rows, kNow + 60'000), 0);  // only "forever" is left
}

TEST(AccessSnapshot, RoundTripsThroughTheBrokersParser) {
  auto hash = policy::HashPassword("correct horse", policy::kMinIterations);
  ASSERT_TRUE(hash.ok());
  AccessRows rows;
  rows.users = {{"admin", *hash}};
  rows.bindings = {{"admin", "*", "admin"}};
  rows.credentials = {{"demo", "grafana", *hash, 0, false}};
  auto text = policy::SerializeAccess(BuildAccessSnapshot(rows, kNow));
  auto parsed = policy::ParseAccess(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString() << "\n" << text;
  EXPECT_EQ(parsed->users.at("admin").roles.at("*"), policy::Role::kAdmin);
  EXPECT_EQ(parsed->credentials.count("cred:demo:grafana"), 1u);
}

TEST(Passwords, ChosenPasswordsNeedEightCharactersAndNoControlCharacters) {
  EXPECT_TRUE(ValidatePassword("correct horse").ok());
  EXPECT_TRUE(ValidatePassword("12345678").ok());
  EXPECT_EQ(ValidatePassword("1234567").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ValidatePassword("").error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(ValidatePassword("password\n123").ok());
  EXPECT_FALSE(ValidatePassword(std::string(1025, 'x')).ok());
}

TEST(Credentials, ExpiryIsNeverForZeroAndBoundedToTenYears) {
  EXPECT_EQ(*CredentialExpiry(kNow, 0), 0);
  EXPECT_EQ(*CredentialExpiry(kNow, 3600), kNow + 3'600'000);
  EXPECT_TRUE(CredentialExpiry(kNow, 10ULL * 365 * 24 * 3600).ok());
  EXPECT_EQ(CredentialExpiry(kNow, 10ULL * 365 * 24 * 3600 + 1).error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::registry
