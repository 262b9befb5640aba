// PKI and crypto helpers over OpenSSL 3. See cairn/common/tls.h.
//
// Conventions in this file:
// - Every OpenSSL object lives in a unique_ptr with its matching free function.
// - Every public function starts with an empty OpenSSL error queue and turns
//   any OpenSSL failure into an Error that quotes the first queued error.
// - PEM and CSR input is untrusted: size-limited, parsed without ever prompting
//   for a passphrase, and rejected with kInvalidArgument when malformed.
#include "cairn/common/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <utility>

namespace {

// OpenSSL registers an atexit handler that frees its global state. Paho's
// network threads can still be ending while the process exits, and their
// thread-local OpenSSL destructors then run on freed state (a crash at exit,
// seen in cairnctl under ASan). Initialising OpenSSL first, without that
// handler, leaves the state to the kernel at exit. Runs before main() in
// every binary that links this file (all that use TLS or Paho through Cairn).
__attribute__((constructor(101))) void InitOpenSslWithoutAtExit() {
  OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr);
}

}  // namespace

namespace cairn::tls {
namespace {

// ---------------------------------------------------------------------------
// RAII

template <auto Fn>
struct Free {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};

using PkeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Free<X509_free>>;
using ReqPtr = std::unique_ptr<X509_REQ, Free<X509_REQ_free>>;
using NamePtr = std::unique_ptr<X509_NAME, Free<X509_NAME_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Free<X509_EXTENSION_free>>;
using BioPtr = std::unique_ptr<BIO, Free<BIO_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Free<BN_free>>;
using Asn1IntPtr = std::unique_ptr<ASN1_INTEGER, Free<ASN1_INTEGER_free>>;
using GenNamesPtr = std::unique_ptr<GENERAL_NAMES, Free<GENERAL_NAMES_free>>;
using GenNamePtr = std::unique_ptr<GENERAL_NAME, Free<GENERAL_NAME_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Free<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Free<X509_STORE_CTX_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Free<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Free<SSL_free>>;

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// ---------------------------------------------------------------------------
// Limits and constants

constexpr size_t kMaxPemBytes = 64 * 1024;  // one certificate/key/CSR is a few KiB
constexpr int kMaxDays = 36500;
constexpr long kClockSkewSeconds = 5 * 60;
constexpr int kSerialBytes = 16;
constexpr size_t kSha256Bytes = 32;

// ---------------------------------------------------------------------------
// Errors

// The first error on this thread's OpenSSL queue, then clears the queue.
std::string TakeOpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no OpenSSL error detail";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

Error SslError(ErrorCode code, const std::string& what) {
  return Error{code, what + ": " + TakeOpenSslError()};
}

Error Internal(const std::string& what) { return SslError(ErrorCode::kInternal, what); }

// Clears the OpenSSL error queue on entry and exit so that errors never leak
// from one call into another on the same thread.
class ErrorQueueScope {
 public:
  ErrorQueueScope() { ERR_clear_error(); }
  ~ErrorQueueScope() { ERR_clear_error(); }
  ErrorQueueScope(const ErrorQueueScope&) = delete;
  ErrorQueueScope& operator=(const ErrorQueueScope&) = delete;
};

// Never prompts on a terminal for an encrypted PEM: fails instead.
int NoPassphrase(char*, int, int, void*) { return -1; }

void OpenSslFree(void* p) { OPENSSL_free(p); }

// Fatal: returning predictable bytes from a CSPRNG would be worse than dying.
[[noreturn]] void DieOnCryptoFailure(const char* what) {
  std::fprintf(stderr, "cairn: fatal: %s: %s\n", what, TakeOpenSslError().c_str());
  std::abort();
}

// ---------------------------------------------------------------------------
// PEM in / out

Result<BioPtr> ReadBio(const std::string& pem, const char* what) {
  if (pem.empty()) return Error::InvalidArgument(std::string(what) + " is empty");
  if (pem.size() > kMaxPemBytes) {
    return Error::InvalidArgument(std::string(what) + " is too large (" + std::to_string(pem.size()) +
                                  " bytes, limit " + std::to_string(kMaxPemBytes) + ")");
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Internal("cannot allocate BIO");
  return bio;
}

Result<PkeyPtr> ParseKey(const std::string& pem) {
  auto bio = ReadBio(pem, "private key PEM");
  if (!bio.ok()) return bio.error();
  PkeyPtr key(PEM_read_bio_PrivateKey(bio->get(), nullptr, NoPassphrase, nullptr));
  if (!key) return SslError(ErrorCode::kInvalidArgument, "cannot parse private key PEM");
  return key;
}

Result<X509Ptr> ParseCert(const std::string& pem) {
  auto bio = ReadBio(pem, "certificate PEM");
  if (!bio.ok()) return bio.error();
  X509Ptr cert(PEM_read_bio_X509(bio->get(), nullptr, NoPassphrase, nullptr));
  if (!cert) return SslError(ErrorCode::kInvalidArgument, "cannot parse certificate PEM");
  return cert;
}

Result<ReqPtr> ParseCsr(const std::string& pem) {
  auto bio = ReadBio(pem, "CSR PEM");
  if (!bio.ok()) return bio.error();
  ReqPtr req(PEM_read_bio_X509_REQ(bio->get(), nullptr, NoPassphrase, nullptr));
  if (!req) return SslError(ErrorCode::kInvalidArgument, "cannot parse CSR PEM");
  return req;
}

Result<std::string> BioToString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len < 0 || (len > 0 && data == nullptr)) return Internal("cannot read memory BIO");
  return std::string(data, static_cast<size_t>(len));
}

Result<std::string> CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return Internal("cannot allocate BIO");
  if (PEM_write_bio_X509(bio.get(), cert) != 1) return Internal("cannot encode certificate as PEM");
  return BioToString(bio.get());
}

