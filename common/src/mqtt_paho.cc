// PahoMqttClient over the Paho C asynchronous API (MQTTAsync_*). Paho calls
// back on its own threads; those callbacks only copy what they got and hand
// it to the client's dispatcher thread (user handlers) or complete an Op a
// caller waits on. Thread-safety: see mqtt_client.h.
#include "cairn/common/mqtt_paho.h"

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <MQTTAsync.h>
#include <spdlog/spdlog.h>

#include "cairn/common/tls.h"

namespace cairn {
namespace {

constexpr auto kOpTimeout = std::chrono::seconds(10);
constexpr std::chrono::milliseconds kMinReconnectDelay{1000};
constexpr std::chrono::milliseconds kMaxReconnectDelay{15000};

std::string Hex2(int v) {
  static const char* digits = "0123456789abcdef";
  return {digits[(v >> 4) & 0xf], digits[v & 0xf]};
}

// Names of the MQTT v5 CONNACK failure reason codes a broker may send.
std::string ReasonName(int code) {
  switch (code) {
    case 0x80: return "unspecified error";
    case 0x84: return "unsupported protocol version";
    case 0x85: return "client identifier not valid";
    case 0x86: return "bad user name or password";
    case 0x87: return "not authorized";
    case 0x88: return "server unavailable";
    case 0x89: return "server busy";
    case 0x8a: return "banned";
    case 0x8c: return "bad authentication method";
    case 0x95: return "packet too large";
    case 0x97: return "quota exceeded";
    case 0x9f: return "connection rate exceeded";
    default: return "refused";
  }
}

// Runs closures one after another on its own thread, so that user handlers
// never run on Paho's network thread (where waiting on a token deadlocks).
class Dispatcher {
 public:
  Dispatcher() : thread_([this] { Run(); }) {}
  ~Dispatcher() { Stop(); }
  // Stops running closures; queued ones are dropped. Joins the thread unless
  // called from it (then the thread ends after the current closure, and the
  // owner must not be destroyed from inside a handler).
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable() && std::this_thread::get_id() != thread_.get_id()) thread_.join();
  }
  void Post(std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      try {
        fn();
      } catch (const std::exception& e) {
        spdlog::error("mqtt handler threw: {}", e.what());
      }
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

// Reads the MQTT v5 properties Cairn uses from a Paho property list.
std::string StringProperty(MQTTProperties* props, enum MQTTPropertyCodes id) {
  MQTTProperty* p = MQTTProperties_getProperty(props, id);
  if (p == nullptr || p->value.data.data == nullptr) return {};
  return std::string(p->value.data.data, static_cast<size_t>(p->value.data.len));
}

MqttMessage FromPaho(const char* topic, int topic_len, const MQTTAsync_message& m) {
  MqttMessage out;
  out.topic = topic_len > 0 ? std::string(topic, static_cast<size_t>(topic_len)) : std::string(topic);
  out.payload.assign(static_cast<const char*>(m.payload), static_cast<size_t>(m.payloadlen));
  out.qos = m.qos;
  out.retained = m.retained != 0;
  auto* props = const_cast<MQTTProperties*>(&m.properties);
  out.content_type = StringProperty(props, MQTTPROPERTY_CODE_CONTENT_TYPE);
  out.response_topic = StringProperty(props, MQTTPROPERTY_CODE_RESPONSE_TOPIC);
  out.correlation_data = StringProperty(props, MQTTPROPERTY_CODE_CORRELATION_DATA);
  int n = MQTTProperties_propertyCount(props, MQTTPROPERTY_CODE_USER_PROPERTY);
  for (int i = 0; i < n; ++i) {
    MQTTProperty* p = MQTTProperties_getPropertyAt(props, MQTTPROPERTY_CODE_USER_PROPERTY, i);
    if (p == nullptr) continue;
    out.user_properties.emplace_back(std::string(p->value.data.data, static_cast<size_t>(p->value.data.len)),
                                     std::string(p->value.value.data, static_cast<size_t>(p->value.value.len)));
  }
  return out;
}

// A Paho property list built from a message; Paho copies what it is given,
// so the list only has to live until the call that takes it returns.
class Properties {
 public:
  explicit Properties(const MqttMessage& m) {
    if (!m.content_type.empty()) AddString(MQTTPROPERTY_CODE_CONTENT_TYPE, m.content_type);
    if (!m.response_topic.empty()) AddString(MQTTPROPERTY_CODE_RESPONSE_TOPIC, m.response_topic);
    if (!m.correlation_data.empty()) AddString(MQTTPROPERTY_CODE_CORRELATION_DATA, m.correlation_data);
    if (m.message_expiry_s > 0) {
      MQTTProperty p{};
      p.identifier = MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL;
      p.value.integer4 = m.message_expiry_s;
      MQTTProperties_add(&props_, &p);
    }
    for (const auto& [k, v] : m.user_properties) {
      MQTTProperty p{};
      p.identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
      p.value.data = {static_cast<int>(k.size()), const_cast<char*>(k.data())};
      p.value.value = {static_cast<int>(v.size()), const_cast<char*>(v.data())};
      MQTTProperties_add(&props_, &p);
    }
  }
  ~Properties() { MQTTProperties_free(&props_); }
  Properties(const Properties&) = delete;
  Properties& operator=(const Properties&) = delete;
  MQTTProperties* get() { return &props_; }

 private:
  void AddString(enum MQTTPropertyCodes id, const std::string& s) {
    MQTTProperty p{};
    p.identifier = id;
    p.value.data = {static_cast<int>(s.size()), const_cast<char*>(s.data())};
    MQTTProperties_add(&props_, &p);
  }
  MQTTProperties props_ = MQTTProperties_initializer;
};

// The outcome of one asynchronous Paho request (publish, subscribe,
// unsubscribe, disconnect), completed from Paho's callbacks and awaited by
// the caller. Shared: a caller that gave up waiting leaves it to the callback.
struct Op {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool ok = false;
  int code = 0;    // Paho error code on failure
  int reason = 0;  // MQTT v5 reason code (SUBACK: the granted QoS on success)
  std::string message;

  void Complete(bool success, int c, int r, const char* msg) {
    {
      std::lock_guard lock(mu);
      done = true;
      ok = success;
      code = c;
      reason = r;
      if (msg != nullptr) message = msg;
    }
    cv.notify_all();
  }
  bool WaitFor(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [this] { return done; });
  }
  // "MQTT error [code]: text" for logs.
  std::string Describe() {
    std::lock_guard lock(mu);
    std::string text = message.empty() ? std::string(MQTTAsync_strerror(code)) : message;
    return "MQTT error [" + std::to_string(code) + "]: " + text;
  }
};

void OpSucceeded(void* context, MQTTAsync_successData5* response) {
  auto* op = static_cast<std::shared_ptr<Op>*>(context);
  (*op)->Complete(true, 0, response != nullptr ? static_cast<int>(response->reasonCode) : 0, nullptr);
  delete op;
}

void OpFailed(void* context, MQTTAsync_failureData5* response) {
  auto* op = static_cast<std::shared_ptr<Op>*>(context);
  if (response != nullptr) {
    (*op)->Complete(false, response->code, static_cast<int>(response->reasonCode), response->message);
  } else {
    (*op)->Complete(false, MQTTASYNC_FAILURE, 0, nullptr);
  }
  delete op;
}

// Response options whose callbacks complete `op`. If the Paho call that
// takes them fails at once, call Release() (no callback will run).
class Request {
 public:
  Request() : op_(std::make_shared<Op>()), context_(new std::shared_ptr<Op>(op_)) {
    options_.onSuccess5 = OpSucceeded;
    options_.onFailure5 = OpFailed;
    options_.context = context_;
  }
  MQTTAsync_responseOptions* options() { return &options_; }
  const std::shared_ptr<Op>& op() const { return op_; }
  void Release() { delete context_; }

