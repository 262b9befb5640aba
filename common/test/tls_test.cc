#include "cairn/common/tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cairn::tls {
namespace {

// The in-process test server writes to sockets that the client under test may
// already have closed; that must not kill the test binary.
const bool kSigpipeIgnored = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

template <auto Fn>
struct Free {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};
using X509Ptr = std::unique_ptr<X509, Free<X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY_free>>;
using ReqPtr = std::unique_ptr<X509_REQ, Free<X509_REQ_free>>;
using BioPtr = std::unique_ptr<BIO, Free<BIO_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Free<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Free<SSL_free>>;

constexpr int64_t kDayMs = 24LL * 3600 * 1000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

template <typename T>
T Must(Result<T> r) {
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (!r.ok()) return T{};
  return std::move(r).value();
}

X509Ptr ParseX509(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

PkeyPtr ParseKey(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

ReqPtr ParseReq(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return ReqPtr(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
}

std::string ReqToPem(X509_REQ* req) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string CertDer(const std::string& pem) {
  X509Ptr cert = ParseX509(pem);
  unsigned char* der = nullptr;
  int len = i2d_X509(cert.get(), &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

// A CA plus a node certificate it signed, shared by several tests.
struct Pki {
  CertAuthority ca;
  std::string node_key;
  std::string node_cert;
};

Pki MakePki(const std::string& ca_name = "cairn-test-ca") {
  Pki p;
  p.ca = Must(CreateCa(ca_name, 30));
  p.node_key = Must(GenerateKey());
  std::string csr = Must(MakeCsr(p.node_key, "csr-claims-this-name"));
  p.node_cert = Must(SignClientCsr(p.ca, csr, "ws1.node-7", 10));
  return p;
}

// ---------------------------------------------------------------------------
// Keys, CSRs, CAs and certificates

TEST(TlsKeys, GeneratedKeyIsAnEcP256Pkcs8Pem) {
  std::string pem = Must(GenerateKey());
  EXPECT_EQ(pem.rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
  PkeyPtr key = ParseKey(pem);
  ASSERT_TRUE(key);
  EXPECT_EQ(EVP_PKEY_get_base_id(key.get()), EVP_PKEY_EC);
  EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 256);
}

TEST(TlsKeys, TwoGeneratedKeysDiffer) { EXPECT_NE(Must(GenerateKey()), Must(GenerateKey())); }

TEST(TlsPki, CsrCarriesTheRequestedCommonNameAndVerifies) {
  std::string csr = Must(MakeCsr(Must(GenerateKey()), "node-a"));
  ReqPtr req = ParseReq(csr);
  ASSERT_TRUE(req);
  EXPECT_EQ(X509_REQ_verify(req.get(), X509_REQ_get0_pubkey(req.get())), 1);
  char cn[64] = {0};
  X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req.get()), NID_commonName, cn, sizeof(cn));
  EXPECT_STREQ(cn, "node-a");
}

TEST(TlsPki, SignedClientCertGetsTheCallersCommonNameNotTheCsrs) {
  Pki p = MakePki();
  EXPECT_EQ(Must(CertCommonName(p.node_cert)), "ws1.node-7");
}

TEST(TlsPki, SignedClientCertVerifiesAgainstItsCa) {
  Pki p = MakePki();
  Status s = VerifyCert(p.ca.cert_pem, p.node_cert);
  EXPECT_TRUE(s.ok()) << s.error().message;
}

TEST(TlsPki, SignedClientCertCarriesTheCsrPublicKey) {
  Pki p = MakePki();
  X509Ptr cert = ParseX509(p.node_cert);
  PkeyPtr key = ParseKey(p.node_key);
  ASSERT_TRUE(cert && key);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
}

TEST(TlsPki, CertFromAnotherCaFailsVerification) {
  Pki ours = MakePki("ours");
  Pki theirs = MakePki("theirs");
  Status s = VerifyCert(ours.ca.cert_pem, theirs.node_cert);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnauthenticated);
  EXPECT_NE(s.error().message.find("does not verify"), std::string::npos) << s.error().message;
}

TEST(TlsPki, CertFromACaWithTheSameNameButAnotherKeyFailsVerification) {
  Pki ours = MakePki("same-name");
  Pki theirs = MakePki("same-name");
  EXPECT_FALSE(VerifyCert(ours.ca.cert_pem, theirs.node_cert).ok());
}

TEST(TlsPki, CaCertificateIsASelfSignedCaWithCertSignUsage) {
  CertAuthority ca = Must(CreateCa("root", 365));
  X509Ptr cert = ParseX509(ca.cert_pem);
  ASSERT_TRUE(cert);
  EXPECT_GE(X509_check_ca(cert.get()), 1);
  EXPECT_TRUE(X509_get_extension_flags(cert.get()) & EXFLAG_SS);
  EXPECT_TRUE(X509_get_key_usage(cert.get()) & KU_KEY_CERT_SIGN);
  EXPECT_TRUE(X509_get_key_usage(cert.get()) & KU_CRL_SIGN);
  EXPECT_NE(X509_get0_subject_key_id(cert.get()), nullptr);
  int crit = 0;
  auto* bc = static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(cert.get(), NID_basic_constraints, &crit, nullptr));
  ASSERT_NE(bc, nullptr);
  EXPECT_EQ(crit, 1);
  EXPECT_TRUE(bc->ca);
  BASIC_CONSTRAINTS_free(bc);
  EXPECT_EQ(Must(CertCommonName(ca.cert_pem)), "root");
  EXPECT_TRUE(VerifyCert(ca.cert_pem, ca.cert_pem).ok());
}

TEST(TlsPki, CaValidityStartsBeforeNowAndEndsAfterTheGivenDays) {
  CertAuthority ca = Must(CreateCa("root", 365));
  X509Ptr cert = ParseX509(ca.cert_pem);
  ASSERT_TRUE(cert);
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(cert.get())), 0);
  int64_t not_after = Must(CertNotAfterMs(ca.cert_pem));
  EXPECT_NEAR(static_cast<double>(not_after), static_cast<double>(NowMs() + 365 * kDayMs),
              60'000.0);
}

TEST(TlsPki, SerialNumbersAreRandomAnd128Bit) {
  CertAuthority ca = Must(CreateCa("root", 1));
  std::string key = Must(GenerateKey());
  std::string csr = Must(MakeCsr(key, "n"));
  X509Ptr a = ParseX509(Must(SignClientCsr(ca, csr, "n", 1)));
  X509Ptr b = ParseX509(Must(SignClientCsr(ca, csr, "n", 1)));
  ASSERT_TRUE(a && b);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(a.get()), X509_get0_serialNumber(b.get())), 0);
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(a.get()), nullptr);
  EXPECT_LE(BN_num_bits(bn), 128);
  EXPECT_GT(BN_num_bits(bn), 64);  // fails with probability 2^-63
  EXPECT_FALSE(BN_is_negative(bn));
  BN_free(bn);
}