// SHA-256 of the DER encoding of `cert`.
Result<std::string> CertDigest(const X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1 || len != kSha256Bytes) {
    return Internal("cannot hash certificate");
  }
  return std::string(reinterpret_cast<const char*>(md), len);
}

// ---------------------------------------------------------------------------
// Certificate building blocks

Status CheckDays(int days) {
  if (days < 1 || days > kMaxDays) {
    return Error::InvalidArgument("validity must be between 1 and " + std::to_string(kMaxDays) +
                                  " days, got " + std::to_string(days));
  }
  return OkStatus();
}

Result<NamePtr> MakeName(const std::string& common_name) {
  if (common_name.empty()) return Error::InvalidArgument("common name is empty");
  if (common_name.find('\0') != std::string::npos) {
    return Error::InvalidArgument("common name contains a NUL byte");
  }
  if (common_name.size() > INT_MAX) return Error::InvalidArgument("common name is too long");
  NamePtr name(X509_NAME_new());
  if (!name) return Internal("cannot allocate X509_NAME");
  if (X509_NAME_add_entry_by_NID(name.get(), NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.data()),
                                 static_cast<int>(common_name.size()), -1, 0) != 1) {
    return SslError(ErrorCode::kInvalidArgument, "invalid common name \"" + common_name + "\"");
  }
  return name;
}

// The digest to sign with: SHA-256, except for keys that hash internally.
const EVP_MD* SigningDigest(const EVP_PKEY* key) {
  int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) return nullptr;
  return EVP_sha256();
}

// A positive, non-zero serial of kSerialBytes random bytes.
Status SetRandomSerial(X509* cert) {
  unsigned char bytes[kSerialBytes];
  do {
    if (RAND_bytes(bytes, sizeof(bytes)) != 1) return Internal("cannot generate serial number");
    bytes[0] &= 0x7f;  // DER INTEGER stays positive
  } while (std::all_of(std::begin(bytes), std::end(bytes), [](unsigned char b) { return b == 0; }));
  BnPtr bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (!bn) return Internal("cannot build serial number");
  Asn1IntPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial) return Internal("cannot build serial number");
  if (X509_set_serialNumber(cert, serial.get()) != 1) return Internal("cannot set serial number");
  return OkStatus();
}

