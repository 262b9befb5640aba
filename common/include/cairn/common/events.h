// Publishing WorkspaceEvents on cairn/v1/ws/{ws}/events (services only).
// Thread-safety: as the MqttClient.
#pragma once

#include "cairn/common/clock.h"
#include "cairn/common/mqtt_client.h"
#include "cairn/v1/events.pb.h"

namespace cairn {

// Stamps the time and publishes `event` (QoS 1, content type
// cairn.v1.WorkspaceEvent). Failures are logged, not returned: an event is a
// notification, the state it reports is already in PostgreSQL.
void PublishEvent(MqttClient& mqtt, const Clock& clock, v1::WorkspaceEvent event);

}  // namespace cairn