TEST(TlsPki, ClientCertIsForClientAuthOnlyAndNotACa) {
  Pki p = MakePki();
  X509Ptr cert = ParseX509(p.node_cert);
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_EQ(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_CLIENT, 0), 1);
  EXPECT_EQ(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_SERVER, 0), 0);
  EXPECT_TRUE(X509_get_key_usage(cert.get()) & KU_DIGITAL_SIGNATURE);
  EXPECT_NE(X509_get0_authority_key_id(cert.get()), nullptr);
  X509Ptr ca = ParseX509(p.ca.cert_pem);
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(cert.get()), X509_get_subject_name(ca.get())), 0);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(cert.get()),
                                  X509_get0_subject_key_id(ca.get())),
            0);
}

TEST(TlsPki, LeafCertificateNeverOutlivesItsCa) {
  CertAuthority ca = Must(CreateCa("short-lived", 10));
  std::string csr = Must(MakeCsr(Must(GenerateKey()), "n"));
  std::string cert = Must(SignClientCsr(ca, csr, "n", 100));
  EXPECT_EQ(Must(CertNotAfterMs(cert)), Must(CertNotAfterMs(ca.cert_pem)));
  std::string shorter = Must(SignClientCsr(ca, csr, "n", 3));
  EXPECT_NEAR(static_cast<double>(Must(CertNotAfterMs(shorter))),
              static_cast<double>(NowMs() + 3 * kDayMs), 60'000.0);
}

TEST(TlsPki, TamperedCsrIsRejected) {
  CertAuthority ca = Must(CreateCa("root", 1));
  std::string csr = Must(MakeCsr(Must(GenerateKey()), "node-aaaa"));
  ReqPtr req = ParseReq(csr);
  ASSERT_TRUE(req);
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(req.get(), &der);
  ASSERT_GT(len, 0);
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  size_t at = bytes.find("node-aaaa");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 5] = 'b';  // same length, so the DER still parses
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  ReqPtr tampered(d2i_X509_REQ(nullptr, &p, static_cast<long>(bytes.size())));
  ASSERT_TRUE(tampered);

  auto r = SignClientCsr(ca, ReqToPem(tampered.get()), "n", 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("signature"), std::string::npos) << r.error().message;
}