// Sets version, serial, subject, issuer, public key and validity
// [now - clock skew, now + days].
Status InitCert(X509* cert, const X509_NAME* subject, const X509_NAME* issuer, EVP_PKEY* pubkey,
                int days) {
  if (X509_set_version(cert, X509_VERSION_3) != 1) return Internal("cannot set certificate version");
  if (auto s = SetRandomSerial(cert); !s.ok()) return s;
  if (X509_set_subject_name(cert, subject) != 1) return Internal("cannot set subject");
  if (X509_set_issuer_name(cert, issuer) != 1) return Internal("cannot set issuer");
  if (X509_set_pubkey(cert, pubkey) != 1) return Internal("cannot set public key");
  if (X509_time_adj_ex(X509_getm_notBefore(cert), 0, -kClockSkewSeconds, nullptr) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, nullptr) == nullptr) {
    return Internal("cannot set validity period");
  }
  return OkStatus();
}

// Adds an extension given in OpenSSL config syntax. `value` is always a
// constant from this file, never caller input.
Status AddExt(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (!ext) return Internal(std::string("cannot build extension ") + OBJ_nid2sn(nid) + "=" + value);
  if (X509_add_ext(cert, ext.get(), -1) != 1) {
    return Internal(std::string("cannot add extension ") + OBJ_nid2sn(nid));
  }
  return OkStatus();
}

Status AddExts(X509* cert, X509* issuer,
               std::initializer_list<std::pair<int, const char*>> exts) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  for (const auto& [nid, value] : exts) {
    if (auto s = AddExt(cert, &ctx, nid, value); !s.ok()) return s;
  }
  return OkStatus();
}

// A leaf never outlives the CA that signed it.
Status ClampToIssuer(X509* cert, const X509* issuer) {
  if (ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(issuer)) > 0 &&
      X509_set1_notAfter(cert, X509_get0_notAfter(issuer)) != 1) {
    return Internal("cannot set validity period");
  }
  return OkStatus();
}

Result<std::string> SignAndEncode(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, SigningDigest(key)) <= 0) return Internal("cannot sign certificate");
  return CertToPem(cert);
}

struct LoadedCa {
  X509Ptr cert;
  PkeyPtr key;
};

Result<LoadedCa> LoadCa(const CertAuthority& ca) {
  auto cert = ParseCert(ca.cert_pem);
  if (!cert.ok()) return Error::InvalidArgument("CA certificate: " + cert.error().message);
  auto key = ParseKey(ca.key_pem);
  if (!key.ok()) return Error::InvalidArgument("CA key: " + key.error().message);
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    return SslError(ErrorCode::kInvalidArgument, "CA key does not match the CA certificate");
  }
  return LoadedCa{std::move(cert).value(), std::move(key).value()};
}

// Public keys we are willing to certify: NIST EC curves and RSA >= 2048 bits.
Status CheckCertifiableKey(const EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
      char group[64] = {0};
      if (EVP_PKEY_get_group_name(key, group, sizeof(group), nullptr) != 1) {
        return SslError(ErrorCode::kInvalidArgument, "cannot read the EC curve of the key");
      }
      int nid = OBJ_sn2nid(group);
      if (nid == NID_undef) nid = EC_curve_nist2nid(group);
      if (nid == NID_X9_62_prime256v1 || nid == NID_secp384r1 || nid == NID_secp521r1) {
        return OkStatus();
      }
      return Error::InvalidArgument(std::string("unsupported EC curve ") + group +
                                    " (use P-256, P-384 or P-521)");
    }
    case EVP_PKEY_RSA:
      if (EVP_PKEY_get_bits(key) >= 2048) return OkStatus();
      return Error::InvalidArgument("RSA key of " + std::to_string(EVP_PKEY_get_bits(key)) +
                                    " bits is too weak (minimum 2048)");
    default:
      return Error::InvalidArgument("unsupported key type (use EC P-256)");
  }
}

// DNS names we accept as subjectAltName: LDH labels, optional leading "*.".
bool IsValidDnsName(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '*';
    if (!ok) return false;
  }
  auto star = name.find('*');
  if (star != std::string::npos && (star != 0 || name.size() < 3 || name[1] != '.' ||
                                    name.find('*', 1) != std::string::npos)) {
    return false;
  }
  return true;
}