 private:
  std::shared_ptr<Op> op_;
  std::shared_ptr<Op>* context_;
  MQTTAsync_responseOptions options_ = MQTTAsync_responseOptions_initializer;
};

std::string PahoError(int rc) {
  return "MQTT error [" + std::to_string(rc) + "]: " + MQTTAsync_strerror(rc);
}

bool IsTls(const std::string& uri) {
  return uri.rfind("ssl://", 0) == 0 || uri.rfind("mqtts://", 0) == 0;
}

class PahoMqttClient final : public MqttClient {
 public:
  explicit PahoMqttClient(MqttOptions options) : options_(std::move(options)) {
    if (options_.client_id.empty()) options_.client_id = RandomClientId("cairn");
    MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer5;
    create.maxBufferedMessages = options_.max_buffered;
    if (options_.buffer_while_disconnected) {
      create.sendWhileDisconnected = 1;
      create.allowDisconnectedSendAtAnyTime = 1;
      create.deleteOldestMessages = 1;
    }
    int rc = MQTTAsync_createWithOptions(&client_, options_.uri.c_str(), options_.client_id.c_str(),
                                         MQTTCLIENT_PERSISTENCE_NONE, nullptr, &create);
    if (rc != MQTTASYNC_SUCCESS) {
      create_error_ = "cannot create an MQTT client for " + options_.uri + ": " + PahoError(rc);
      client_ = nullptr;
      return;
    }
    MQTTAsync_setCallbacks(client_, this, &PahoMqttClient::OnConnectionLost, &PahoMqttClient::OnMessage, nullptr);
    MQTTAsync_setConnected(client_, this, &PahoMqttClient::OnConnectedCallback);
    MQTTAsync_setDisconnected(client_, this, &PahoMqttClient::OnDisconnected);
    if (options_.report_reconnect_failures) reconnect_thread_ = std::thread([this] { ReconnectLoop(); });
  }

