// MqttClient: the small slice of MQTT v5 that Cairn uses. PahoMqttClient
// (mqtt_paho.h) is the real one; FakeMqttClient (common/testing) is for unit
// tests.
// Thread-safety: all methods may be called from any thread. Handlers run on
// one dispatcher thread owned by the client (never on the network thread), so
// a handler may call Publish/Subscribe and wait.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cairn/common/result.h"

namespace cairn {

struct MqttMessage {
  std::string topic;
  std::string payload;
  int qos = 1;
  bool retained = false;
  // MQTT v5 properties.
  std::string content_type;    // e.g. "cairn.v1.NodeHealth"
  std::string response_topic;
  std::string correlation_data;
  std::vector<std::pair<std::string, std::string>> user_properties;
  uint32_t message_expiry_s = 0;  // 0 = none

  // The value of the first user property called `name`, or "".
  std::string UserProperty(const std::string& name) const;
};

// A broker's refusal of one PUBLISH (PUBACK reason code >= 0x80), as
// PublishAndWait reports it: kFailedPrecondition with the code in the
// message. PublishRefusalReason gives the code back (0: `error` is not such
// a refusal, e.g. a timeout or a lost connection).
Error PublishRefused(const std::string& topic, int reason_code);
int PublishRefusalReason(const Error& error);

// Why one connection attempt failed.
struct ConnectFailure {
  enum class Kind {
    kRefused,      // the broker answered CONNACK with a failure reason code
    kTls,          // the TLS handshake failed (certificate, CA, protocol)
    kUnreachable,  // no TCP connection, or it closed before a CONNACK
    kTimeout,      // no answer within the connect timeout
  };
  Kind kind = Kind::kUnreachable;
  // MQTT v5 CONNACK reason code when kind == kRefused (e.g. 0x86 bad user
  // name or password, 0x87 not authorized), else 0.
  int reason_code = 0;
  std::string message;  // for logs
};

class MqttClient {
 public:
  using MessageHandler = std::function<void(const MqttMessage&)>;
  using ConnectionHandler = std::function<void(bool connected)>;
  using ConnectFailureHandler = std::function<void(const ConnectFailure&)>;

  virtual ~MqttClient() = default;

  // Connects (blocking, bounded by the connect timeout). After a successful
  // first connect the client reconnects by itself and re-subscribes.
  virtual Status Connect() = 0;
  // Publishes. Fails at once when disconnected unless the client buffers
  // while offline (a Paho option).
  virtual Status Publish(const MqttMessage& message) = 0;
  // Publishes and waits until the broker acknowledged it (QoS 1: PUBACK) or
  // `timeout` passed. A broker refusal (reason code >= 0x80) is an error
  // made by PublishRefused.
  // The default (test doubles) is Publish.
  virtual Status PublishAndWait(const MqttMessage& message, std::chrono::milliseconds timeout) {
    (void)timeout;
    return Publish(message);
  }
  // Subscribes (blocking until the broker acknowledges); remembered and
  // re-established after each reconnect.
  virtual Status Subscribe(const std::string& filter, int qos = 1) = 0;
  virtual Status Unsubscribe(const std::string& filter) = 0;
  // Clean disconnect (no last will). Idempotent. After it returns no
  // handler runs any more (the client cannot be connected again).
  virtual void Disconnect() = 0;
  virtual bool IsConnected() const = 0;
  virtual std::string ClientId() const = 0;
  // The MQTT username, i.e. the broker principal ("user:alice",
  // "node:ws:name"); part of the client's private RPC reply prefix.
  virtual std::string Username() const = 0;

  // Set before Connect().
  virtual void SetMessageHandler(MessageHandler handler) = 0;
  virtual void SetConnectionHandler(ConnectionHandler handler) = 0;
  // Called (on the dispatcher thread) for every failed connection attempt
  // the client makes: Connect() (which also returns the error) and the
  // automatic reconnects (PahoMqttClient: only with
  // MqttOptions::report_reconnect_failures). A client that cannot tell
  // ignores the handler.
  virtual void SetConnectFailureHandler(ConnectFailureHandler handler) { (void)handler; }

  // Drops the connection and connects again at once, reading the TLS
  // certificate and key files anew (after a certificate renewal); the
  // connection handler sees the loss and the new connection, subscriptions
  // are re-established. Returns once the old connection is closed; the new
  // one follows asynchronously. Fails if the client does not support it.
  virtual Status Reconnect() { return Error::FailedPrecondition("this MQTT client cannot reconnect on demand"); }
};

}  // namespace cairn
