#include "cairn/common/mqtt_paho.h"

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <mqtt/async_client.h>
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

MqttMessage FromPaho(const mqtt::const_message_ptr& m) {
  MqttMessage out;
  out.topic = m->get_topic();
  out.payload = m->get_payload_str();
  out.qos = m->get_qos();
  out.retained = m->is_retained();
  const auto& props = m->get_properties();
  if (props.contains(mqtt::property::CONTENT_TYPE)) {
    out.content_type = mqtt::get<std::string>(props, mqtt::property::CONTENT_TYPE);
  }
  if (props.contains(mqtt::property::RESPONSE_TOPIC)) {
    out.response_topic = mqtt::get<std::string>(props, mqtt::property::RESPONSE_TOPIC);
  }
  if (props.contains(mqtt::property::CORRELATION_DATA)) {
    out.correlation_data = mqtt::get<std::string>(props, mqtt::property::CORRELATION_DATA);
  }
  size_t n = props.count(mqtt::property::USER_PROPERTY);
  for (size_t i = 0; i < n; ++i) {
    auto [k, v] = mqtt::get<mqtt::string_pair>(props, mqtt::property::USER_PROPERTY, i);
    out.user_properties.emplace_back(k, v);
  }
  return out;
}

mqtt::message_ptr ToPaho(const MqttMessage& m) {
  auto msg = mqtt::make_message(m.topic, m.payload, m.qos, m.retained);
  mqtt::properties props;
  if (!m.content_type.empty()) props.add({mqtt::property::CONTENT_TYPE, m.content_type});
  if (!m.response_topic.empty()) props.add({mqtt::property::RESPONSE_TOPIC, m.response_topic});
  if (!m.correlation_data.empty()) {
    props.add({mqtt::property::CORRELATION_DATA, m.correlation_data});
  }
  if (m.message_expiry_s > 0) {
    props.add({mqtt::property::MESSAGE_EXPIRY_INTERVAL, static_cast<int>(m.message_expiry_s)});
  }
  for (const auto& [k, v] : m.user_properties) props.add({mqtt::property::USER_PROPERTY, k, v});
  msg->set_properties(std::move(props));
  return msg;
}

bool IsTls(const std::string& uri) {
  return uri.rfind("ssl://", 0) == 0 || uri.rfind("mqtts://", 0) == 0;
}

class PahoMqttClient final : public MqttClient {
 public:
  explicit PahoMqttClient(MqttOptions options) : options_(std::move(options)) {
    if (options_.client_id.empty()) options_.client_id = RandomClientId("cairn");
    mqtt::create_options create(MQTTVERSION_5, options_.max_buffered);
    if (options_.buffer_while_disconnected) {
      create.set_send_while_disconnected(true, true);
      create.set_delete_oldest_messages(true);
    }
    client_ = std::make_unique<mqtt::async_client>(options_.uri, options_.client_id, create,
                                                   nullptr);
    client_->set_message_callback([this](mqtt::const_message_ptr m) {
      MqttMessage msg = FromPaho(m);
      dispatcher_.Post([this, msg = std::move(msg)] {
        MessageHandler h;
        {
          std::lock_guard lock(mu_);
          h = on_message_;
        }
        if (h) h(msg);
      });
    });
    client_->set_connected_handler([this](const std::string&) {
      connected_ = true;
      dispatcher_.Post([this] { OnConnected(); });
    });
    client_->set_connection_lost_handler([this](const std::string& cause) {
      connected_ = false;
      spdlog::warn("mqtt {}: connection lost{}{}", options_.client_id, cause.empty() ? "" : ": ",
                   cause);
      dispatcher_.Post([this] { Notify(false); });
      RequestReconnect(kMinReconnectDelay);
    });
    client_->set_disconnected_handler([this](const mqtt::properties&, mqtt::ReasonCode rc) {
      connected_ = false;
      spdlog::warn("mqtt {}: disconnected by broker (reason {})", options_.client_id,
                   static_cast<int>(rc));
      dispatcher_.Post([this] { Notify(false); });
      RequestReconnect(kMinReconnectDelay);
    });
    if (options_.report_reconnect_failures) reconnect_thread_ = std::thread([this] { ReconnectLoop(); });
  }

  ~PahoMqttClient() override {
    Disconnect();
    // Paho refuses to change callbacks while an automatic reconnect is in
    // progress (e.g. a revoked node being turned away); the dispatcher is
    // stopped already, so a late callback only posts into a dead queue.
    try {
      client_->disable_callbacks();
    } catch (const mqtt::exception& e) {
      spdlog::debug("mqtt {}: callbacks not disabled: {}", options_.client_id, e.what());
    }
    // Destroy Paho first, while every member its callbacks touch is alive.
    client_.reset();
  }

