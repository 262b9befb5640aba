// A minimal HTTP/1.1 client for the `http` output: one request per
// connection (Connection: close), plain TCP or TLS (OpenSSL; the server's
// certificate is verified against the system's CAs or a given PEM bundle,
// and its name against the URL's host). Every step after name resolution is
// bounded by the request's timeout (connect, TLS handshake, send, reading
// the response head); name resolution uses the system resolver
// (getaddrinfo) and is bounded by its own settings.
//
// The client reads the status line and headers (at most 64 KiB) and up to
// 1 KiB of the body (for error messages); it does not follow redirects.
//
// Thread-safety: an HttpClient may be used by one thread at a time (the
// pipeline's runner). Creating one makes the process ignore SIGPIPE (a
// closed peer must be an error, not the death of the node).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cairn/common/pipeline_spec.h"
#include "cairn/common/result.h"

namespace cairn::edge::runtime {

struct HttpResponse {
  int status = 0;
  std::string reason;
  std::string body_head;  // the first bytes of the body (at most 1 KiB)
};

class HttpClient {
 public:
  struct Options {
    // PEM CA certificates that verify https servers; empty: the system's.
    std::string ca_pem;
    std::chrono::milliseconds timeout{10'000};
  };
  // Fails if ca_pem holds no usable certificate.
  static Result<std::unique_ptr<HttpClient>> Make(Options options);
  ~HttpClient();

  struct TlsContext;  // opaque: OpenSSL's SSL_CTX, made on the first https request

  // Sends one request and reads the response head. kUnavailable for
  // connection, TLS and timeout errors (the message says which); the
  // server's answer, whatever its status, is a success here.
  Result<HttpResponse> Send(const HttpUrl& url, const std::string& method,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            const std::string& body);

 private:
  explicit HttpClient(Options options);
  Options options_;
  std::unique_ptr<TlsContext> tls_;
};

}  // namespace cairn::edge::runtime
