#include "cairn/registry/pki.h"

#include "cairn/policy/revocations.h"

#include <cstdio>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include "cairn/common/files.h"

namespace cairn::registry {

Result<tls::CertAuthority> LoadOrCreateCa(const std::string& pki_dir) {
  std::string crt = pki_dir + "/ca.crt";
  std::string key = pki_dir + "/ca.key";
  if (FileExists(crt) && FileExists(key)) {
    if (auto st = CheckSecretFileModes(key); !st.ok()) return st.error();
    auto c = ReadFile(crt);
    if (!c.ok()) return c.error();
    auto k = ReadFile(key);
    if (!k.ok()) return k.error();
    auto cn = tls::CertCommonName(*c);
    if (!cn.ok()) return Error::FailedPrecondition(crt + " is not a certificate: " + cn.error().message);
    return tls::CertAuthority{*c, *k};
  }
  if (auto st = MakeDirs(pki_dir, 0700); !st.ok()) return st.error();
  // The CA key's directory is private even when it existed before (umask).
  if (::chmod(pki_dir.c_str(), 0700) != 0) return Error::Internal("cannot chmod 700 " + pki_dir);
  auto ca = tls::CreateCa("Cairn control-plane CA", 3650);
  if (!ca.ok()) return ca.error();
  if (auto st = WriteFileAtomic(key, ca->key_pem, 0600); !st.ok()) return st.error();
  if (auto st = WriteFileAtomic(crt, ca->cert_pem, 0644); !st.ok()) return st.error();
  spdlog::info("created the control-plane CA in {}", pki_dir);
  return *ca;
}

namespace {

std::string Octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string DirOf(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Status CheckSecretModes(const std::string& key_path, mode_t key_mode, const std::string& dir_path,
                        mode_t dir_mode) {
  if ((key_mode & 077) != 0) {
    return Error::FailedPrecondition("private key " + key_path + " is readable by others (mode " +
                                     Octal(key_mode) + "); refusing to use it. Fix: chmod 600 " + key_path);
  }
  if ((dir_mode & 07777) != 0700) {
    return Error::FailedPrecondition("directory " + dir_path + " of private key " + key_path +
                                     " must be mode 0700 (is " + Octal(dir_mode) +
                                     "); refusing to use it. Fix: chmod 700 " + dir_path);
  }
  return OkStatus();
}

Status CheckSecretFileModes(const std::string& key_path) {
  std::string dir = DirOf(key_path);
  struct stat key_st {};
  struct stat dir_st {};
  if (::stat(key_path.c_str(), &key_st) != 0) return Error::FailedPrecondition("cannot stat " + key_path);
  if (::stat(dir.c_str(), &dir_st) != 0) return Error::FailedPrecondition("cannot stat " + dir);
  return CheckSecretModes(key_path, key_st.st_mode, dir, dir_st.st_mode);
}

Result<std::string> CertSerialHex(const std::string& cert_pem) {
  BIO* bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  if (bio == nullptr) return Error::Internal("out of memory");
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return Error::InvalidArgument("not a PEM certificate");
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  X509_free(cert);
  if (bn == nullptr) return Error::InvalidArgument("certificate has no readable serial");
  char* hex = BN_bn2hex(bn);
  BN_free(bn);
  if (hex == nullptr) return Error::Internal("out of memory");
  auto out = policy::NormaliseSerial(hex);  // BN_bn2hex prints whole bytes: "0A1B"
  OPENSSL_free(hex);
  if (!out) return Error::InvalidArgument("certificate serial is zero");
  return *out;
}


Result<std::string> NormalizeSerial(std::string_view text) {
  auto hex = policy::NormaliseSerial(text);
  if (!hex) {
    return Error::InvalidArgument(
        "certificate serial must be 1 to 40 hex digits, not zero (as openssl x509 -noout -serial prints it)");
  }
  return *hex;
}

Status EnsureBrokerCert(const tls::CertAuthority& ca, const std::string& out_dir,
                        const std::vector<std::string>& sans) {
  if (auto st = MakeDirs(out_dir, 0700); !st.ok()) return st;
  std::string crt = out_dir + "/broker.crt";
  if (FileExists(crt)) {
    auto existing = ReadFile(crt);
    if (existing.ok() && tls::VerifyCert(ca.cert_pem, *existing).ok()) return OkStatus();
  }
  auto key = tls::GenerateKey();
  if (!key.ok()) return key.error();
  auto cert = tls::IssueServerCert(ca, *key, sans.empty() ? "localhost" : sans.front(), sans, 825);
  if (!cert.ok()) return cert.error();
  // 0600: the broker (which drops to its own user) reads it once whoever
  // deploys the broker makes that user the owner (tests/lib/stack.sh chowns
  // the broker directory); render-conf.sh refuses a key others can read.
  if (auto st = WriteFileAtomic(out_dir + "/broker.key", *key, 0600); !st.ok()) return st;
  if (auto st = WriteFileAtomic(crt, *cert + ca.cert_pem, 0644); !st.ok()) return st;
  return WriteFileAtomic(out_dir + "/ca.crt", ca.cert_pem, 0644);
}

}  // namespace cairn::registry
