#include "cairn/edge/certificate.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <memory>

#include "cairn/policy/revocations.h"

namespace cairn::edge {
namespace {

struct Free {
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(char* p) const { OPENSSL_free(p); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Free>;

Result<Ptr<X509>> ParseCert(const std::string& pem) {
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Ptr<X509> cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  if (!cert) return Error::InvalidArgument("not a PEM certificate");
  return cert;
}

Result<int64_t> TimeMs(const ASN1_TIME* t, const char* what) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return Error::InvalidArgument(std::string("cannot read the certificate's ") + what);
  }
  return static_cast<int64_t>(::timegm(&tm)) * 1000;
}

}  // namespace

Result<CertificateInfo> ReadCertificateInfo(const std::string& cert_pem) {
  auto cert = ParseCert(cert_pem);
  if (!cert.ok()) return cert.error();
  CertificateInfo info;
  auto nb = TimeMs(X509_get0_notBefore(cert->get()), "notBefore");
  if (!nb.ok()) return nb.error();
  auto na = TimeMs(X509_get0_notAfter(cert->get()), "notAfter");
  if (!na.ok()) return na.error();
  info.not_before_ms = *nb;
  info.not_after_ms = *na;
  Ptr<BIGNUM> serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert->get()), nullptr));
  if (serial) {
    Ptr<char> hex(BN_bn2hex(serial.get()));
    // BN_bn2hex prints whole bytes ("0A1B"): one canonical form everywhere.
    if (hex) info.serial_hex = policy::NormaliseSerial(hex.get()).value_or(hex.get());
  }
  char cn[256] = {0};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert->get()), NID_commonName, cn, sizeof(cn)) > 0) {
    info.common_name = cn;
  }
  ERR_clear_error();
  return info;
}

int64_t RenewalDueMs(const CertificateInfo& cert, int percent) {
  int64_t life = cert.not_after_ms - cert.not_before_ms;
  if (life <= 0) return cert.not_before_ms;
  return cert.not_before_ms + life / 100 * percent + (life % 100) * percent / 100;
}

Status CheckKeyMatchesCertificate(const std::string& key_pem, const std::string& cert_pem) {
  auto cert = ParseCert(cert_pem);
  if (!cert.ok()) return cert.error();
  Ptr<BIO> bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  Ptr<EVP_PKEY> key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) {
    ERR_clear_error();
    return Error::InvalidArgument("not a PEM private key");
  }
  int ok = X509_check_private_key(cert->get(), key.get());
  ERR_clear_error();
  if (ok != 1) return Error::InvalidArgument("the certificate does not belong to this private key");
  return OkStatus();
}

std::string FormatUtc(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

}  // namespace cairn::edge
