#include "cairn/common/mqtt_paho.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include <mqtt/async_client.h>
#include <spdlog/spdlog.h>

#include "cairn/common/tls.h"

namespace cairn {
namespace {

constexpr auto kOpTimeout = std::chrono::seconds(10);

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
    });
    client_->set_disconnected_handler([this](const mqtt::properties&, mqtt::ReasonCode rc) {
      connected_ = false;
      spdlog::warn("mqtt {}: disconnected by broker (reason {})", options_.client_id,
                   static_cast<int>(rc));
      dispatcher_.Post([this] { Notify(false); });
    });
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
    auto builder = mqtt::connect_options_builder()
                       .mqtt_version(MQTTVERSION_5)
                       .clean_start(options_.clean_start)
                       .keep_alive_interval(std::chrono::seconds(options_.keepalive_s))
                       .connect_timeout(std::chrono::seconds(options_.connect_timeout_s))
                       .automatic_reconnect(std::chrono::seconds(1), std::chrono::seconds(15));
    if (!options_.username.empty()) builder.user_name(options_.username);
    if (!options_.password.empty()) builder.password(options_.password);
    std::string ssl_error;
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
    try {
      auto tok = client_->connect(builder.finalize());
      if (!tok->wait_for(std::chrono::seconds(options_.connect_timeout_s + 2))) {
        return Error::Unavailable("timed out connecting to " + options_.uri);
      }
    } catch (const mqtt::exception& e) {
      std::string detail = e.what();
      {
        std::lock_guard lock(mu_);
        if (!last_ssl_error_.empty()) detail += " (TLS: " + last_ssl_error_ + ")";
      }
      // MQTT v5 CONNACK reason codes 0x86 (bad user name or password) and
      // 0x87 (not authorized); Paho reports them as reason or return code.
      auto refused = [](int rc) { return rc == 0x86 || rc == 0x87; };
      if (refused(e.get_reason_code()) || refused(e.get_return_code())) {
        return Error::Unauthenticated("broker " + options_.uri + " refused the credentials: " +
                                      detail);
      }
      return Error::Unavailable("cannot connect to " + options_.uri + ": " + detail);
    }
    connected_ = true;
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

 private:
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
  std::string last_ssl_error_;
  std::mutex disconnect_mu_;
  bool disconnected_ = false;
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