TEST(TlsPki, CsrSignedByAnotherKeyIsRejected) {
  CertAuthority ca = Must(CreateCa("root", 1));
  PkeyPtr claimed = ParseKey(Must(GenerateKey()));
  PkeyPtr signer = ParseKey(Must(GenerateKey()));
  ReqPtr req(X509_REQ_new());
  X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("n"), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), claimed.get());
  ASSERT_GT(X509_REQ_sign(req.get(), signer.get(), EVP_sha256()), 0);

  auto r = SignClientCsr(ca, ReqToPem(req.get()), "n", 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

TEST(TlsPki, CsrWithAWeakRsaKeyIsRejected) {
  CertAuthority ca = Must(CreateCa("root", 1));
  PkeyPtr weak(EVP_RSA_gen(1024));
  ASSERT_TRUE(weak);
  std::string csr = Must(MakeCsr(KeyToPem(weak.get()), "n"));
  auto r = SignClientCsr(ca, csr, "n", 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("too weak"), std::string::npos) << r.error().message;
}

TEST(TlsPki, CaKeyThatDoesNotMatchTheCaCertIsRejected) {
  CertAuthority ca = Must(CreateCa("root", 1));
  CertAuthority other = Must(CreateCa("root", 1));
  CertAuthority mixed{ca.cert_pem, other.key_pem};
  std::string csr = Must(MakeCsr(Must(GenerateKey()), "n"));
  auto r = SignClientCsr(mixed, csr, "n", 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("does not match"), std::string::npos) << r.error().message;
}

TEST(TlsPki, InvalidValidityPeriodsAreRejected) {
  for (int days : {0, -1, 1000000}) {
    auto ca = CreateCa("root", days);
    ASSERT_FALSE(ca.ok()) << days;
    EXPECT_EQ(ca.error().code, ErrorCode::kInvalidArgument);
  }
  CertAuthority ca = Must(CreateCa("root", 1));
  std::string csr = Must(MakeCsr(Must(GenerateKey()), "n"));
  EXPECT_FALSE(SignClientCsr(ca, csr, "n", 0).ok());
  EXPECT_FALSE(IssueServerCert(ca, Must(GenerateKey()), "b", {"b"}, -5).ok());
}

TEST(TlsPki, InvalidCommonNamesAreRejected) {
  CertAuthority ca = Must(CreateCa("root", 1));
  std::string key = Must(GenerateKey());
  std::string csr = Must(MakeCsr(key, "n"));
  const std::vector<std::string> bad = {"", std::string(65, 'x'), std::string("a\0b", 3)};
  for (const auto& cn : bad) {
    auto r = SignClientCsr(ca, csr, cn, 1);
    ASSERT_FALSE(r.ok()) << cn.size();
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_FALSE(MakeCsr(key, cn).ok());
    EXPECT_FALSE(CreateCa(cn, 1).ok());
  }
}

TEST(TlsPki, ServerCertCoversDnsAndIpSans) {
  CertAuthority ca = Must(CreateCa("root", 30));
  std::string key = Must(GenerateKey());
  std::string pem =
      Must(IssueServerCert(ca, key, "broker", {"broker.example", "127.0.0.1", "::1", "*.edge.example"}, 30));
  X509Ptr cert = ParseX509(pem);
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_check_host(cert.get(), "broker.example", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "a.edge.example", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "other.example", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "10.0.0.1", 0), 0);
  // An IP address must not have been added as a DNS name.
  EXPECT_EQ(X509_check_host(cert.get(), "127.0.0.1", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_SERVER, 0), 1);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_EQ(Must(CertCommonName(pem)), "broker");
  EXPECT_TRUE(VerifyCert(ca.cert_pem, pem).ok());
  PkeyPtr pkey = ParseKey(key);
  EXPECT_EQ(X509_check_private_key(cert.get(), pkey.get()), 1);
}