  ~PahoMqttClient() override {
    Disconnect();
    // Destroy Paho first, while every member its callbacks touch is alive;
    // the dispatcher is stopped already, so a late callback only posts into
    // a dead queue.
    if (client_ != nullptr) MQTTAsync_destroy(&client_);
    MQTTProperties_free(&will_properties_);
  }

  Status Connect() override {
    if (client_ == nullptr) return Error::Unavailable(create_error_);
    BuildConnectOptions();
    auto failure = AttemptConnect();
    if (!failure) {
      connected_ = true;
      return OkStatus();
    }
    ReportFailure(*failure);
    switch (failure->kind) {
      case ConnectFailure::Kind::kRefused:
        // MQTT v5 CONNACK reason codes 0x86 (bad user name or password) and
        // 0x87 (not authorized).
        if (failure->reason_code == 0x86 || failure->reason_code == 0x87) {
          return Error::Unauthenticated("broker " + options_.uri + " refused the credentials: " + failure->message);
        }
        break;
      case ConnectFailure::Kind::kTimeout:
        return Error::Unavailable("timed out connecting to " + options_.uri + ": " + failure->message);
      default:
        break;
    }
    return Error::Unavailable("cannot connect to " + options_.uri + ": " + failure->message);
  }

  Status Reconnect() override {
    if (!options_.report_reconnect_failures) {
      return Error::FailedPrecondition("Reconnect needs MqttOptions::report_reconnect_failures");
    }
    {
      std::lock_guard lock(disconnect_mu_);
      if (disconnected_) return Error::FailedPrecondition("the client was disconnected for good");
      DisconnectAndWait();
    }
    connected_ = false;
    dispatcher_.Post([this] { Notify(false); });
    RequestReconnect(std::chrono::milliseconds(0));
    return OkStatus();
  }

  Status Publish(const MqttMessage& message) override {
    if (!connected_ && !options_.buffer_while_disconnected) {
      return Error::Unavailable("not connected to the broker");
    }
    auto op = Send(message);
    if (!op.ok()) return op.error();
    return OkStatus();
  }

  Status PublishAndWait(const MqttMessage& message, std::chrono::milliseconds timeout) override {
    if (!connected_) return Error::Unavailable("not connected to the broker");
    auto sent = Send(message);
    if (!sent.ok()) return sent.error();
    const std::shared_ptr<Op>& op = *sent;
    if (!op->WaitFor(timeout)) {
      return Error::DeadlineExceeded("no acknowledgement for " + message.topic + " within " +
                                     std::to_string(timeout.count()) + " ms");
    }
    if (op->reason >= 0x80) return PublishRefused(message.topic, op->reason);
    if (!op->ok) return Error::Unavailable("publish to " + message.topic + " failed: " + op->Describe());
    return OkStatus();
  }

  Status Subscribe(const std::string& filter, int qos) override {
    {
      std::lock_guard lock(mu_);
      subscriptions_[filter] = qos;
    }
    if (!connected_) return OkStatus();  // done on (re)connect
    return DoSubscribe(filter, qos);
  }

