#include "fake_mqtt_client.h"

#include <optional>

#include "cairn/common/mqtt_client.h"
#include "cairn/common/topics.h"

namespace cairn::testing {

void FakeBroker::Publish(const MqttMessage& message, const std::string& principal) {
  MqttMessage stamped = message;
  if (!principal.empty()) stamped.user_properties.emplace_back("cairn-principal", principal);
  std::vector<FakeMqttClient*> targets;
  {
    std::lock_guard lock(mu_);
    published_.push_back(stamped);
    if (stamped.retained) {
      if (stamped.payload.empty()) {
        retained_.erase(stamped.topic);
      } else {
        retained_[stamped.topic] = stamped;
      }
    }
    for (auto* c : clients_) {
      if (c->Wants(stamped.topic)) targets.push_back(c);
    }
  }
  // Live deliveries are not flagged retained (as in MQTT).
  stamped.retained = false;
  for (auto* c : targets) c->Deliver(stamped);
}

void FakeBroker::Attach(FakeMqttClient* client) {
  std::lock_guard lock(mu_);
  clients_.insert(client);
}

void FakeBroker::Detach(FakeMqttClient* client) {
  std::lock_guard lock(mu_);
  clients_.erase(client);
}

std::vector<MqttMessage> FakeBroker::Published() const {
  std::lock_guard lock(mu_);
  return published_;
}

std::map<std::string, MqttMessage> FakeBroker::Retained() const {
  std::lock_guard lock(mu_);
  return retained_;
}

void FakeBroker::DeliverRetained(FakeMqttClient* client, const std::string& filter) {
  std::vector<MqttMessage> matches;
  {
    std::lock_guard lock(mu_);
    for (const auto& [topic, msg] : retained_) {
      if (topics::Matches(filter, topic)) matches.push_back(msg);
    }
  }
  for (const auto& m : matches) client->Deliver(m);
}

FakeMqttClient::FakeMqttClient(std::shared_ptr<FakeBroker> broker, std::string client_id,
                               std::string principal)
    : broker_(std::move(broker)), client_id_(std::move(client_id)), principal_(std::move(principal)) {}

FakeMqttClient::~FakeMqttClient() { broker_->Detach(this); }

Status FakeMqttClient::Connect() {
  std::optional<ConnectFailure> failure;
  {
    std::lock_guard lock(mu_);
    if (!next_connect_failures_.empty()) {
      failure = next_connect_failures_.front();
      next_connect_failures_.erase(next_connect_failures_.begin());
    }
  }
  if (failure) {
    ReportConnectFailure(*failure);
    if (failure->kind == ConnectFailure::Kind::kRefused) return Error::Unauthenticated(failure->message);
    return Error::Unavailable(failure->message);
  }
  SetConnected(true);
  return OkStatus();
}

Status FakeMqttClient::Reconnect() {
  {
    std::lock_guard lock(mu_);
    ++reconnects_;
  }
  SetConnected(false);
  SetConnected(true);
  return OkStatus();
}

void FakeMqttClient::SetConnectFailureHandler(ConnectFailureHandler handler) {
  std::lock_guard lock(mu_);
  on_connect_failure_ = std::move(handler);
}

void FakeMqttClient::ReportConnectFailure(const ConnectFailure& failure) {
  ConnectFailureHandler handler;
  {
    std::lock_guard lock(mu_);
    handler = on_connect_failure_;
  }
  if (handler) handler(failure);
}

void FakeMqttClient::FailNextConnect(const ConnectFailure& failure) {
  std::lock_guard lock(mu_);
  next_connect_failures_.push_back(failure);
}

int FakeMqttClient::reconnects() const {
  std::lock_guard lock(mu_);
  return reconnects_;
}

Status FakeMqttClient::Publish(const MqttMessage& message) {
  if (!IsConnected()) return Error::Unavailable("not connected");
  broker_->Publish(message, principal_);
  return OkStatus();
}

Status FakeMqttClient::Subscribe(const std::string& filter, int) {
  {
    std::lock_guard lock(mu_);
    filters_.insert(filter);
  }
  broker_->DeliverRetained(this, filter);
  return OkStatus();
}

Status FakeMqttClient::Unsubscribe(const std::string& filter) {
  std::lock_guard lock(mu_);
  filters_.erase(filter);
  return OkStatus();
}

void FakeMqttClient::Disconnect() { SetConnected(false); }

bool FakeMqttClient::IsConnected() const {
  std::lock_guard lock(mu_);
  return connected_;
}

void FakeMqttClient::SetMessageHandler(MessageHandler handler) {
  std::lock_guard lock(mu_);
  on_message_ = std::move(handler);
}

void FakeMqttClient::SetConnectionHandler(ConnectionHandler handler) {
  std::lock_guard lock(mu_);
  on_connection_ = std::move(handler);
}

void FakeMqttClient::SetConnected(bool connected) {
  ConnectionHandler handler;
  {
    std::lock_guard lock(mu_);
    if (connected_ == connected) return;
    connected_ = connected;
    handler = on_connection_;
  }
  if (connected) {
    broker_->Attach(this);
  } else {
    broker_->Detach(this);
  }
  if (handler) handler(connected);
}

bool FakeMqttClient::Wants(const std::string& topic) const {
  std::lock_guard lock(mu_);
  if (!connected_) return false;
  for (const auto& f : filters_) {
    if (topics::Matches(f, topic)) return true;
  }
  return false;
}

void FakeMqttClient::Deliver(const MqttMessage& message) {
  MessageHandler handler;
  {
    std::lock_guard lock(mu_);
    handler = on_message_;
  }
  if (handler) handler(message);
}

}  // namespace cairn::testing