Result<GenNamePtr> MakeSanEntry(const std::string& san) {
  unsigned char ip[16];
  int ip_len = 0;
  if (inet_pton(AF_INET, san.c_str(), ip) == 1) {
    ip_len = 4;
  } else if (inet_pton(AF_INET6, san.c_str(), ip) == 1) {
    ip_len = 16;
  }
  GenNamePtr gen(GENERAL_NAME_new());
  if (!gen) return Internal("cannot allocate subjectAltName entry");
  if (ip_len > 0) {
    ASN1_OCTET_STRING* octets = ASN1_OCTET_STRING_new();
    if (!octets || ASN1_OCTET_STRING_set(octets, ip, ip_len) != 1) {
      ASN1_OCTET_STRING_free(octets);
      return Internal("cannot build IP subjectAltName");
    }
    GENERAL_NAME_set0_value(gen.get(), GEN_IPADD, octets);
    return gen;
  }
  if (san.find('\0') != std::string::npos || !IsValidDnsName(san)) {
    return Error::InvalidArgument("invalid subjectAltName \"" + san +
                                  "\": neither an IP address nor a DNS name");
  }
  ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
  if (!dns || ASN1_STRING_set(dns, san.data(), static_cast<int>(san.size())) != 1) {
    ASN1_IA5STRING_free(dns);
    return Internal("cannot build DNS subjectAltName");
  }
  GENERAL_NAME_set0_value(gen.get(), GEN_DNS, dns);
  return gen;
}

Status AddSans(X509* cert, const std::vector<std::string>& sans) {
  if (sans.empty()) return OkStatus();
  GenNamesPtr names(GENERAL_NAMES_new());
  if (!names) return Internal("cannot allocate subjectAltName");
  for (const auto& san : sans) {
    auto gen = MakeSanEntry(san);
    if (!gen.ok()) return gen.error();
    if (sk_GENERAL_NAME_push(names.get(), gen->get()) <= 0) {
      return Internal("cannot build subjectAltName");
    }
    gen->release();  // now owned by `names`
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return Internal("cannot add subjectAltName");
  }
  return OkStatus();
}

// ---------------------------------------------------------------------------
// Sockets for FetchPinnedCa

using Clock = std::chrono::steady_clock;

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, INT_MAX));
}

// Waits for `events` on `fd` until `deadline`. Returns revents, 0 on timeout.
Result<short> WaitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    int left = RemainingMs(deadline);
    if (left == 0) return static_cast<short>(0);
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, left);
    if (r > 0) return p.revents;
    if (r == 0) return static_cast<short>(0);
    if (errno != EINTR) return Error::Internal(std::string("poll failed: ") + std::strerror(errno));
  }
}

// Non-blocking connect to one address, bounded by `deadline`.
Result<Fd> ConnectOne(const addrinfo& ai, Clock::time_point deadline, const std::string& where) {
  Fd fd(::socket(ai.ai_family, ai.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai.ai_protocol));
  if (fd.get() < 0) {
    return Error::Unavailable("cannot create socket for " + where + ": " + std::strerror(errno));
  }
  if (::connect(fd.get(), ai.ai_addr, ai.ai_addrlen) == 0) return fd;
  if (errno != EINPROGRESS) {
    return Error::Unavailable("cannot connect to " + where + ": " + std::strerror(errno));
  }
  auto ready = WaitFor(fd.get(), POLLOUT, deadline);
  if (!ready.ok()) return ready.error();
  if (*ready == 0) return Error::DeadlineExceeded("timed out connecting to " + where);
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) return Error::Unavailable("cannot connect to " + where + ": " + std::strerror(err));
  return fd;
}