  Status Unsubscribe(const std::string& filter) override {
    {
      std::lock_guard lock(mu_);
      subscriptions_.erase(filter);
    }
    if (!connected_) return OkStatus();
    Request req;
    int rc = MQTTAsync_unsubscribe(client_, filter.c_str(), req.options());
    if (rc != MQTTASYNC_SUCCESS) {
      req.Release();
      return Error::Unavailable("unsubscribe " + filter + ": " + PahoError(rc));
    }
    if (req.op()->WaitFor(kOpTimeout) && !req.op()->ok) {
      return Error::Unavailable("unsubscribe " + filter + ": " + req.op()->Describe());
    }
    return OkStatus();
  }

  void Disconnect() override {
    StopReconnecting();
    std::lock_guard lock(disconnect_mu_);
    if (disconnected_) return;
    disconnected_ = true;
    DisconnectAndWait();
    connected_ = false;
    // No handler runs after Disconnect returns: owners may destroy what the
    // handlers reference.
    dispatcher_.Stop();
  }

  bool IsConnected() const override { return connected_; }
  std::string ClientId() const override { return options_.client_id; }
  std::string Username() const override { return options_.username; }

  void SetMessageHandler(MessageHandler handler) override {
    std::lock_guard lock(mu_);
    on_message_ = std::move(handler);
  }
  void SetConnectionHandler(ConnectionHandler handler) override {
    std::lock_guard lock(mu_);
    on_connection_ = std::move(handler);
  }
  void SetConnectFailureHandler(ConnectFailureHandler handler) override {
    std::lock_guard lock(mu_);
    on_connect_failure_ = std::move(handler);
  }

 private:
  // Paho callbacks (on Paho's threads): never block, hand over to the
  // dispatcher.
  static int OnMessage(void* context, char* topic, int topic_len, MQTTAsync_message* m) {
    auto* self = static_cast<PahoMqttClient*>(context);
    MqttMessage msg = FromPaho(topic, topic_len, *m);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    self->dispatcher_.Post([self, msg = std::move(msg)] {
      MessageHandler h;
      {
        std::lock_guard lock(self->mu_);
        h = self->on_message_;
      }
      if (h) h(msg);
    });
    return 1;
  }

  static void OnConnectedCallback(void* context, char* /*cause*/) {
    auto* self = static_cast<PahoMqttClient*>(context);
    self->connected_ = true;
    self->dispatcher_.Post([self] { self->OnConnected(); });
  }

  static void OnConnectionLost(void* context, char* cause) {
    auto* self = static_cast<PahoMqttClient*>(context);
    self->connected_ = false;
    std::string why = cause != nullptr ? cause : "";
    spdlog::warn("mqtt {}: connection lost{}{}", self->options_.client_id, why.empty() ? "" : ": ", why);
    self->dispatcher_.Post([self] { self->Notify(false); });
    self->RequestReconnect(kMinReconnectDelay);
  }

  static void OnDisconnected(void* context, MQTTProperties* /*props*/, enum MQTTReasonCodes rc) {
    auto* self = static_cast<PahoMqttClient*>(context);
    self->connected_ = false;
    spdlog::warn("mqtt {}: disconnected by broker (reason {})", self->options_.client_id, static_cast<int>(rc));
    self->dispatcher_.Post([self] { self->Notify(false); });
    self->RequestReconnect(kMinReconnectDelay);
  }

  static int OnSslError(const char* str, size_t len, void* context) {
    auto* self = static_cast<PahoMqttClient*>(context);
    std::lock_guard lock(self->mu_);
    self->last_ssl_error_.assign(str, len);
    while (!self->last_ssl_error_.empty() && self->last_ssl_error_.back() == '\n') self->last_ssl_error_.pop_back();
    return 0;
  }

  // Connect callbacks: Paho runs them for Connect() and again for each of
  // its automatic reconnects, always with this client as context; they
  // complete the attempt in progress, if any.
  static void OnConnectSucceeded(void* context, MQTTAsync_successData5* /*response*/) {
    static_cast<PahoMqttClient*>(context)->CompleteAttempt(true, 0, 0, nullptr);
  }
  static void OnConnectFailed(void* context, MQTTAsync_failureData5* r) {
    auto* self = static_cast<PahoMqttClient*>(context);
    if (r == nullptr) {
      self->CompleteAttempt(false, MQTTASYNC_FAILURE, 0, nullptr);
    } else {
      self->CompleteAttempt(false, r->code, static_cast<int>(r->reasonCode), r->message);
    }
  }
  void CompleteAttempt(bool ok, int code, int reason, const char* message) {
    std::shared_ptr<Op> op;
    {
      std::lock_guard lock(connect_mu_);
      op = attempt_;
    }
    if (op) op->Complete(ok, code, reason, message);
  }

