#include "cairn/common/events.h"

#include <spdlog/spdlog.h>

#include "cairn/common/topics.h"

namespace cairn {

void PublishEvent(MqttClient& mqtt, const Clock& clock, v1::WorkspaceEvent event) {
  event.set_timestamp_ms(clock.NowMs());
  MqttMessage m;
  m.topic = topics::Events(event.workspace());
  m.payload = event.SerializeAsString();
  m.qos = 1;
  m.content_type = "cairn.v1.WorkspaceEvent";
  if (auto st = mqtt.Publish(m); !st.ok()) spdlog::warn("event not published: {}", st.error().message);
}

}  // namespace cairn
