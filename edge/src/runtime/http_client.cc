// HttpClient (http_client.h): non-blocking sockets driven with poll(2)
// against one deadline per request; TLS through OpenSSL on the same socket.
#include "cairn/edge/runtime/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace cairn::edge::runtime {

using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxHead = 64 * 1024;
constexpr size_t kMaxBodyHead = 1024;

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

// Waits for `events` on `fd` until the deadline. False on timeout.
bool WaitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const int ms = RemainingMs(deadline);
    if (ms == 0) return false;
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, ms);
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Result<int> Connect(const HttpUrl& url, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string port = std::to_string(url.port);
  if (int rc = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &list); rc != 0) {
    return Error::Unavailable("cannot resolve " + url.host + ": " + ::gai_strerror(rc));
  }
  std::string last = "no address";
  for (addrinfo* a = list; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last = std::strerror(errno);
      continue;
    }
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      if (!WaitFor(fd, POLLOUT, deadline)) {
        ::close(fd);
        last = "connect timed out";
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc == 0) {
      ::freeaddrinfo(list);
      return fd;
    }
    last = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(list);
  return Error::Unavailable("cannot connect to " + url.HostHeader() + ": " + last);
}

// One connection: plain or TLS, all I/O bounded by the deadline.
class Conn {
 public:
  Conn(int fd, SSL* ssl, Clock::time_point deadline) : fd_(fd), ssl_(ssl), deadline_(deadline) {}
  ~Conn() {
    if (ssl_ != nullptr) SSL_free(ssl_);
  }

  Status Handshake() {
    for (;;) {
      ERR_clear_error();
      int r = SSL_connect(ssl_);
      if (r == 1) return OkStatus();
      if (auto s = WaitSsl(r, "TLS handshake"); !s.ok()) return s;
    }
  }

  Status WriteAll(std::string_view data) {
    while (!data.empty()) {
      if (ssl_ != nullptr) {
        ERR_clear_error();
        int r = SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), 1 << 30)));
        if (r > 0) {
          data.remove_prefix(static_cast<size_t>(r));
          continue;
        }
        if (auto s = WaitSsl(r, "sending the request"); !s.ok()) return s;
      } else {
        ssize_t r = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (r > 0) {
          data.remove_prefix(static_cast<size_t>(r));
          continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          if (!WaitFor(fd_, POLLOUT, deadline_)) return Error::Unavailable("timed out sending the request");
          continue;
        }
        return Error::Unavailable(std::string("sending the request: ") + std::strerror(errno));
      }
    }
    return OkStatus();
  }

  // Reads some bytes into `out`; 0 at the end of the stream.
  Result<size_t> ReadSome(std::string* out) {
    char buf[16 * 1024];
    for (;;) {
      if (ssl_ != nullptr) {
        ERR_clear_error();
        int r = SSL_read(ssl_, buf, sizeof buf);
        if (r > 0) {
          out->append(buf, static_cast<size_t>(r));
          return static_cast<size_t>(r);
        }
        int e = SSL_get_error(ssl_, r);
        if (e == SSL_ERROR_ZERO_RETURN) return size_t{0};
        if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return size_t{0};  // closed without close_notify
        if (auto s = WaitSsl(r, "reading the response"); !s.ok()) return s.error();
      } else {
        ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
        if (r >= 0) {
          out->append(buf, static_cast<size_t>(r));
          return static_cast<size_t>(r);
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          if (!WaitFor(fd_, POLLIN, deadline_)) return Error::Unavailable("timed out waiting for the response");
          continue;
        }
        return Error::Unavailable(std::string("reading the response: ") + std::strerror(errno));
      }
    }
  }

 private:
  // After an SSL call returned `r` <= 0: waits when OpenSSL wants I/O, else
  // fails with what went wrong during `what`.
  Status WaitSsl(int r, const char* what) {
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (!WaitFor(fd_, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline_)) {
        return Error::Unavailable(std::string("timed out during ") + what);
      }
      return OkStatus();
    }
    if (e == SSL_ERROR_SSL) {
      long v = SSL_get_verify_result(ssl_);
      if (v != X509_V_OK) {
        return Error::Unavailable(std::string(what) + ": server certificate not trusted: " +
                                  X509_verify_cert_error_string(v));
      }
      return Error::Unavailable(std::string(what) + ": " + OpenSslError());
    }
    if (e == SSL_ERROR_SYSCALL) {
      return Error::Unavailable(std::string(what) + ": connection closed" +
                                (errno != 0 ? std::string(" (") + std::strerror(errno) + ")" : ""));
    }
    return Error::Unavailable(std::string(what) + ": TLS error " + std::to_string(e));
  }

  int fd_;
  SSL* ssl_;
  Clock::time_point deadline_;
};