  // Sends one message; the returned operation completes on the broker's
  // acknowledgement (QoS 1/2) or once written (QoS 0).
  Result<std::shared_ptr<Op>> Send(const MqttMessage& message) {
    Properties props(message);
    MQTTAsync_message m = MQTTAsync_message_initializer;
    m.payload = const_cast<char*>(message.payload.data());
    m.payloadlen = static_cast<int>(message.payload.size());
    m.qos = message.qos;
    m.retained = message.retained ? 1 : 0;
    m.properties = *props.get();
    Request req;
    int rc = MQTTAsync_sendMessage(client_, message.topic.c_str(), &m, req.options());
    if (rc != MQTTASYNC_SUCCESS) {
      req.Release();
      return Error::Unavailable("publish to " + message.topic + " failed: " + PahoError(rc));
    }
    return req.op();
  }

  // Disconnects cleanly if connected and waits (at most 5 s) for it.
  // Caller holds disconnect_mu_.
  void DisconnectAndWait() {
    if (client_ == nullptr || !MQTTAsync_isConnected(client_)) return;
    auto op = std::make_shared<Op>();
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
    d.timeout = 5000;
    d.onSuccess5 = OpSucceeded;
    d.onFailure5 = OpFailed;
    auto* context = new std::shared_ptr<Op>(op);
    d.context = context;
    int rc = MQTTAsync_disconnect(client_, &d);
    if (rc != MQTTASYNC_SUCCESS) {
      delete context;
      spdlog::debug("mqtt {}: disconnect: {}", options_.client_id, PahoError(rc));
      return;
    }
    op->WaitFor(std::chrono::seconds(5));
  }

  // The connect options, kept for the life of the client (Paho reads them
  // on Connect and on every reconnect attempt).
  void BuildConnectOptions() {
    std::lock_guard lock(connect_mu_);
    conn_ = MQTTAsync_connectOptions_initializer5;
    conn_.keepAliveInterval = options_.keepalive_s;
    conn_.cleanstart = options_.clean_start ? 1 : 0;
    conn_.connectTimeout = options_.connect_timeout_s;
    // With report_reconnect_failures the wrapper reconnects (ReconnectLoop).
    if (!options_.report_reconnect_failures) {
      conn_.automaticReconnect = 1;
      conn_.minRetryInterval = static_cast<int>(kMinReconnectDelay.count() / 1000);
      conn_.maxRetryInterval = static_cast<int>(kMaxReconnectDelay.count() / 1000);
    }
    if (!options_.username.empty()) conn_.username = options_.username.c_str();
    if (!options_.password.empty()) conn_.password = options_.password.c_str();
    if (IsTls(options_.uri)) {
      ssl_ = MQTTAsync_SSLOptions_initializer;
      ssl_.enableServerCertAuth = 1;
      ssl_.verify = options_.verify_hostname ? 1 : 0;
      ssl_.sslVersion = MQTT_SSL_VERSION_TLS_1_2;
      ssl_.ssl_error_cb = &PahoMqttClient::OnSslError;
      ssl_.ssl_error_context = this;
      if (!options_.ca_file.empty()) ssl_.trustStore = options_.ca_file.c_str();
      if (!options_.cert_file.empty()) ssl_.keyStore = options_.cert_file.c_str();
      if (!options_.key_file.empty()) ssl_.privateKey = options_.key_file.c_str();
      conn_.ssl = &ssl_;
    }
    if (options_.will) {
      will_ = MQTTAsync_willOptions_initializer;
      will_.topicName = options_.will->topic.c_str();
      will_.message = nullptr;
      will_.payload.data = options_.will->payload.data();
      will_.payload.len = static_cast<int>(options_.will->payload.size());
      will_.qos = options_.will->qos;
      will_.retained = options_.will->retained ? 1 : 0;
      conn_.will = &will_;
      MQTTProperties_free(&will_properties_);
      Properties props(*options_.will);
      will_properties_ = MQTTProperties_copy(props.get());
      conn_.willProperties = &will_properties_;
    }
    conn_.onSuccess5 = &PahoMqttClient::OnConnectSucceeded;
    conn_.onFailure5 = &PahoMqttClient::OnConnectFailed;
    conn_.context = this;
  }

