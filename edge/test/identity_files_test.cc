// The node's certificate and key on disk: modes, renewal storage and
// recovery after a crash, certificate facts.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/common/files.h"
#include "cairn/common/tls.h"
#include "cairn/edge/certificate.h"
#include "cairn/edge/identity.h"

namespace cairn::edge {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct Pair {
  std::string key;
  std::string cert;
};

Pair Issue(const tls::CertAuthority& ca, const std::string& cn, int days) {
  auto key = tls::GenerateKey();
  auto csr = tls::MakeCsr(*key, "n1");
  auto cert = tls::SignClientCsr(ca, *csr, cn, days);
  EXPECT_TRUE(cert.ok());
  return {*key, *cert};
}

mode_t Mode(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_mode & 07777;
}

class IdentityFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cairn-idfiles-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    id_.data_dir = dir_.string();
    id_.workspace = "ws";
    id_.node = "n1";
    ca_ = *tls::CreateCa("test-ca", 30);
    old_ = Issue(ca_, "node:ws:n1", 10);
    ASSERT_TRUE(WriteFileAtomic(id_.key_file(), old_.key, 0600).ok());
    ASSERT_TRUE(WriteFileAtomic(id_.cert_file(), old_.cert, 0600).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Read(const std::string& path) { return *ReadFile(path); }

  fs::path dir_;
  Identity id_;
  tls::CertAuthority ca_;
  Pair old_;
};

TEST_F(IdentityFilesTest, RefusesAKeyThatOthersCanRead) {
  EXPECT_TRUE(CheckPrivateKeyMode(id_.key_file()).ok());
  ::chmod(id_.key_file().c_str(), 0400);
  EXPECT_TRUE(CheckPrivateKeyMode(id_.key_file()).ok());
  for (mode_t m : {0640, 0604, 0644, 0660}) {
    ::chmod(id_.key_file().c_str(), m);
    auto st = CheckPrivateKeyMode(id_.key_file());
    ASSERT_FALSE(st.ok()) << std::oct << m;
    EXPECT_THAT(st.error().message, HasSubstr("chmod 600 " + id_.key_file()));
  }
}

TEST_F(IdentityFilesTest, TightensLooseIdentityFiles) {
  ::chmod(id_.cert_file().c_str(), 0644);
  ::chmod(id_.data_dir.c_str(), 0755);
  auto changed = TightenIdentityFiles(id_);
  EXPECT_EQ(changed.size(), 2u);
  EXPECT_EQ(Mode(id_.cert_file()), 0600u);
  EXPECT_EQ(Mode(id_.data_dir), 0700u);
  EXPECT_TRUE(TightenIdentityFiles(id_).empty());
}

TEST_F(IdentityFilesTest, StoresARenewedPairWithOwnerOnlyModes) {
  Pair fresh = Issue(ca_, "node:ws:n1", 20);
  ASSERT_TRUE(StoreRenewedIdentity(id_, fresh.key, fresh.cert).ok());
  EXPECT_EQ(Read(id_.key_file()), fresh.key);
  EXPECT_EQ(Read(id_.cert_file()), fresh.cert);
  EXPECT_EQ(Mode(id_.key_file()), 0600u);
  EXPECT_EQ(Mode(id_.cert_file()), 0600u);
  EXPECT_FALSE(FileExists(id_.key_file() + ".next"));
  EXPECT_FALSE(FileExists(id_.cert_file() + ".next"));
  EXPECT_EQ(*RecoverRenewedIdentity(id_.data_dir), "");
}

TEST_F(IdentityFilesTest, RecoveryCompletesARenewalInterruptedAfterBothFilesWereWritten) {
  Pair fresh = Issue(ca_, "node:ws:n1", 20);
  ASSERT_TRUE(WriteFileAtomic(id_.key_file() + ".next", fresh.key, 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(id_.cert_file() + ".next", fresh.cert, 0600).ok());
  auto what = RecoverRenewedIdentity(id_.data_dir);
  ASSERT_TRUE(what.ok());
  EXPECT_THAT(*what, HasSubstr("completed"));
  EXPECT_EQ(Read(id_.key_file()), fresh.key);
  EXPECT_EQ(Read(id_.cert_file()), fresh.cert);
}

TEST_F(IdentityFilesTest, RecoveryCompletesARenewalInterruptedBetweenTheRenames) {
  Pair fresh = Issue(ca_, "node:ws:n1", 20);
  ASSERT_TRUE(WriteFileAtomic(id_.key_file(), fresh.key, 0600).ok());  // key already renamed
  ASSERT_TRUE(WriteFileAtomic(id_.cert_file() + ".next", fresh.cert, 0600).ok());
  ASSERT_TRUE(RecoverRenewedIdentity(id_.data_dir).ok());
  EXPECT_EQ(Read(id_.cert_file()), fresh.cert);
  EXPECT_TRUE(CheckKeyMatchesCertificate(Read(id_.key_file()), Read(id_.cert_file())).ok());
}

TEST_F(IdentityFilesTest, RecoveryDiscardsAKeyWhoseCertificateNeverArrived) {
  Pair fresh = Issue(ca_, "node:ws:n1", 20);
  ASSERT_TRUE(WriteFileAtomic(id_.key_file() + ".next", fresh.key, 0600).ok());
  auto what = RecoverRenewedIdentity(id_.data_dir);
  ASSERT_TRUE(what.ok());
  EXPECT_THAT(*what, HasSubstr("discarded"));
  EXPECT_FALSE(FileExists(id_.key_file() + ".next"));
  EXPECT_EQ(Read(id_.key_file()), old_.key);
  EXPECT_EQ(Read(id_.cert_file()), old_.cert);
}

TEST_F(IdentityFilesTest, RecoveryDiscardsAMismatchedPair) {
  Pair a = Issue(ca_, "node:ws:n1", 20);
  Pair b = Issue(ca_, "node:ws:n1", 20);
  ASSERT_TRUE(WriteFileAtomic(id_.key_file() + ".next", a.key, 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(id_.cert_file() + ".next", b.cert, 0600).ok());
  ASSERT_TRUE(RecoverRenewedIdentity(id_.data_dir).ok());
  EXPECT_EQ(Read(id_.key_file()), old_.key);
  EXPECT_EQ(Read(id_.cert_file()), old_.cert);
  EXPECT_FALSE(FileExists(id_.cert_file() + ".next"));
}

TEST(Certificate, ReadsValidityPrincipalAndSerial) {
  auto ca = *tls::CreateCa("test-ca", 30);
  Pair p = Issue(ca, "node:ws:n1", 3);
  auto info = ReadCertificateInfo(p.cert);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->common_name, "node:ws:n1");
  EXPECT_FALSE(info->serial_hex.empty());
  EXPECT_EQ(info->serial_hex.find_first_not_of("0123456789ABCDEF"), std::string::npos);
  EXPECT_NE(info->serial_hex[0], '0');
  EXPECT_EQ(info->not_after_ms, *tls::CertNotAfterMs(p.cert));
  EXPECT_GT(info->not_after_ms - info->not_before_ms, int64_t{3} * 86400 * 1000 - 1);
  EXPECT_FALSE(ReadCertificateInfo("junk").ok());
}

TEST(Certificate, RenewalIsDueAtTwoThirdsOfTheLife) {
  CertificateInfo c;
  c.not_before_ms = 1000;
  c.not_after_ms = 1000 + 300000;
  EXPECT_EQ(RenewalDueMs(c), 1000 + 201000);  // 67 %
  EXPECT_EQ(RenewalDueMs(c, 0), 1000);
  EXPECT_EQ(RenewalDueMs(c, 50), 1000 + 150000);
  EXPECT_FALSE(Expired(c, 300999));
  EXPECT_TRUE(Expired(c, 301000));
}

TEST(Certificate, KnowsWhetherAKeyBelongsToACertificate) {
  auto ca = *tls::CreateCa("test-ca", 30);
  Pair a = Issue(ca, "node:ws:n1", 3);
  Pair b = Issue(ca, "node:ws:n1", 3);
  EXPECT_TRUE(CheckKeyMatchesCertificate(a.key, a.cert).ok());
  EXPECT_FALSE(CheckKeyMatchesCertificate(b.key, a.cert).ok());
}

TEST(Certificate, FormatsTimesInUtc) { EXPECT_EQ(FormatUtc(86400000), "1970-01-02 00:00:00 UTC"); }

}  // namespace
}  // namespace cairn::edge