TEST(TlsPki, SanThatIsNeitherADnsNameNorAnIpIsRejected) {
  CertAuthority ca = Must(CreateCa("root", 30));
  std::string key = Must(GenerateKey());
  for (const std::string san : {"", "a b", "x,DNS:evil.example", "a*.example", "[::1]"}) {
    auto r = IssueServerCert(ca, key, "broker", {san}, 30);
    ASSERT_FALSE(r.ok()) << san;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(TlsPki, GarbageInputGivesErrorsNotCrashes) {
  Pki p = MakePki();
  std::string truncated = p.node_cert.substr(0, p.node_cert.size() / 2);
  std::string corrupted = p.node_cert;
  corrupted[100] = corrupted[100] == 'A' ? 'B' : 'A';
  const std::vector<std::string> garbage = {
      "",
      "not a pem at all",
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
      std::string("\0\0\0\xff", 4),
      truncated,
      std::string(1 << 20, 'A'),
  };
  std::string csr = Must(MakeCsr(p.node_key, "n"));
  auto check_certs = [&](const std::string& g) {
    EXPECT_FALSE(CertSha256(g).ok());
    EXPECT_FALSE(CertCommonName(g).ok());
    EXPECT_FALSE(CertNotAfterMs(g).ok());
    EXPECT_FALSE(VerifyCert(p.ca.cert_pem, g).ok());
    EXPECT_FALSE(VerifyCert(g, p.node_cert).ok());
    EXPECT_FALSE(SignClientCsr(CertAuthority{g, p.ca.key_pem}, csr, "n", 1).ok());
  };
  auto check_keys = [&](const std::string& g) {
    EXPECT_FALSE(IssueServerCert(p.ca, g, "b", {"b"}, 1).ok());
    EXPECT_FALSE(SignClientCsr(CertAuthority{p.ca.cert_pem, g}, csr, "n", 1).ok());
    auto r = MakeCsr(g, "n");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_FALSE(r.error().message.empty());
  };
  auto check_csrs = [&](const std::string& g) {
    auto r = SignClientCsr(p.ca, g, "n", 1);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  };
  for (const auto& g : garbage) {
    SCOPED_TRACE(g.substr(0, 40));
    check_certs(g);
    check_keys(g);
    check_csrs(g);
  }
  check_csrs(p.node_cert);   // a certificate where a CSR is expected
  check_certs(p.node_key);   // a key where a certificate is expected
  check_certs(csr);          // a CSR where a certificate is expected
  check_keys(p.node_cert);   // a certificate where a key is expected
  // A corrupted signature parses but does not verify.
  EXPECT_FALSE(VerifyCert(p.ca.cert_pem, corrupted).ok());
}

TEST(TlsPki, EncryptedPrivateKeyIsRejectedWithoutPrompting) {
  PkeyPtr key = ParseKey(Must(GenerateKey()));
  BioPtr bio(BIO_new(BIO_s_mem()));
  const char kPass[] = "secret";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(bio.get(), key.get(), EVP_aes_256_cbc(), kPass,
                                          sizeof(kPass) - 1, nullptr, nullptr),
            1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  auto r = MakeCsr(std::string(data, static_cast<size_t>(len)), "n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

TEST(TlsPki, OpenSslErrorsAreQuotedInMessages) {
  auto r = CertSha256("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cannot parse certificate PEM: error:"), std::string::npos)
      << r.error().message;
}

// ---------------------------------------------------------------------------
// Hashes, randomness, encodings

TEST(TlsHash, CertSha256IsStable32BytesOfTheDer) {
  Pki p = MakePki();
  std::string a = Must(CertSha256(p.node_cert));
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a, Must(CertSha256(p.node_cert)));
  EXPECT_EQ(a, Sha256(CertDer(p.node_cert)));
  EXPECT_NE(a, Must(CertSha256(p.ca.cert_pem)));
}

TEST(TlsHash, Sha256MatchesKnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256("abc").size(), 32u);
}

TEST(TlsRandom, RandomBytesHaveTheRequestedLengthAndDiffer) {
  EXPECT_EQ(RandomBytes(0).size(), 0u);
  EXPECT_EQ(RandomBytes(1).size(), 1u);
  std::string a = RandomBytes(32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, RandomBytes(32));
}

TEST(TlsEncoding, HexRoundTripsEveryByteValue) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  std::string hex = HexEncode(all);
  EXPECT_EQ(hex.substr(0, 8), "00010203");
  EXPECT_EQ(hex.substr(hex.size() - 4), "feff");
  EXPECT_EQ(Must(HexDecode(hex)), all);
  EXPECT_EQ(Must(HexDecode("DEADbeef")), "\xde\xad\xbe\xef");
  EXPECT_EQ(Must(HexDecode("")), "");
}