Result<Fd> Connect(const std::string& host, uint16_t port, Clock::time_point deadline,
                   const std::string& where) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
  addrinfo* res = nullptr;
  // Note: name resolution itself is not bounded by the timeout.
  int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) {
    return Error::Unavailable("cannot resolve " + host + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, Free<freeaddrinfo>> addrs(res);
  Error last = Error::Unavailable("no address found for " + host);
  for (const addrinfo* ai = addrs.get(); ai != nullptr; ai = ai->ai_next) {
    if (RemainingMs(deadline) == 0) return Error::DeadlineExceeded("timed out connecting to " + where);
    auto fd = ConnectOne(*ai, deadline, where);
    if (fd.ok()) return fd;
    last = fd.error();
  }
  return last;
}

// Drives a client handshake over a non-blocking socket through memory BIOs,
// so that timeouts are exact and a peer that hangs up never raises SIGPIPE.
class HandshakeDriver {
 public:
  HandshakeDriver(int fd, SSL* ssl, BIO* rbio, BIO* wbio, Clock::time_point deadline,
                  std::string where)
      : fd_(fd), ssl_(ssl), rbio_(rbio), wbio_(wbio), deadline_(deadline), where_(std::move(where)) {}

  Status Run() {
    for (;;) {
      ERR_clear_error();
      int r = SSL_connect(ssl_);
      if (r == 1) return Flush();
      int e = SSL_get_error(ssl_, r);
      if (e != SSL_ERROR_WANT_READ) {
        Error err = SslError(ErrorCode::kUnavailable, "TLS handshake with " + where_ + " failed");
        (void)Flush();  // best effort: lets the server see our alert
        return err;
      }
      if (auto s = Flush(); !s.ok()) return s;
      if (auto s = ReadMore(); !s.ok()) return s;
    }
  }

  // Sends close_notify, best effort.
  void Close() {
    ERR_clear_error();
    (void)SSL_shutdown(ssl_);
    char buf[512];
    int n;
    while ((n = BIO_read(wbio_, buf, sizeof(buf))) > 0) {
      (void)::send(fd_, buf, static_cast<size_t>(n), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    ERR_clear_error();
  }

 private:
  Status Flush() {
    char buf[16 * 1024];
    for (;;) {
      int n = BIO_read(wbio_, buf, sizeof(buf));
      if (n <= 0) return OkStatus();
      size_t off = 0;
      while (off < static_cast<size_t>(n)) {
        ssize_t w = ::send(fd_, buf + off, static_cast<size_t>(n) - off, MSG_NOSIGNAL);
        if (w > 0) {
          off += static_cast<size_t>(w);
          continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          auto ready = WaitFor(fd_, POLLOUT, deadline_);
          if (!ready.ok()) return ready.error();
          if (*ready == 0) return TimedOut();
          continue;
        }
        return Error::Unavailable("cannot send to " + where_ + ": " + std::strerror(errno));
      }
    }
  }

  Status ReadMore() {
    char buf[16 * 1024];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n > 0) {
        if (BIO_write(rbio_, buf, static_cast<int>(n)) != n) return Internal("cannot buffer TLS data");
        return OkStatus();
      }
      if (n == 0) return Error::Unavailable(where_ + " closed the connection during the TLS handshake");
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        return Error::Unavailable("cannot receive from " + where_ + ": " + std::strerror(errno));
      }
      auto ready = WaitFor(fd_, POLLIN, deadline_);
      if (!ready.ok()) return ready.error();
      if (*ready == 0) return TimedOut();
    }
  }

  Error TimedOut() const {
    return Error::DeadlineExceeded("timed out during the TLS handshake with " + where_);
  }

  int fd_;
  SSL* ssl_;
  BIO* rbio_;
  BIO* wbio_;
  Clock::time_point deadline_;
  std::string where_;
};

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

// ---------------------------------------------------------------------------
// Keys, CSRs and certificates

Result<std::string> GenerateKey() {
  ErrorQueueScope scope;
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Internal("cannot generate EC P-256 key");
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return Internal("cannot allocate BIO");
  // PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY").
  if (PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Internal("cannot encode private key as PEM");
  }
  return BioToString(bio.get());
}

