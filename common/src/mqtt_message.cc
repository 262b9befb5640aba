#include <cstdio>
#include <cstdlib>

#include "cairn/common/mqtt_client.h"

namespace cairn {
namespace {
constexpr char kRefusalMark[] = " (reason 0x";
}  // namespace

std::string MqttMessage::UserProperty(const std::string& name) const {
  for (const auto& [key, value] : user_properties) {
    if (key == name) return value;
  }
  return "";
}

Error PublishRefused(const std::string& topic, int reason_code) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "%02x", reason_code & 0xff);
  return Error::FailedPrecondition("the broker refused the message on " + topic + kRefusalMark + hex + ")");
}

int PublishRefusalReason(const Error& error) {
  if (error.code != ErrorCode::kFailedPrecondition) return 0;
  const size_t at = error.message.rfind(kRefusalMark);
  if (at == std::string::npos) return 0;
  const std::string hex = error.message.substr(at + sizeof kRefusalMark - 1);
  char* end = nullptr;
  const long v = std::strtol(hex.c_str(), &end, 16);
  if (end == hex.c_str() || *end != ')' || v < 0x80 || v > 0xff) return 0;
  return static_cast<int>(v);
}

}  // namespace cairn
