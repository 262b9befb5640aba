// The `http` output against a real local HTTP(S) server (a small server in
// this test on a free loopback port): batches, formats and headers, a sink
// that fails and recovers (nothing lost, the input paused meanwhile), a
// permanent refusal, and TLS verified against a given CA.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "cairn/common/tls.h"
#include "cairn/edge/pipeline_runtime.h"
#include "cairn/edge/runtime/http_client.h"
#include "test_util.h"

namespace cairn::edge {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testutil::WaitUntil;

struct Request {
  std::string head;  // request line and headers
  std::string body;
};

// One-request-per-connection HTTP/1.1 server on 127.0.0.1:PORT. Answers each
// request with the next status of `statuses` (200 once they run out) and
// records the requests it answered 2xx (`delivered`) and all (`seen`).
class TestServer {
 public:
  explicit TestServer(SSL_CTX* tls = nullptr) : tls_(tls) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~TestServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    if (thread_.joinable()) thread_.join();
  }

  // Until Listen(), connections are refused (the port is bound, not listening).
  void Listen() {
    ASSERT_EQ(::listen(fd_, 16), 0);
    thread_ = std::thread([this] { Serve(); });
  }

  void SetStatuses(std::deque<int> s) {
    std::lock_guard lock(mu_);
    statuses_ = std::move(s);
  }
  std::vector<Request> delivered() {
    std::lock_guard lock(mu_);
    return delivered_;
  }
  int seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  uint16_t port() const { return port_; }

 private:
  void Serve() {
    while (!stop_) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      SSL* ssl = nullptr;
      if (tls_ != nullptr) {
        ssl = SSL_new(tls_);
        SSL_set_fd(ssl, c);
        if (SSL_accept(ssl) != 1) {
          ERR_clear_error();
          SSL_free(ssl);
          ::close(c);
          continue;
        }
      }
      Handle(c, ssl);
      if (ssl != nullptr) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
      }
      ::close(c);
    }
  }

  void Handle(int c, SSL* ssl) {
    auto read = [&](char* buf, int n) -> int { return ssl ? SSL_read(ssl, buf, n) : ::read(c, buf, n); };
    auto write = [&](const std::string& s) { ssl ? SSL_write(ssl, s.data(), static_cast<int>(s.size())) : ::write(c, s.data(), s.size()); };
    std::string data;
    char buf[4096];
    size_t head_end;
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
      int n = read(buf, sizeof buf);
      if (n <= 0) return;
      data.append(buf, static_cast<size_t>(n));
    }
    Request r;
    r.head = data.substr(0, head_end);
    size_t length = 0;
    if (auto at = r.head.find("Content-Length: "); at != std::string::npos) length = std::stoul(r.head.substr(at + 16));
    r.body = data.substr(head_end + 4);
    while (r.body.size() < length) {
      int n = read(buf, sizeof buf);
      if (n <= 0) return;
      r.body.append(buf, static_cast<size_t>(n));
    }
    int status = 200;
    {
      std::lock_guard lock(mu_);
      ++seen_;
      if (!statuses_.empty()) {
        status = statuses_.front();
        statuses_.pop_front();
      }
      if (status / 100 == 2) delivered_.push_back(r);
    }
    write("HTTP/1.1 " + std::to_string(status) + " Test\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope");
  }

  SSL_CTX* tls_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::deque<int> statuses_;
  std::vector<Request> delivered_;
  int seen_ = 0;
};

class HttpOutputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cairn-http-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A file input over `lines` numbered lines -> http output at `url`.
  v1::PipelineConfig Config(int lines, const std::string& url) {
    {
      std::ofstream f(dir_ / "in.log");
      for (int i = 0; i < lines; ++i) f << "line-" << i << "\n";
    }
    v1::PipelineConfig c;
    c.set_name("to-http");
    c.set_version(1);
    c.mutable_spec()->mutable_input()->mutable_file()->set_path("in.log");
    c.mutable_spec()->mutable_input()->mutable_file()->set_from_beginning(true);
    auto* h = c.mutable_spec()->mutable_output()->mutable_http();
    h->set_url(url);
    h->set_max_wait_ms(100);
    h->set_max_backoff_ms(100);
    return c;
  }

  std::unique_ptr<PipelineRunner> Make(const v1::PipelineConfig& c) {
    PipelineContext ctx;
    ctx.workspace = "demo";
    ctx.node = "n1";
    ctx.data_dir = dir_.string();
    auto r = MakePipelineRunner(c, std::move(ctx));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? std::move(*r) : nullptr;
  }

  static std::vector<std::string> Lines(const std::vector<Request>& requests) {
    std::vector<std::string> out;
    for (const Request& r : requests) {
      std::string body = r.body;
      size_t start = 0;
      for (size_t nl; (nl = body.find('\n', start)) != std::string::npos; start = nl + 1) {
        out.push_back(body.substr(start, nl - start));
      }
    }
    return out;
  }

  fs::path dir_;
};