TEST(TlsEncoding, HexDecodeRejectsBadInput) {
  for (const char* bad : {"0", "abc", "zz", "0g", " 00", "0x00"}) {
    auto r = HexDecode(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(TlsEncoding, Base64UrlMatchesRfc4648VectorsWithoutPadding) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},
      {"foo", "Zm9v"},    {"foob", "Zm9vYg"},   {"fooba", "Zm9vYmE"},
      {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"},
  };
  for (const auto& [plain, encoded] : cases) {
    EXPECT_EQ(Base64UrlEncode(plain), encoded);
    EXPECT_EQ(Must(Base64UrlDecode(encoded)), plain);
  }
}

TEST(TlsEncoding, Base64UrlRoundTripsRandomData) {
  for (size_t n = 0; n < 70; ++n) {
    std::string data = RandomBytes(n);
    EXPECT_EQ(Must(Base64UrlDecode(Base64UrlEncode(data))), data) << n;
  }
}

TEST(TlsEncoding, Base64UrlDecodeRejectsBadInput) {
  // Padding, the non-URL alphabet, impossible lengths and non-canonical tails.
  for (const char* bad : {"Zg==", "Zg=", "Z", "Zm9vY", "Zm9v!", "+/8", "a b", "Zh", "Zm9"}) {
    auto r = Base64UrlDecode(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(TlsEquals, SecureEqualsComparesContentAndLength) {
  EXPECT_TRUE(SecureEquals("", ""));
  EXPECT_TRUE(SecureEquals("abc", "abc"));
  EXPECT_FALSE(SecureEquals("abc", "abd"));
  EXPECT_FALSE(SecureEquals("abc", "abcd"));
  EXPECT_FALSE(SecureEquals("", "a"));
}

// ---------------------------------------------------------------------------
// FetchPinnedCa against a real TLS server in this process

// Listens on 127.0.0.1 with an ephemeral port and completes TLS handshakes
// presenting `cert_pem` followed by `extra_chain`, until destroyed.
struct TestTlsServerOptions {
  int max_version = 0;  // 0: highest supported
  bool require_client_cert = false;
};

class TestTlsServer {
 public:
  using Options = TestTlsServerOptions;

  TestTlsServer(const std::string& cert_pem, const std::string& key_pem,
                const std::vector<std::string>& extra_chain, Options options = {}) {
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    EXPECT_TRUE(ctx_);
    SSL_CTX_set_num_tickets(ctx_.get(), 0);
    if (options.max_version != 0) SSL_CTX_set_max_proto_version(ctx_.get(), options.max_version);
    X509Ptr cert = ParseX509(cert_pem);
    PkeyPtr key = ParseKey(key_pem);
    EXPECT_EQ(SSL_CTX_use_certificate(ctx_.get(), cert.get()), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx_.get(), key.get()), 1);
    for (const auto& pem : extra_chain) {
      X509Ptr extra = ParseX509(pem);
      EXPECT_EQ(SSL_CTX_add_extra_chain_cert(ctx_.get(), extra.get()), 1);
      (void)extra.release();  // owned by ctx_ now
    }
    if (options.require_client_cert) {
      SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    SSL_CTX_set_tlsext_servername_callback(ctx_.get(), &TestTlsServer::OnServerName);
    SSL_CTX_set_tlsext_servername_arg(ctx_.get(), this);

    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listen_fd_, 8), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    EXPECT_EQ(::pipe(wake_), 0);
    thread_ = std::thread([this] { Serve(); });
  }

  ~TestTlsServer() {
    char b = 0;
    (void)!::write(wake_[1], &b, 1);
    thread_.join();
    ::close(wake_[0]);
    ::close(wake_[1]);
    ::close(listen_fd_);
  }

  uint16_t port() const { return port_; }

  std::string last_server_name() {
    std::lock_guard<std::mutex> lock(mu_);
    return server_name_;
  }

 private:
  static int OnServerName(SSL* ssl, int*, void* arg) {
    auto* self = static_cast<TestTlsServer*>(arg);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    std::lock_guard<std::mutex> lock(self->mu_);
    self->server_name_ = name ? name : "";
    return SSL_TLSEXT_ERR_OK;
  }

  void Serve() {
    for (;;) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) continue;
      if (fds[1].revents != 0) return;
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      timeval tv{5, 0};  // never wedge the test on a broken client
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      SslPtr ssl(SSL_new(ctx_.get()));
      SSL_set_fd(ssl.get(), fd);
      if (SSL_accept(ssl.get()) == 1) SSL_shutdown(ssl.get());
      ssl.reset();
      ::close(fd);
    }
  }

  SslCtxPtr ctx_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::string server_name_;
};

struct BrokerPki {
  CertAuthority ca;
  std::string server_key;
  std::string server_cert;
  std::string ca_pin;
};

BrokerPki MakeBrokerPki() {
  BrokerPki b;
  b.ca = Must(CreateCa("cairn-ca", 30));
  b.server_key = Must(GenerateKey());
  b.server_cert = Must(IssueServerCert(b.ca, b.server_key, "broker", {"127.0.0.1", "localhost"}, 30));
  b.ca_pin = Must(CertSha256(b.ca.cert_pem));
  return b;
}

TEST(TlsFetchPinnedCa, ReturnsTheCaWhosePinMatches) {
  BrokerPki b = MakeBrokerPki();
  TestTlsServer server(b.server_cert, b.server_key, {b.ca.cert_pem});
  std::string ca = Must(FetchPinnedCa("127.0.0.1", server.port(), b.ca_pin, 5000));
  EXPECT_EQ(CertDer(ca), CertDer(b.ca.cert_pem));
  EXPECT_EQ(Must(CertSha256(ca)), b.ca_pin);
}

TEST(TlsFetchPinnedCa, CanPinTheServerCertificateItself) {
  BrokerPki b = MakeBrokerPki();
  TestTlsServer server(b.server_cert, b.server_key, {b.ca.cert_pem});
  std::string got =
      Must(FetchPinnedCa("127.0.0.1", server.port(), Must(CertSha256(b.server_cert)), 5000));
  EXPECT_EQ(CertDer(got), CertDer(b.server_cert));
}

TEST(TlsFetchPinnedCa, SendsTheHostNameAsSniAndResolvesNames) {
  BrokerPki b = MakeBrokerPki();
  TestTlsServer server(b.server_cert, b.server_key, {b.ca.cert_pem});
  std::string ca = Must(FetchPinnedCa("localhost", server.port(), b.ca_pin, 5000));
  EXPECT_EQ(CertDer(ca), CertDer(b.ca.cert_pem));
  EXPECT_EQ(server.last_server_name(), "localhost");
}

class TlsFetchPinnedCaFromClientAuthBroker : public ::testing::TestWithParam<int> {};

// A broker listener that demands a client certificate still shows its chain
// before it rejects us; the pin is what matters, not the finished handshake.
TEST_P(TlsFetchPinnedCaFromClientAuthBroker, StillFindsThePinnedCa) {
  BrokerPki b = MakeBrokerPki();
  TestTlsServer server(b.server_cert, b.server_key, {b.ca.cert_pem},
                       {.max_version = GetParam(), .require_client_cert = true});
  std::string ca = Must(FetchPinnedCa("127.0.0.1", server.port(), b.ca_pin, 5000));
  EXPECT_EQ(CertDer(ca), CertDer(b.ca.cert_pem));
}

INSTANTIATE_TEST_SUITE_P(TlsVersions, TlsFetchPinnedCaFromClientAuthBroker,
                         ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION));