  Status Connect() override {
    {
      std::lock_guard lock(connect_mu_);
      connect_options_ = BuildConnectOptions();
    }
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
      try {
        if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(5));
      } catch (const mqtt::exception& e) {
        spdlog::debug("mqtt {}: disconnect before reconnect: {}", options_.client_id, e.what());
      }
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
    try {
      client_->publish(ToPaho(message));
    } catch (const mqtt::exception& e) {
      return Error::Unavailable("publish to " + message.topic + " failed: " + e.what());
    }
    return OkStatus();
  }

  Status PublishAndWait(const MqttMessage& message, std::chrono::milliseconds timeout) override {
    if (!connected_) return Error::Unavailable("not connected to the broker");
    try {
      mqtt::delivery_token_ptr token = client_->publish(ToPaho(message));
      if (!token->wait_for(timeout)) {
        return Error::DeadlineExceeded("no acknowledgement for " + message.topic + " within " +
                                       std::to_string(timeout.count()) + " ms");
      }
      const int reason = static_cast<int>(token->get_reason_code());
      if (reason >= 0x80) return PublishRefused(message.topic, reason);
    } catch (const mqtt::exception& e) {
      return Error::Unavailable("publish to " + message.topic + " failed: " + e.what());
    }
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
    try {
      client_->unsubscribe(filter)->wait_for(kOpTimeout);
    } catch (const mqtt::exception& e) {
      return Error::Unavailable("unsubscribe " + filter + ": " + e.what());
    }
    return OkStatus();
  }

  void Disconnect() override {
    StopReconnecting();
    std::lock_guard lock(disconnect_mu_);
    if (disconnected_) return;
    disconnected_ = true;
    try {
      if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(5));
    } catch (const mqtt::exception&) {
    }
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
  mqtt::connect_options BuildConnectOptions() {
    auto builder = mqtt::connect_options_builder()
                       .mqtt_version(MQTTVERSION_5)
                       .clean_start(options_.clean_start)
                       .keep_alive_interval(std::chrono::seconds(options_.keepalive_s))
                       .connect_timeout(std::chrono::seconds(options_.connect_timeout_s));
    // With report_reconnect_failures the wrapper reconnects (ReconnectLoop).
    if (!options_.report_reconnect_failures) {
      builder.automatic_reconnect(kMinReconnectDelay, kMaxReconnectDelay);
    }
    if (!options_.username.empty()) builder.user_name(options_.username);
    if (!options_.password.empty()) builder.password(options_.password);
    if (IsTls(options_.uri)) {
      auto ssl = mqtt::ssl_options_builder()
                     .enable_server_cert_auth(true)
                     .verify(options_.verify_hostname)
                     .ssl_version(3 /* MQTT_SSL_VERSION_TLS_1_2 */)
                     .error_handler([this](const std::string& e) {
                       std::lock_guard lock(mu_);
                       last_ssl_error_ = e;
                     });
      if (!options_.ca_file.empty()) ssl.trust_store(options_.ca_file);
      if (!options_.cert_file.empty()) ssl.key_store(options_.cert_file);
      if (!options_.key_file.empty()) ssl.private_key(options_.key_file);
      builder.ssl(ssl.finalize());
    }
    if (options_.will) {
      builder.will(*ToPaho(*options_.will));
    }
    return builder.finalize();
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
    try {
      mqtt::token_ptr tok;
      {
        std::lock_guard lock(connect_mu_);
        tok = client_->connect(connect_options_);
      }
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(options_.connect_timeout_s + 2);
      while (!tok->wait_for(std::chrono::milliseconds(100))) {
        if (std::chrono::steady_clock::now() >= deadline || Stopping()) {
          f.kind = ConnectFailure::Kind::kTimeout;
          f.message = "no CONNACK within " + std::to_string(options_.connect_timeout_s + 2) + "s";
          return f;
        }
      }
      return std::nullopt;
    } catch (const mqtt::exception& e) {
      f.message = e.what();
      // Paho C 1.3 reports a refusing CONNACK as the failure's return code
      // (its reason code field stays 0 on connect); Paho C++ 1.2 carries
      // both into the exception.
      int rc = e.get_return_code();
      int reason = static_cast<int>(e.get_reason_code());
      std::string ssl_error;
      {
        std::lock_guard lock(mu_);
        ssl_error = last_ssl_error_;
      }
      if (rc >= 0x80 || reason >= 0x80) {
        f.kind = ConnectFailure::Kind::kRefused;
        f.reason_code = rc >= 0x80 ? rc : reason;
        f.message = "CONNACK reason 0x" + Hex2(f.reason_code) + " (" + ReasonName(f.reason_code) + ")";
      } else if (!ssl_error.empty()) {
        f.kind = ConnectFailure::Kind::kTls;
        f.message += " (TLS: " + ssl_error + ")";
      } else if (f.message.find("timeout") != std::string::npos) {
        f.kind = ConnectFailure::Kind::kTimeout;
      } else {
        f.kind = ConnectFailure::Kind::kUnreachable;
      }
      return f;
    }
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
      if (client_->is_connected()) {  // a request raced with a successful attempt
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
    try {
      auto tok = client_->subscribe(filter, qos);
      if (!tok->wait_for(kOpTimeout)) return Error::Unavailable("subscribe " + filter + " timed out");
      auto resp = tok->get_subscribe_response();
      for (auto rc : resp.get_reason_codes()) {
        if (static_cast<int>(rc) >= 0x80) {
          return Error::PermissionDenied("broker refused subscription to " + filter + " (reason " +
                                         std::to_string(static_cast<int>(rc)) + ")");
        }
      }
    } catch (const mqtt::exception& e) {
      return Error::Unavailable("subscribe " + filter + ": " + e.what());
    }
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
  std::unique_ptr<mqtt::async_client> client_;
  std::atomic<bool> connected_{false};
  mutable std::mutex mu_;
  std::map<std::string, int> subscriptions_;
  MessageHandler on_message_;
  ConnectionHandler on_connection_;
  ConnectFailureHandler on_connect_failure_;
  std::string last_ssl_error_;
  std::mutex connect_mu_;  // guards connect_options_
  mqtt::connect_options connect_options_;
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