std::string Url(const TestServer& s, const std::string& scheme = "http", const std::string& host = "127.0.0.1") {
  return scheme + "://" + host + ":" + std::to_string(s.port()) + "/ingest?k=v";
}

TEST_F(HttpOutputTest, PostsJsonArraysOfAtMostMaxRecordsWithTheConfiguredHeaders) {
  TestServer server;
  server.Listen();
  auto c = Config(10, Url(server));
  auto* h = c.mutable_spec()->mutable_output()->mutable_http();
  h->set_max_records(4);
  (*h->mutable_headers())["Authorization"] = "Bearer t0k";
  auto runner = Make(c);
  runner->Start();
  // 4 + 4 when full, the last 2 after max_wait.
  ASSERT_TRUE(WaitUntil([&] { return server.delivered().size() == 3; }));
  runner->Stop();
  auto reqs = server.delivered();
  EXPECT_EQ(reqs[0].body, R"(["line-0","line-1","line-2","line-3"])");
  EXPECT_EQ(reqs[2].body, R"(["line-8","line-9"])");
  EXPECT_THAT(reqs[0].head, HasSubstr("POST /ingest?k=v HTTP/1.1\r\n"));
  EXPECT_THAT(reqs[0].head, HasSubstr("\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"));
  EXPECT_THAT(reqs[0].head, HasSubstr("\r\nAuthorization: Bearer t0k\r\n"));
  EXPECT_THAT(reqs[0].head, HasSubstr("\r\nContent-Type: application/json"));
  EXPECT_EQ(runner->Health().records_out(), 10u);
  EXPECT_EQ(runner->Health().records_dropped(), 0u);
}

TEST_F(HttpOutputTest, ASinkThatFailsAndRecoversGetsEveryRecordInOrder) {
  TestServer server;
  server.SetStatuses({503, 500, 503, 429});  // four failures, then 200s
  server.Listen();
  auto c = Config(1000, Url(server));
  c.mutable_spec()->mutable_output()->mutable_http()->set_format("lines");
  c.mutable_spec()->mutable_output()->mutable_http()->set_max_records(10);
  auto runner = Make(c);
  runner->Start();
  // While the first batch is refused, the input is paused: the runner took
  // one chunk (256 records) off it, the output accepted one batch (10).
  ASSERT_TRUE(WaitUntil([&] { return server.seen() >= 2; }));
  EXPECT_LE(runner->Health().records_in(), 256u);
  EXPECT_EQ(runner->Health().records_out(), 10u);
  EXPECT_THAT(runner->Health().last_error(), HasSubstr("answered 50"));
  ASSERT_TRUE(WaitUntil([&] { return Lines(server.delivered()).size() == 1000; }, std::chrono::seconds(10)));
  runner->Stop();
  std::vector<std::string> expected;
  for (int i = 0; i < 1000; ++i) expected.push_back("line-" + std::to_string(i));
  EXPECT_EQ(Lines(server.delivered()), expected);
  EXPECT_THAT(server.delivered()[0].head, HasSubstr("Content-Type: application/x-ndjson"));
  EXPECT_EQ(runner->Health().records_dropped(), 0u);
  EXPECT_EQ(runner->Health().records_out(), 1000u);
  EXPECT_EQ(server.seen(), 100 + 4);
}

TEST_F(HttpOutputTest, ASinkThatIsNotThereYetGetsEverythingOnceItListens) {
  TestServer server;  // bound, not listening: connections are refused
  auto c = Config(25, Url(server));
  c.mutable_spec()->mutable_output()->mutable_http()->set_format("lines");
  auto runner = Make(c);
  runner->Start();
  ASSERT_TRUE(WaitUntil([&] { return runner->Health().errors() >= 2; }));
  EXPECT_THAT(runner->Health().last_error(), HasSubstr("cannot connect to 127.0.0.1:"));
  server.Listen();
  ASSERT_TRUE(WaitUntil([&] { return Lines(server.delivered()).size() == 25; }, std::chrono::seconds(10)));
  runner->Stop();
  EXPECT_EQ(runner->Health().records_dropped(), 0u);
}

