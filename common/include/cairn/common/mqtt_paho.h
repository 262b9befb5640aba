// PahoMqttClient: MqttClient over the Eclipse Paho C asynchronous client
// (libpaho-mqtt3as 1.3: MQTT v5, TLS). The C library, not Paho C++, so that
// cairn-edge can link it statically (docs/design/edge-footprint.md).
// Thread-safety: see mqtt_client.h.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cairn/common/mqtt_client.h"

namespace cairn {

struct MqttOptions {
  std::string uri;        // ssl://host:port or tcp://host:port
  std::string client_id;  // empty: generated
  std::string username;
  std::string password;
  // TLS: CA bundle that verifies the broker, and for mutual TLS the client
  // certificate and key files.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool verify_hostname = true;
  int keepalive_s = 10;
  int connect_timeout_s = 10;
  bool clean_start = true;
  // Last will, published by the broker if the connection is lost.
  std::optional<MqttMessage> will;
  // Offline buffering (store-and-forward) in memory.
  bool buffer_while_disconnected = false;
  int max_buffered = 10000;
  // Reconnect in the wrapper (back-off 1 s doubling to 15 s) instead of with
  // Paho's automatic reconnect, which reports nothing about failed attempts:
  // every failed reconnect then reaches the ConnectFailureHandler with its
  // CONNACK reason code, and Reconnect() is supported.
  bool report_reconnect_failures = false;
};

std::unique_ptr<MqttClient> MakePahoMqttClient(MqttOptions options);

// A random client id: "{prefix}-{16 hex}".
std::string RandomClientId(const std::string& prefix);

}  // namespace cairn
