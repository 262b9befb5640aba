// StreamSubscriptions: the node's MQTT client shared by every `mqtt` input.
// Fn() is the SubscribeFn a PipelineContext carries; the client's message
// handler gives each message to OnMessage first, which hands messages of a
// subscribed data stream (cairn/v1/ws/{ws}/data/{stream}) to that stream's
// subscribers. A stream is subscribed on the broker (QoS 1) while at least
// one input wants it; the MQTT client itself renews subscriptions after a
// reconnect.
//
// Thread-safety: all methods are thread-safe. Subscribers' callbacks run on
// the MQTT client's thread under this object's lock, so a Subscription's
// destructor returns only once no callback of it runs; callbacks must be
// quick (copy and return). Broker calls (subscribe/unsubscribe) happen
// outside the lock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cairn/common/mqtt_client.h"
#include "cairn/edge/runtime/component.h"

namespace cairn::edge::runtime {

class StreamSubscriptions {
 public:
  // `mqtt` must outlive every Subscription handed out.
  StreamSubscriptions(MqttClient& mqtt, std::string workspace);

  // The function mqtt inputs subscribe with (PipelineContext::subscribe).
  SubscribeFn Fn();

  // True if `m` is on a data stream somebody subscribed to here (it was
  // handed to them; the caller is done with it).
  bool OnMessage(const MqttMessage& m);

  struct State;  // opaque; shared with the handles it gave out

 private:
  std::shared_ptr<State> state_;
};

}  // namespace cairn::edge::runtime