TEST_F(HttpOutputTest, APermanentRefusalDropsTheBatchCountedAndGoesOn) {
  TestServer server;
  server.SetStatuses({400});
  server.Listen();
  auto c = Config(6, Url(server));
  c.mutable_spec()->mutable_output()->mutable_http()->set_max_records(3);
  auto runner = Make(c);
  runner->Start();
  ASSERT_TRUE(WaitUntil([&] { return server.delivered().size() == 1; }));
  runner->Stop();
  EXPECT_EQ(server.delivered()[0].body, R"(["line-3","line-4","line-5"])");
  EXPECT_EQ(runner->Health().records_dropped(), 3u);
  EXPECT_THAT(runner->Health().last_error(), HasSubstr("answered 400"));
}

TEST_F(HttpOutputTest, StopSendsWhatIsHeld) {
  TestServer server;
  server.Listen();
  auto c = Config(3, Url(server));
  c.mutable_spec()->mutable_output()->mutable_http()->set_max_wait_ms(3'600'000);
  auto runner = Make(c);
  runner->Start();
  ASSERT_TRUE(WaitUntil([&] { return runner->Health().records_out() == 3; }));
  EXPECT_EQ(server.seen(), 0);
  runner->Stop();
  ASSERT_EQ(server.delivered().size(), 1u);
  EXPECT_EQ(server.delivered()[0].body, R"(["line-0","line-1","line-2"])");
}

// --- TLS

class Tls {
 public:
  Tls() {
    auto ca = tls::CreateCa("test-ca", 1);
    EXPECT_TRUE(ca.ok());
    ca_ = *ca;
    auto key = tls::GenerateKey();
    auto cert = tls::IssueServerCert(ca_, *key, "localhost", {"localhost", "127.0.0.1"}, 1);
    EXPECT_TRUE(cert.ok()) << (cert.ok() ? "" : cert.error().message);
    ctx_ = SSL_CTX_new(TLS_server_method());
    BIO* b = BIO_new_mem_buf(cert->data(), static_cast<int>(cert->size()));
    X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    b = BIO_new_mem_buf(key->data(), static_cast<int>(key->size()));
    EVP_PKEY* k = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    EXPECT_EQ(SSL_CTX_use_certificate(ctx_, x), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx_, k), 1);
    X509_free(x);
    EVP_PKEY_free(k);
  }
  ~Tls() { SSL_CTX_free(ctx_); }
  SSL_CTX* ctx() const { return ctx_; }
  const std::string& ca_pem() const { return ca_.cert_pem; }

 private:
  tls::CertAuthority ca_;
  SSL_CTX* ctx_ = nullptr;
};

TEST_F(HttpOutputTest, HttpsVerifiesTheServerAgainstTheConfiguredCa) {
  Tls tls;
  TestServer server(tls.ctx());
  server.Listen();
  { std::ofstream(dir_ / "ca.pem") << tls.ca_pem(); }
  for (const std::string host : {"localhost", "127.0.0.1"}) {
    SCOPED_TRACE(host);
    auto c = Config(2, Url(server, "https", host));
    c.mutable_spec()->mutable_output()->mutable_http()->set_ca_file("ca.pem");
    auto runner = Make(c);
    const size_t before = server.delivered().size();
    runner->Start();
    ASSERT_TRUE(WaitUntil([&] { return server.delivered().size() == before + 1; }));
    runner->Stop();
    EXPECT_EQ(server.delivered().back().body, R"(["line-0","line-1"])");
  }
}

TEST_F(HttpOutputTest, HttpsRefusesAServerTheCaDoesNotVouchFor) {
  Tls tls;
  Tls other;  // another CA: the server's certificate is not trusted
  TestServer server(tls.ctx());
  server.Listen();
  { std::ofstream(dir_ / "ca.pem") << other.ca_pem(); }
  auto c = Config(1, Url(server, "https"));
  c.mutable_spec()->mutable_output()->mutable_http()->set_ca_file("ca.pem");
  auto runner = Make(c);
  runner->Start();
  ASSERT_TRUE(WaitUntil([&] { return runner->Health().errors() >= 1; }));
  runner->Stop();
  EXPECT_THAT(runner->Health().last_error(), HasSubstr("server certificate not trusted"));
  EXPECT_TRUE(server.delivered().empty());
}

TEST(HttpClient, AServerThatNeverAnswersTimesOut) {
  // Listening but never accepting: the kernel completes the connection and
  // takes the request; no answer ever comes.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  auto url = ParseHttpUrl("http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/");
  ASSERT_TRUE(url.ok());
  runtime::HttpClient::Options o;
  o.timeout = std::chrono::milliseconds(200);
  auto client = runtime::HttpClient::Make(o);
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Send(*url, "POST", {}, "x");
  ::close(fd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "timed out waiting for the response");
}

}  // namespace
}  // namespace cairn::edge