TEST(TlsFetchPinnedCa, WrongPinFailsWithAClearError) {
  BrokerPki b = MakeBrokerPki();
  TestTlsServer server(b.server_cert, b.server_key, {b.ca.cert_pem});
  auto r = FetchPinnedCa("127.0.0.1", server.port(), Sha256("some other CA"), 5000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "no certificate in the chain sent by 127.0.0.1:" +
                                   std::to_string(server.port()) + " matches the token's CA pin");
}

TEST(TlsFetchPinnedCa, ServerThatOmitsTheCaFromItsChainFails) {
  BrokerPki b = MakeBrokerPki();
  TestTlsServer server(b.server_cert, b.server_key, {});
  auto r = FetchPinnedCa("127.0.0.1", server.port(), b.ca_pin, 5000);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("matches the token's CA pin"), std::string::npos)
      << r.error().message;
}

TEST(TlsFetchPinnedCa, ImpostorWithTheSameCaNameFails) {
  BrokerPki ours = MakeBrokerPki();
  BrokerPki impostor = MakeBrokerPki();
  TestTlsServer server(impostor.server_cert, impostor.server_key, {impostor.ca.cert_pem});
  EXPECT_FALSE(FetchPinnedCa("127.0.0.1", server.port(), ours.ca_pin, 5000).ok());
}

