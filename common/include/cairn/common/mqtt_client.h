// MqttClient: the small slice of MQTT v5 that Cairn uses. PahoMqttClient
// (mqtt_paho.h) is the real one; FakeMqttClient (common/testing) is for unit
// tests.
// Thread-safety: all methods may be called from any thread. Handlers run on
// one dispatcher thread owned by the client (never on the network thread), so
// a handler may call Publish/Subscribe and wait.
#pragma once

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

class MqttClient {
 public:
  using MessageHandler = std::function<void(const MqttMessage&)>;
  using ConnectionHandler = std::function<void(bool connected)>;

  virtual ~MqttClient() = default;

  // Connects (blocking, bounded by the connect timeout). After a successful
  // first connect the client reconnects by itself and re-subscribes.
  virtual Status Connect() = 0;
  // Publishes. Fails at once when disconnected unless the client buffers
  // while offline (a Paho option).
  virtual Status Publish(const MqttMessage& message) = 0;
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
};

}  // namespace cairn