Result<std::string> MakeCsr(const std::string& key_pem, const std::string& common_name) {
  ErrorQueueScope scope;
  auto key = ParseKey(key_pem);
  if (!key.ok()) return key.error();
  auto name = MakeName(common_name);
  if (!name.ok()) return name.error();
  ReqPtr req(X509_REQ_new());
  if (!req) return Internal("cannot allocate CSR");
  if (X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_subject_name(req.get(), name->get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key->get()) != 1) {
    return Internal("cannot build CSR");
  }
  if (X509_REQ_sign(req.get(), key->get(), SigningDigest(key->get())) <= 0) {
    return Internal("cannot sign CSR");
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return Internal("cannot allocate BIO");
  if (PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) return Internal("cannot encode CSR as PEM");
  return BioToString(bio.get());
}

Result<CertAuthority> CreateCa(const std::string& common_name, int days) {
  ErrorQueueScope scope;
  if (auto s = CheckDays(days); !s.ok()) return s.error();
  auto name = MakeName(common_name);
  if (!name.ok()) return name.error();
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Internal("cannot generate CA key");
  X509Ptr cert(X509_new());
  if (!cert) return Internal("cannot allocate certificate");
  if (auto s = InitCert(cert.get(), name->get(), name->get(), key.get(), days); !s.ok()) {
    return s.error();
  }
  if (auto s = AddExts(cert.get(), cert.get(),
                       {{NID_basic_constraints, "critical,CA:TRUE"},
                        {NID_key_usage, "critical,keyCertSign,cRLSign"},
                        {NID_subject_key_identifier, "hash"},
                        {NID_authority_key_identifier, "keyid:always"}});
      !s.ok()) {
    return s.error();
  }
  auto cert_pem = SignAndEncode(cert.get(), key.get());
  if (!cert_pem.ok()) return cert_pem.error();
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return Internal("cannot allocate BIO");
  if (PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Internal("cannot encode CA key as PEM");
  }
  auto key_pem = BioToString(bio.get());
  if (!key_pem.ok()) return key_pem.error();
  return CertAuthority{std::move(cert_pem).value(), std::move(key_pem).value()};
}

Result<std::string> SignClientCsr(const CertAuthority& ca, const std::string& csr_pem,
                                  const std::string& common_name, int days) {
  ErrorQueueScope scope;
  if (auto s = CheckDays(days); !s.ok()) return s.error();
  auto loaded = LoadCa(ca);
  if (!loaded.ok()) return loaded.error();
  auto req = ParseCsr(csr_pem);
  if (!req.ok()) return req.error();
  EVP_PKEY* pubkey = X509_REQ_get0_pubkey(req->get());
  if (pubkey == nullptr) return SslError(ErrorCode::kInvalidArgument, "CSR has no usable public key");
  if (X509_REQ_verify(req->get(), pubkey) != 1) {
    return SslError(ErrorCode::kInvalidArgument, "CSR signature does not verify");
  }
  if (auto s = CheckCertifiableKey(pubkey); !s.ok()) return Error::InvalidArgument("CSR: " + s.error().message);
  auto name = MakeName(common_name);
  if (!name.ok()) return name.error();

  X509* ca_cert = loaded->cert.get();
  X509Ptr cert(X509_new());
  if (!cert) return Internal("cannot allocate certificate");
  if (auto s = InitCert(cert.get(), name->get(), X509_get_subject_name(ca_cert), pubkey, days);
      !s.ok()) {
    return s.error();
  }
  if (auto s = ClampToIssuer(cert.get(), ca_cert); !s.ok()) return s.error();
  if (auto s = AddExts(cert.get(), ca_cert,
                       {{NID_basic_constraints, "critical,CA:FALSE"},
                        {NID_key_usage, "critical,digitalSignature"},
                        {NID_ext_key_usage, "clientAuth"},
                        {NID_subject_key_identifier, "hash"},
                        {NID_authority_key_identifier, "keyid:always"}});
      !s.ok()) {
    return s.error();
  }
  return SignAndEncode(cert.get(), loaded->key.get());
}

Result<std::string> IssueServerCert(const CertAuthority& ca, const std::string& key_pem,
                                    const std::string& common_name,
                                    const std::vector<std::string>& sans, int days) {
  ErrorQueueScope scope;
  if (auto s = CheckDays(days); !s.ok()) return s.error();
  auto loaded = LoadCa(ca);
  if (!loaded.ok()) return loaded.error();
  auto key = ParseKey(key_pem);
  if (!key.ok()) return key.error();
  if (auto s = CheckCertifiableKey(key->get()); !s.ok()) return s.error();
  auto name = MakeName(common_name);
  if (!name.ok()) return name.error();

  X509* ca_cert = loaded->cert.get();
  X509Ptr cert(X509_new());
  if (!cert) return Internal("cannot allocate certificate");
  if (auto s = InitCert(cert.get(), name->get(), X509_get_subject_name(ca_cert), key->get(), days);
      !s.ok()) {
    return s.error();
  }
  if (auto s = ClampToIssuer(cert.get(), ca_cert); !s.ok()) return s.error();
  // RSA key exchange (TLS 1.2 only) needs keyEncipherment; EC keys only sign.
  const char* key_usage = EVP_PKEY_get_base_id(key->get()) == EVP_PKEY_RSA
                              ? "critical,digitalSignature,keyEncipherment"
                              : "critical,digitalSignature";
  if (auto s = AddExts(cert.get(), ca_cert,
                       {{NID_basic_constraints, "critical,CA:FALSE"},
                        {NID_key_usage, key_usage},
                        {NID_ext_key_usage, "serverAuth,clientAuth"},
                        {NID_subject_key_identifier, "hash"},
                        {NID_authority_key_identifier, "keyid:always"}});
      !s.ok()) {
    return s.error();
  }
  if (auto s = AddSans(cert.get(), sans); !s.ok()) return s.error();
  return SignAndEncode(cert.get(), loaded->key.get());
}

Result<std::string> CertSha256(const std::string& cert_pem) {
  ErrorQueueScope scope;
  auto cert = ParseCert(cert_pem);
  if (!cert.ok()) return cert.error();
  return CertDigest(cert->get());
}

Result<std::string> CsrCommonName(const std::string& csr_pem) {
  BIO* bio = BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size()));
  if (bio == nullptr) return Error::Internal("out of memory");
  X509_REQ* req = PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (req == nullptr) return Error::InvalidArgument("not a PEM certificate request");
  std::string cn;
  X509_NAME* name = X509_REQ_get_subject_name(req);
  int idx = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
  if (idx >= 0) {
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, data);
    if (len >= 0) cn.assign(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
    OPENSSL_free(utf8);
  }
  X509_REQ_free(req);
  if (cn.empty()) return Error::InvalidArgument("certificate request has no subject CN");
  return cn;
}