TEST(TlsFetchPinnedCa, ClosedPortFailsWithinTheTimeout) {
  // A bound socket that does not listen: connecting to it is refused.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);

  const int timeout_ms = 3000;
  auto start = std::chrono::steady_clock::now();
  auto r = FetchPinnedCa("127.0.0.1", ntohs(addr.sin_port), Sha256("pin"), timeout_ms);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ::close(fd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find("refused"), std::string::npos) << r.error().message;
  EXPECT_LT(elapsed, std::chrono::milliseconds(timeout_ms));
}

TEST(TlsFetchPinnedCa, SilentServerTimesOut) {
  // Listens but never speaks TLS: the handshake must give up at the deadline.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);

  const int timeout_ms = 200;
  auto start = std::chrono::steady_clock::now();
  auto r = FetchPinnedCa("127.0.0.1", ntohs(addr.sin_port), Sha256("pin"), timeout_ms);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ::close(fd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_GE(elapsed, std::chrono::milliseconds(timeout_ms - 10));
  EXPECT_LT(elapsed, std::chrono::milliseconds(timeout_ms + 2000));
}

TEST(TlsFetchPinnedCa, RejectsBadArgumentsBeforeConnecting) {
  EXPECT_EQ(FetchPinnedCa("127.0.0.1", 1, "short", 1000).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(FetchPinnedCa("", 1, Sha256("x"), 1000).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(FetchPinnedCa("127.0.0.1", 0, Sha256("x"), 1000).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(FetchPinnedCa("127.0.0.1", 1, Sha256("x"), 0).error().code,
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::tls