  // One connection attempt with the stored options, blocking until it ends
  // (at most the connect timeout + 2 s, less if the client is stopping).
  // Returns why it failed, or nothing on success.
  std::optional<ConnectFailure> AttemptConnect() {
    {
      std::lock_guard lock(mu_);
      last_ssl_error_.clear();
    }
    ConnectFailure f;
    auto op = std::make_shared<Op>();
    int rc;
    {
      std::lock_guard lock(connect_mu_);
      attempt_ = op;
      rc = MQTTAsync_connect(client_, &conn_);
    }
    if (rc != MQTTASYNC_SUCCESS) {
      f.kind = ConnectFailure::Kind::kUnreachable;
      f.message = PahoError(rc);
      return f;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options_.connect_timeout_s + 2);
    while (!op->WaitFor(std::chrono::milliseconds(100))) {
      if (std::chrono::steady_clock::now() >= deadline || Stopping()) {
        f.kind = ConnectFailure::Kind::kTimeout;
        f.message = "no CONNACK within " + std::to_string(options_.connect_timeout_s + 2) + "s";
        return f;
      }
    }
    if (op->ok) return std::nullopt;
    f.message = op->Describe();
    // Paho C 1.3 reports a refusing CONNACK as the failure's code (its
    // reason code field stays 0 on connect).
    int code = op->code;
    int reason = op->reason;
    std::string ssl_error;
    {
      std::lock_guard lock(mu_);
      ssl_error = last_ssl_error_;
    }
    if (code >= 0x80 || reason >= 0x80) {
      f.kind = ConnectFailure::Kind::kRefused;
      f.reason_code = code >= 0x80 ? code : reason;
      f.message = "CONNACK reason 0x" + Hex2(f.reason_code) + " (" + ReasonName(f.reason_code) + ")";
    } else if (!ssl_error.empty()) {
      f.kind = ConnectFailure::Kind::kTls;
      f.message += " (TLS: " + ssl_error + ")";
    } else if (f.message.find("timeout") != std::string::npos || f.message.find("timed out") != std::string::npos) {
      f.kind = ConnectFailure::Kind::kTimeout;
    } else {
      f.kind = ConnectFailure::Kind::kUnreachable;
    }
    return f;
  }

  void ReportFailure(const ConnectFailure& failure) {
    dispatcher_.Post([this, failure] {
      ConnectFailureHandler h;
      {
        std::lock_guard lock(mu_);
        h = on_connect_failure_;
      }
      if (h) h(failure);
    });
  }

  // Asks ReconnectLoop for an attempt after `delay` (no-op without
  // report_reconnect_failures: Paho reconnects then).
  void RequestReconnect(std::chrono::milliseconds delay) {
    if (!options_.report_reconnect_failures) return;
    {
      std::lock_guard lock(reconnect_mu_);
      if (stop_reconnecting_) return;
      auto due = std::chrono::steady_clock::now() + delay;
      if (!reconnect_wanted_ || due < reconnect_due_) reconnect_due_ = due;
      reconnect_wanted_ = true;
    }
    reconnect_cv_.notify_all();
  }

  bool Stopping() {
    std::lock_guard lock(reconnect_mu_);
    return stop_reconnecting_;
  }

  void StopReconnecting() {
    {
      std::lock_guard lock(reconnect_mu_);
      stop_reconnecting_ = true;
    }
    reconnect_cv_.notify_all();
    if (reconnect_thread_.joinable() && std::this_thread::get_id() != reconnect_thread_.get_id()) {
      reconnect_thread_.join();
    }
  }