Result<std::string> CertCommonName(const std::string& cert_pem) {
  ErrorQueueScope scope;
  auto cert = ParseCert(cert_pem);
  if (!cert.ok()) return cert.error();
  const X509_NAME* subject = X509_get_subject_name(cert->get());
  int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (idx < 0) return Error::InvalidArgument("certificate subject has no common name");
  if (X509_NAME_get_index_by_NID(subject, NID_commonName, idx) >= 0) {
    return Error::InvalidArgument("certificate subject has more than one common name");
  }
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return SslError(ErrorCode::kInvalidArgument, "cannot decode certificate common name");
  std::unique_ptr<unsigned char, Free<OpenSslFree>> owned(utf8);
  std::string cn(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
  if (cn.find('\0') != std::string::npos) {
    return Error::InvalidArgument("certificate common name contains a NUL byte");
  }
  return cn;
}

Result<int64_t> CertNotAfterMs(const std::string& cert_pem) {
  ErrorQueueScope scope;
  auto cert = ParseCert(cert_pem);
  if (!cert.ok()) return cert.error();
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert->get()), &tm) != 1) {
    return SslError(ErrorCode::kInvalidArgument, "cannot read certificate notAfter");
  }
  time_t secs = ::timegm(&tm);
  return static_cast<int64_t>(secs) * 1000;
}

Status VerifyCert(const std::string& ca_cert_pem, const std::string& cert_pem) {
  ErrorQueueScope scope;
  auto ca = ParseCert(ca_cert_pem);
  if (!ca.ok()) return Error::InvalidArgument("CA certificate: " + ca.error().message);
  auto cert = ParseCert(cert_pem);
  if (!cert.ok()) return cert.error();
  StorePtr store(X509_STORE_new());
  if (!store) return Internal("cannot allocate X509_STORE");
  if (X509_STORE_add_cert(store.get(), ca->get()) != 1) return Internal("cannot add CA to trust store");
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx) return Internal("cannot allocate X509_STORE_CTX");
  if (X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), nullptr) != 1) {
    return Internal("cannot initialise certificate verification");
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    return Error::Unauthenticated(std::string("certificate does not verify against the CA: ") +
                                  X509_verify_cert_error_string(err));
  }
  return OkStatus();
}

