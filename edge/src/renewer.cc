#include "cairn/edge/renewer.h"

#include <spdlog/spdlog.h>

#include "cairn/common/files.h"
#include "cairn/common/tls.h"
#include "cairn/common/topics.h"
#include "cairn/v1/rpc.pb.h"

namespace cairn::edge {

CertificateRenewer::CertificateRenewer(Identity identity, CertificateInfo current, MqttClient& mqtt, RpcClient& rpc,
                                       Clock& clock, RenewOptions options)
    : id_(std::move(identity)),
      mqtt_(mqtt),
      rpc_(rpc),
      clock_(clock),
      options_(options),
      current_(std::move(current)),
      backoff_(options.first_retry) {
  next_attempt_ms_ = RenewalDueMs(current_, options_.renew_percent);
}

CertificateRenewer::~CertificateRenewer() { Stop(); }

void CertificateRenewer::SetRenewedHandler(RenewedHandler handler) {
  std::lock_guard lock(mu_);
  on_renewed_ = std::move(handler);
}

CertificateInfo CertificateRenewer::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

int64_t CertificateRenewer::due_ms() const {
  std::lock_guard lock(mu_);
  return RenewalDueMs(current_, options_.renew_percent);
}

int64_t CertificateRenewer::next_attempt_ms() const {
  std::lock_guard lock(mu_);
  return next_attempt_ms_;
}

CertificateRenewer::Step CertificateRenewer::Tick() {
  const int64_t now = clock_.NowMs();
  CertificateInfo cert;
  {
    std::lock_guard lock(mu_);
    if (now < RenewalDueMs(current_, options_.renew_percent)) return Step::kNotDue;
    if (renewed_ms_ != 0 && now < renewed_ms_ + options_.min_interval.count()) return Step::kNotDue;
    if (now < next_attempt_ms_) return Step::kWaiting;
    cert = current_;
  }
  if (!mqtt_.IsConnected()) return Step::kWaiting;  // renewal needs the current connection
  spdlog::info("renewing the node certificate (serial {}, valid until {})", cert.serial_hex,
               FormatUtc(cert.not_after_ms));
  Status st = Renew();
  std::lock_guard lock(mu_);
  if (!st.ok()) {
    next_attempt_ms_ = clock_.NowMs() + backoff_.count();
    spdlog::warn("certificate renewal failed: {}; retrying at {} (the current certificate is valid until {})",
                 st.error().message, FormatUtc(next_attempt_ms_), FormatUtc(cert.not_after_ms));
    backoff_ = std::min(backoff_ * 2, options_.max_retry);
    return Step::kFailed;
  }
  backoff_ = options_.first_retry;
  return Step::kRenewed;
}

Status CertificateRenewer::Renew() {
  auto ca = ReadFile(id_.ca_file());
  if (!ca.ok()) return ca.error();
  auto key = tls::GenerateKey();
  if (!key.ok()) return key.error();
  // The CN must be this node's principal: the registry renews only the caller.
  auto csr = tls::MakeCsr(*key, topics::NodePrincipal(id_.workspace, id_.node));
  if (!csr.ok()) return csr.error();
  if (!rpc_started_) {
    if (auto st = rpc_.Start(); !st.ok()) return st;
    rpc_started_ = true;
  }
  v1::RenewCertificateRequest req;
  req.set_csr_pem(*csr);
  auto resp = rpc_.Call<v1::RenewCertificateResponse>("registry", "RenewCertificate", req, options_.rpc_timeout);
  if (!resp.ok()) return resp.error();

  // Trust nothing in the answer that we can check.
  const std::string& pem = resp->certificate_pem();
  if (auto st = tls::VerifyCert(*ca, pem); !st.ok()) {
    return Error::Internal("the registry returned a certificate the pinned CA does not verify: " + st.error().message);
  }
  auto info = ReadCertificateInfo(pem);
  if (!info.ok()) return info.error();
  const std::string principal = topics::NodePrincipal(id_.workspace, id_.node);
  if (info->common_name != principal) {
    return Error::Internal("the registry returned a certificate for " + info->common_name + ", not " + principal);
  }
  if (auto st = CheckKeyMatchesCertificate(*key, pem); !st.ok()) {
    return Error::Internal("the registry returned a certificate for another key");
  }
  CertificateInfo old = current();
  if (info->not_after_ms < old.not_after_ms) {
    return Error::Internal("the registry returned a certificate that expires earlier (" +
                           FormatUtc(info->not_after_ms) + ") than the current one");
  }

  if (auto st = StoreRenewedIdentity(id_, *key, pem); !st.ok()) {
    return Error::Internal("the renewed certificate could not be stored (the old one stays in use): " +
                           st.error().message);
  }
  RenewedHandler handler;
  int64_t next_due = 0;
  {
    std::lock_guard lock(mu_);
    current_ = *info;
    renewed_ms_ = clock_.NowMs();
    next_attempt_ms_ = RenewalDueMs(current_, options_.renew_percent);
    next_due = std::max(next_attempt_ms_, renewed_ms_ + options_.min_interval.count());
    handler = on_renewed_;
  }
  spdlog::info("certificate renewed: serial {} valid until {} (was serial {}); next renewal due {}", info->serial_hex,
               FormatUtc(info->not_after_ms), old.serial_hex, FormatUtc(next_due));
  if (handler) handler(*info);
  // The broker checks the certificate at connect: reconnect to present the
  // new one. If that fails, the next automatic reconnect uses it anyway.
  if (auto st = mqtt_.Reconnect(); !st.ok()) {
    spdlog::warn("could not reconnect with the renewed certificate now ({}); it is used from the next reconnect",
                 st.error().message);
  }
  return OkStatus();
}

void CertificateRenewer::Start(std::chrono::milliseconds period) {
  thread_ = std::thread([this, period] {
    std::unique_lock lock(loop_mu_);
    while (!loop_stop_) {
      lock.unlock();
      Tick();
      lock.lock();
      loop_cv_.wait_for(lock, period, [this] { return loop_stop_; });
    }
  });
}

void CertificateRenewer::Stop() {
  {
    std::lock_guard lock(loop_mu_);
    loop_stop_ = true;
  }
  loop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace cairn::edge
