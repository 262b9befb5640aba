// StreamSubscriptions (stream_subscriptions.h).
#include "cairn/edge/runtime/stream_subscriptions.h"

#include <spdlog/spdlog.h>

#include "cairn/common/topics.h"

namespace cairn::edge::runtime {

struct StreamSubscriptions::State {
  State(MqttClient& m, std::string ws) : mqtt(m), workspace(std::move(ws)) {}
  MqttClient& mqtt;
  const std::string workspace;
  std::mutex mu;
  uint64_t next_id = 1;                                      // guarded by mu
  std::map<std::string, std::map<uint64_t, std::function<void(StreamMessage)>>> subscribers;  // by topic
};

namespace {

class Handle final : public Subscription {
 public:
  Handle(std::shared_ptr<StreamSubscriptions::State> state, std::string topic, uint64_t id)
      : state_(std::move(state)), topic_(std::move(topic)), id_(id) {}
  ~Handle() override {
    bool last = false;
    {
      std::lock_guard lock(state_->mu);
      auto it = state_->subscribers.find(topic_);
      if (it != state_->subscribers.end()) {
        it->second.erase(id_);
        if (it->second.empty()) {
          state_->subscribers.erase(it);
          last = true;
        }
      }
    }
    if (last) {
      if (auto s = state_->mqtt.Unsubscribe(topic_); !s.ok()) {
        spdlog::debug("unsubscribe {}: {}", topic_, s.error().message);
      }
    }
  }

 private:
  std::shared_ptr<StreamSubscriptions::State> state_;
  const std::string topic_;
  const uint64_t id_;
};

}  // namespace

StreamSubscriptions::StreamSubscriptions(MqttClient& mqtt, std::string workspace)
    : state_(std::make_shared<State>(mqtt, std::move(workspace))) {}

SubscribeFn StreamSubscriptions::Fn() {
  return [state = state_](const std::string& stream, std::function<void(StreamMessage)> on_message)
             -> Result<std::unique_ptr<Subscription>> {
    const std::string topic = topics::Data(state->workspace, stream);
    uint64_t id = 0;
    bool first = false;
    {
      std::lock_guard lock(state->mu);
      id = state->next_id++;
      auto& subs = state->subscribers[topic];
      first = subs.empty();
      subs.emplace(id, std::move(on_message));
    }
    auto handle = std::make_unique<Handle>(state, topic, id);
    if (first) {
      // While disconnected the client remembers the subscription and makes
      // it on the next connection; an error here is a refusal.
      if (Status s = state->mqtt.Subscribe(topic, 1); !s.ok()) {
        return Error{s.error().code, "subscribe to " + topic + ": " + s.error().message};
      }
    }
    return std::unique_ptr<Subscription>(std::move(handle));
  };
}

bool StreamSubscriptions::OnMessage(const MqttMessage& m) {
  std::lock_guard lock(state_->mu);
  auto it = state_->subscribers.find(m.topic);
  if (it == state_->subscribers.end()) return false;
  for (auto& [id, fn] : it->second) fn(StreamMessage{m.payload, m.content_type});
  return true;
}

}  // namespace cairn::edge::runtime
