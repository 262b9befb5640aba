#include "cairn/registry/pki.h"

#include <cstdlib>
#include <filesystem>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "cairn/common/files.h"

namespace cairn::registry {
namespace {

TEST(SecretModes, AcceptsAnOwnerOnlyKeyInA0700Directory) {
  EXPECT_TRUE(CheckSecretModes("/p/ca.key", S_IFREG | 0600, "/p", S_IFDIR | 0700).ok());
  EXPECT_TRUE(CheckSecretModes("/p/ca.key", S_IFREG | 0400, "/p", S_IFDIR | 0700).ok());
}

TEST(SecretModes, RefusesAKeyThatGroupOrOthersCanRead) {
  for (mode_t mode : {0640, 0604, 0644, 0660, 0610}) {
    auto st = CheckSecretModes("/p/ca.key", S_IFREG | mode, "/p", S_IFDIR | 0700);
    ASSERT_FALSE(st.ok()) << std::oct << mode;
    EXPECT_EQ(st.error().code, ErrorCode::kFailedPrecondition);
    EXPECT_NE(st.error().message.find("chmod 600 /p/ca.key"), std::string::npos) << st.error().message;
  }
}

TEST(SecretModes, RefusesADirectoryThatIsNot0700) {
  for (mode_t mode : {0755, 0750, 0711, 0500}) {
    auto st = CheckSecretModes("/p/ca.key", S_IFREG | 0600, "/p", S_IFDIR | mode);
    ASSERT_FALSE(st.ok()) << std::oct << mode;
    EXPECT_NE(st.error().message.find("chmod 700 /p"), std::string::npos) << st.error().message;
  }
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/cairn-pki-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

TEST(LoadOrCreateCa, CreatesTheKeyPrivateAndRefusesItOnceOthersCanReadIt) {
  TempDir tmp;
  std::string dir = tmp.path + "/pki";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);  // pre-existing and too open
  auto ca = LoadOrCreateCa(dir);
  ASSERT_TRUE(ca.ok()) << ca.error().ToString();
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/ca.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(LoadOrCreateCa(dir).ok());  // loads what it created

  ASSERT_EQ(::chmod((dir + "/ca.key").c_str(), 0644), 0);
  auto refused = LoadOrCreateCa(dir);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("readable by others"), std::string::npos);

  ASSERT_EQ(::chmod((dir + "/ca.key").c_str(), 0600), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  refused = LoadOrCreateCa(dir);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("must be mode 0700"), std::string::npos);
}

TEST(CertificateSerials, AreReadInTheRevocationFormat) {
  auto ca = tls::CreateCa("test CA", 1);
  ASSERT_TRUE(ca.ok());
  auto key = tls::GenerateKey();
  ASSERT_TRUE(key.ok());
  auto csr = tls::MakeCsr(*key, "node:demo:n1");
  ASSERT_TRUE(csr.ok());
  EXPECT_EQ(*tls::CsrCommonName(*csr), "node:demo:n1");
  auto cert = tls::SignClientCsr(*ca, *csr, "node:demo:n1", 1);
  ASSERT_TRUE(cert.ok());
  auto serial = CertSerialHex(*cert);
  ASSERT_TRUE(serial.ok()) << serial.error().ToString();
  ASSERT_FALSE(serial->empty());
  EXPECT_NE(serial->front(), '0');
  for (char c : *serial) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')) << *serial;
  EXPECT_EQ(*NormalizeSerial(*serial), *serial);
  auto other = tls::SignClientCsr(*ca, *csr, "node:demo:n1", 1);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*CertSerialHex(*other), *serial);
  EXPECT_FALSE(tls::CsrCommonName("not a csr").ok());
}

TEST(CertificateSerials, AreNormalisedFromWhatPeopleType) {
  EXPECT_EQ(*NormalizeSerial("0a:1b:2c"), "A1B2C");
  EXPECT_EQ(*NormalizeSerial("serial=00FF"), "FF");
  EXPECT_EQ(*NormalizeSerial("abc"), "ABC");
  EXPECT_FALSE(NormalizeSerial("").ok());
  EXPECT_FALSE(NormalizeSerial("000").ok());
  EXPECT_FALSE(NormalizeSerial("xyz").ok());
  EXPECT_FALSE(NormalizeSerial(std::string(41, 'A')).ok());
}

}  // namespace
}  // namespace cairn::registry