// ---------------------------------------------------------------------------
// Trust on first use, checked against a pin

Result<std::string> FetchPinnedCa(const std::string& host, uint16_t port, const std::string& pin,
                                  int timeout_ms) {
  ErrorQueueScope scope;
  if (host.empty() || host.find('\0') != std::string::npos) {
    return Error::InvalidArgument("invalid host \"" + host + "\"");
  }
  if (port == 0) return Error::InvalidArgument("port must not be 0");
  if (pin.size() != kSha256Bytes) {
    return Error::InvalidArgument("CA pin must be a 32-byte SHA-256, got " +
                                  std::to_string(pin.size()) + " bytes");
  }
  if (timeout_ms <= 0) return Error::InvalidArgument("timeout must be positive");
  const std::string where = host + ":" + std::to_string(port);
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);

  auto fd = Connect(host, port, deadline, where);
  if (!fd.ok()) return fd.error();

  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return Internal("cannot create TLS context");
  // Nothing is trusted yet: the pin check below is what authenticates the CA.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1) {
    return Internal("cannot set minimum TLS version");
  }
  SslPtr ssl(SSL_new(ctx.get()));
  if (!ssl) return Internal("cannot create TLS session");
  // RFC 6066 forbids IP literals in SNI.
  if (!IsIpLiteral(host) && SSL_set_tlsext_host_name(ssl.get(), host.c_str()) != 1) {
    return SslError(ErrorCode::kInvalidArgument, "cannot use \"" + host + "\" as TLS server name");
  }
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  if (rbio == nullptr || wbio == nullptr) {
    BIO_free(rbio);
    BIO_free(wbio);
    return Internal("cannot allocate BIO");
  }
  SSL_set_bio(ssl.get(), rbio, wbio);  // `ssl` owns both from here
  SSL_set_connect_state(ssl.get());

  HandshakeDriver driver(fd->get(), ssl.get(), rbio, wbio, deadline, where);
  Status handshake = driver.Run();

  // The chain is kept even when the handshake fails later on (e.g. a TLS 1.2
  // broker that rejects us for not sending a client certificate): the pin
  // alone authenticates the certificate we pick, not the handshake.
  std::vector<const X509*> candidates;
  if (const X509* peer = SSL_get0_peer_certificate(ssl.get())) candidates.push_back(peer);
  if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl.get())) {
    for (int i = 0; i < sk_X509_num(chain); ++i) candidates.push_back(sk_X509_value(chain, i));
  }
  if (candidates.empty()) {
    if (!handshake.ok()) return handshake.error();
    return Error::Unauthenticated(where + " sent no certificate");
  }
  for (const X509* cand : candidates) {
    auto digest = CertDigest(cand);
    if (!digest.ok()) return digest.error();
    if (SecureEquals(*digest, pin)) {
      if (handshake.ok()) driver.Close();
      return CertToPem(const_cast<X509*>(cand));
    }
  }
  if (handshake.ok()) driver.Close();
  return Error::Unauthenticated("no certificate in the chain sent by " + where +
                                " matches the token's CA pin");
}

// ---------------------------------------------------------------------------
// Hashing, randomness, encoding

std::string Sha256(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    DieOnCryptoFailure("SHA-256 failed");
  }
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string Sha256Hex(std::string_view data) { return HexEncode(Sha256(data)); }

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  size_t off = 0;
  while (off < n) {
    int chunk = static_cast<int>(std::min<size_t>(n - off, 1 << 20));
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data() + off), chunk) != 1) {
      DieOnCryptoFailure("the OpenSSL random generator failed");
    }
    off += static_cast<size_t>(chunk);
  }
  return out;
}

std::string HexEncode(std::string_view data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (unsigned char c : data) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0x0f]);
  }
  return out;
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return Error::InvalidArgument("hex string has an odd length");
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexValue(hex[i]);
    int lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return Error::InvalidArgument("invalid hex character at position " +
                                    std::to_string(hi < 0 ? i : i + 1));
    }
    out.push_back(static_cast<char>((hi << 4) | lo));
  }
  return out;
}

bool SecureEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;  // lengths are not secret
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace cairn::tls
