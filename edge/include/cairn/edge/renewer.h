// Renews the node's certificate before it expires, over the node's current
// connection and certificate (no token): when RenewalDueMs() has passed it
// makes a new key pair and CSR, calls registry/RenewCertificate, checks the
// answer (signed by the pinned CA, same principal, matches the new key,
// expires no earlier), stores the pair (StoreRenewedIdentity: the old files are
// replaced only once the new ones are safely on disk) and asks the MQTT
// client to reconnect with it. A failed attempt is retried with back-off
// (1 min doubling to 1 h); pipelines never wait for it.
// Thread-safety: Tick() runs on one thread at a time (the background thread
// of Start(), or a test); the accessors are thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "cairn/common/clock.h"
#include "cairn/common/mqtt_client.h"
#include "cairn/common/rpc.h"
#include "cairn/edge/certificate.h"
#include "cairn/edge/identity.h"

namespace cairn::edge {

struct RenewOptions {
  int renew_percent = kDefaultRenewPercent;  // of the certificate's life
  std::chrono::milliseconds first_retry{std::chrono::minutes(1)};
  std::chrono::milliseconds max_retry{std::chrono::hours(1)};
  // A certificate renewed less than this ago is not renewed again (guards
  // against a loop when renew_percent is 0).
  std::chrono::milliseconds min_interval{std::chrono::minutes(1)};
  std::chrono::milliseconds rpc_timeout{std::chrono::seconds(30)};
};

class CertificateRenewer {
 public:
  enum class Step { kNotDue, kWaiting, kRenewed, kFailed };
  using RenewedHandler = std::function<void(const CertificateInfo&)>;

  // `rpc` must be fed the client's messages (RpcClient::OnMessage); it is
  // started (reply subscription) on the first attempt.
  CertificateRenewer(Identity identity, CertificateInfo current, MqttClient& mqtt, RpcClient& rpc, Clock& clock,
                     RenewOptions options = {});
  ~CertificateRenewer();

  // Called after each successful renewal, before the reconnect.
  void SetRenewedHandler(RenewedHandler handler);

  // One step: nothing before the due time or during back-off (kNotDue,
  // kWaiting; kWaiting also while disconnected); otherwise one attempt,
  // blocking for at most rpc_timeout.
  Step Tick();

  // Runs Tick() every `period` on a background thread until Stop().
  void Start(std::chrono::milliseconds period = std::chrono::seconds(1));
  void Stop();

  CertificateInfo current() const;
  int64_t due_ms() const;           // when the current certificate is due for renewal
  int64_t next_attempt_ms() const;  // due_ms, or later after a failure

 private:
  Status Renew();  // one attempt

  const Identity id_;
  MqttClient& mqtt_;
  RpcClient& rpc_;
  Clock& clock_;
  const RenewOptions options_;
  bool rpc_started_ = false;

  mutable std::mutex mu_;
  CertificateInfo current_;
  int64_t next_attempt_ms_ = 0;
  std::chrono::milliseconds backoff_;
  int64_t renewed_ms_ = 0;  // last successful renewal, 0 = none
  RenewedHandler on_renewed_;

  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool loop_stop_ = false;
  std::thread thread_;
};

}  // namespace cairn::edge
