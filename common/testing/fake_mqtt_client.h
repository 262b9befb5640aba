// FakeMqttClient: an in-memory MqttClient for unit tests. Several fakes can
// share one FakeBroker, which routes publishes to matching subscriptions
// (real + and # matching, $share prefixes honoured as plain filters) and keeps
// retained messages. Handlers run synchronously on the publishing thread.
// Thread-safety: thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cairn/common/mqtt_client.h"

namespace cairn::testing {

class FakeMqttClient;

class FakeBroker {
 public:
  void Publish(const MqttMessage& message, const std::string& principal);
  void Attach(FakeMqttClient* client);
  void Detach(FakeMqttClient* client);
  // Every message ever published, in order.
  std::vector<MqttMessage> Published() const;
  std::map<std::string, MqttMessage> Retained() const;
  void DeliverRetained(FakeMqttClient* client, const std::string& filter);

 private:
  mutable std::mutex mu_;
  std::set<FakeMqttClient*> clients_;
  std::vector<MqttMessage> published_;
  std::map<std::string, MqttMessage> retained_;
};

class FakeMqttClient final : public MqttClient {
 public:
  FakeMqttClient(std::shared_ptr<FakeBroker> broker, std::string client_id,
                 std::string principal = "");
  ~FakeMqttClient() override;

  Status Connect() override;
  Status Publish(const MqttMessage& message) override;
  Status Subscribe(const std::string& filter, int qos) override;
  Status Unsubscribe(const std::string& filter) override;
  void Disconnect() override;
  bool IsConnected() const override;
  std::string ClientId() const override { return client_id_; }
  std::string Username() const override { return principal_; }
  void SetMessageHandler(MessageHandler handler) override;
  void SetConnectionHandler(ConnectionHandler handler) override;
  void SetConnectFailureHandler(ConnectFailureHandler handler) override;
  // Drops and restores the connection at once (counted in reconnects()).
  Status Reconnect() override;

  // Test hooks.
  void SetConnected(bool connected);  // simulates link loss / recovery
  // Simulates one failed automatic reconnect: the failure handler runs.
  void ReportConnectFailure(const ConnectFailure& failure);
  // The next Connect() fails with `failure` (and reports it).
  void FailNextConnect(const ConnectFailure& failure);
  int reconnects() const;
  bool Wants(const std::string& topic) const;
  void Deliver(const MqttMessage& message);

 private:
  std::shared_ptr<FakeBroker> broker_;
  std::string client_id_;
  std::string principal_;
  mutable std::mutex mu_;
  bool connected_ = false;
  std::set<std::string> filters_;
  MessageHandler on_message_;
  ConnectionHandler on_connection_;
  ConnectFailureHandler on_connect_failure_;
  std::vector<ConnectFailure> next_connect_failures_;
  int reconnects_ = 0;
};

}  // namespace cairn::testing