Result<HttpResponse> ParseHead(const std::string& data, size_t head_end) {
  // "HTTP/1.1 200 OK\r\n..."
  const size_t eol = data.find("\r\n");
  std::string_view line(data.data(), std::min(eol, head_end));
  if (line.rfind("HTTP/1.", 0) != 0 || line.size() < 12 || line[8] != ' ') {
    return Error::Unavailable("not an HTTP/1.x response: \"" + std::string(line.substr(0, 40)) + "\"");
  }
  HttpResponse r;
  auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, r.status);
  if (ec != std::errc() || p != line.data() + 12 || r.status < 100 || r.status > 999) {
    return Error::Unavailable("bad status line: \"" + std::string(line.substr(0, 40)) + "\"");
  }
  if (line.size() > 13) r.reason = std::string(line.substr(13));
  r.body_head = data.substr(head_end + 4, kMaxBodyHead);
  return r;
}

}  // namespace

struct HttpClient::TlsContext {
  SSL_CTX* ctx = nullptr;
  ~TlsContext() {
    if (ctx != nullptr) SSL_CTX_free(ctx);
  }
};

namespace {

Result<std::unique_ptr<HttpClient::TlsContext>> MakeTls(const std::string& ca_pem);

}  // namespace

Result<std::unique_ptr<HttpClient>> HttpClient::Make(Options options) {
  // Writing to a peer that closed must be an error, not SIGPIPE (OpenSSL
  // writes with write(2)); the node ignores SIGPIPE like Paho does.
  ::signal(SIGPIPE, SIG_IGN);
  auto client = std::unique_ptr<HttpClient>(new HttpClient(std::move(options)));
  if (!client->options_.ca_pem.empty()) {
    auto tls = MakeTls(client->options_.ca_pem);
    if (!tls.ok()) return tls.error();
    client->tls_ = std::move(*tls);
  }
  return client;
}

HttpClient::HttpClient(Options options) : options_(std::move(options)) {}
HttpClient::~HttpClient() = default;

namespace {

Result<std::unique_ptr<HttpClient::TlsContext>> MakeTls(const std::string& ca_pem) {
  auto tls = std::make_unique<HttpClient::TlsContext>();
  tls->ctx = SSL_CTX_new(TLS_client_method());
  if (tls->ctx == nullptr) return Error::Internal("TLS: " + OpenSslError());
  SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_PEER, nullptr);
  if (ca_pem.empty()) {
    if (SSL_CTX_set_default_verify_paths(tls->ctx) != 1) {
      return Error::Internal("TLS: cannot load the system's CA certificates: " + OpenSslError());
    }
    return tls;
  }
  BIO* bio = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  X509_STORE* store = SSL_CTX_get_cert_store(tls->ctx);
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    if (X509_STORE_add_cert(store, cert) == 1) ++added;
    X509_free(cert);
  }
  BIO_free(bio);
  ERR_clear_error();  // the loop ends on a "no start line" error
  if (added == 0) return Error::InvalidArgument("no PEM certificate in the CA file");
  return tls;
}

}  // namespace

Result<HttpResponse> HttpClient::Send(const HttpUrl& url, const std::string& method,
                                      const std::vector<std::pair<std::string, std::string>>& headers,
                                      const std::string& body) {
  const auto deadline = Clock::now() + options_.timeout;
  if (url.tls && !tls_) {
    auto tls = MakeTls("");
    if (!tls.ok()) return tls.error();
    tls_ = std::move(*tls);
  }
  auto fd = Connect(url, deadline);
  if (!fd.ok()) return fd.error();
  Fd owned(*fd);
  SSL* ssl = nullptr;
  if (url.tls) {
    ssl = SSL_new(tls_->ctx);
    if (ssl == nullptr) return Error::Internal("TLS: " + OpenSslError());
    SSL_set_fd(ssl, owned.get());
    if (!url.ipv6 && inet_addr(url.host.c_str()) == INADDR_NONE) {
      SSL_set_tlsext_host_name(ssl, url.host.c_str());
      SSL_set1_host(ssl, url.host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url.host.c_str());
    }
  }
  Conn conn(owned.get(), ssl, deadline);
  if (ssl != nullptr) {
    if (auto s = conn.Handshake(); !s.ok()) return s.error();
  }
  std::string request = method + " " + url.target + " HTTP/1.1\r\nHost: " + url.HostHeader() +
                        "\r\nUser-Agent: cairn-edge\r\nConnection: close\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n";
  for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
  request += "\r\n";
  if (auto s = conn.WriteAll(request); !s.ok()) return s.error();
  if (auto s = conn.WriteAll(body); !s.ok()) return s.error();

  std::string data;
  size_t head_end = std::string::npos;
  for (;;) {
    auto n = conn.ReadSome(&data);
    if (!n.ok()) return n.error();
    if (head_end == std::string::npos) head_end = data.find("\r\n\r\n");
    // The status is all that matters; the body's start only if it is here.
    if (head_end != std::string::npos) break;
    if (*n == 0) return Error::Unavailable("the server closed the connection before answering");
    if (data.size() > kMaxHead) return Error::Unavailable("response head larger than 64 KiB");
  }
  return ParseHead(data, head_end);
}

}  // namespace cairn::edge::runtime