  void ReconnectLoop() {
    auto backoff = kMinReconnectDelay;
    std::unique_lock lock(reconnect_mu_);
    for (;;) {
      reconnect_cv_.wait(lock, [this] { return stop_reconnecting_ || reconnect_wanted_; });
      if (stop_reconnecting_) return;
      // Sleep until due; an earlier request (Reconnect) moves the due time.
      if (reconnect_cv_.wait_until(lock, reconnect_due_, [this] {
            return stop_reconnecting_ || std::chrono::steady_clock::now() >= reconnect_due_;
          }) && stop_reconnecting_) {
        return;
      }
      if (std::chrono::steady_clock::now() < reconnect_due_) continue;
      if (MQTTAsync_isConnected(client_)) {  // a request raced with a successful attempt
        reconnect_wanted_ = false;
        continue;
      }
      lock.unlock();
      auto failure = AttemptConnect();
      lock.lock();
      if (stop_reconnecting_) return;
      if (!failure) {
        reconnect_wanted_ = false;
        backoff = kMinReconnectDelay;
        continue;
      }
      spdlog::warn("mqtt {}: reconnect to {} failed: {}; next attempt in {}s", options_.client_id, options_.uri,
                   failure->message, std::chrono::duration_cast<std::chrono::seconds>(backoff).count());
      ReportFailure(*failure);
      reconnect_due_ = std::chrono::steady_clock::now() + backoff;
      backoff = std::min(backoff * 2, kMaxReconnectDelay);
    }
  }

  Status DoSubscribe(const std::string& filter, int qos) {
    Request req;
    int rc = MQTTAsync_subscribe(client_, filter.c_str(), qos, req.options());
    if (rc != MQTTASYNC_SUCCESS) {
      req.Release();
      return Error::Unavailable("subscribe " + filter + ": " + PahoError(rc));
    }
    const std::shared_ptr<Op>& op = req.op();
    if (!op->WaitFor(kOpTimeout)) return Error::Unavailable("subscribe " + filter + " timed out");
    if (op->reason >= 0x80) {
      return Error::PermissionDenied("broker refused subscription to " + filter + " (reason " +
                                     std::to_string(op->reason) + ")");
    }
    if (!op->ok) return Error::Unavailable("subscribe " + filter + ": " + op->Describe());
    return OkStatus();
  }

  void OnConnected() {
    std::map<std::string, int> subs;
    {
      std::lock_guard lock(mu_);
      subs = subscriptions_;
    }
    for (const auto& [filter, qos] : subs) {
      auto st = DoSubscribe(filter, qos);
      if (!st.ok()) spdlog::warn("mqtt {}: {}", options_.client_id, st.error().message);
    }
    Notify(true);
  }

  void Notify(bool up) {
    ConnectionHandler h;
    {
      std::lock_guard lock(mu_);
      h = on_connection_;
    }
    if (h) h(up);
  }

  MqttOptions options_;
  MQTTAsync client_ = nullptr;
  std::string create_error_;
  std::atomic<bool> connected_{false};
  mutable std::mutex mu_;
  std::map<std::string, int> subscriptions_;
  MessageHandler on_message_;
  ConnectionHandler on_connection_;
  ConnectFailureHandler on_connect_failure_;
  std::string last_ssl_error_;
  std::mutex connect_mu_;  // guards the connect options and attempt_
  MQTTAsync_connectOptions conn_ = MQTTAsync_connectOptions_initializer5;
  MQTTAsync_SSLOptions ssl_ = MQTTAsync_SSLOptions_initializer;
  MQTTAsync_willOptions will_ = MQTTAsync_willOptions_initializer;
  MQTTProperties will_properties_ = MQTTProperties_initializer;
  std::shared_ptr<Op> attempt_;  // the connection attempt in progress
  std::mutex disconnect_mu_;
  bool disconnected_ = false;
  // Wrapper reconnects (report_reconnect_failures only).
  std::mutex reconnect_mu_;
  std::condition_variable reconnect_cv_;
  bool reconnect_wanted_ = false;
  bool stop_reconnecting_ = false;
  std::chrono::steady_clock::time_point reconnect_due_;
  std::thread reconnect_thread_;
  // Declared last: destroyed first, so no handler runs on a dead client.
  Dispatcher dispatcher_;
};

}  // namespace

std::unique_ptr<MqttClient> MakePahoMqttClient(MqttOptions options) {
  return std::make_unique<PahoMqttClient>(std::move(options));
}

std::string RandomClientId(const std::string& prefix) {
  return prefix + "-" + tls::HexEncode(tls::RandomBytes(8));
}

}  // namespace cairn
