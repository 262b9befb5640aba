#include "cairn/common/mqtt_client.h"

namespace cairn {

std::string MqttMessage::UserProperty(const std::string& name) const {
  for (const auto& [key, value] : user_properties) {
    if (key == name) return value;
  }
  return "";
}

}  // namespace cairn
