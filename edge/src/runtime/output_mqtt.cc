// `mqtt` output: publishes each record to the workspace data stream
// cairn/v1/ws/{ws}/data/{stream} through the Env's publish function (the
// node's link). When the node's queue asks to wait (ResourceExhausted: the
// link is up and the queue near its bound) the record is offered again a
// little later and the input pauses meanwhile (backpressure, nothing lost);
// any other failed publish drops that record (counted); the pipeline keeps
// running.
#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

// How soon a held-back record is offered again: the drainer sends a batch
// about every 25 ms at full speed.
constexpr std::chrono::milliseconds kBackpressureRetry{20};

class MqttOutput final : public Output {
 public:
  MqttOutput(PublishFn publish, std::string stream, int qos)
      : publish_(std::move(publish)), stream_(std::move(stream)), qos_(qos) {}

  WriteResult Write(const Record& record) override {
    try {
      Status s = publish_(stream_, record.Text(), qos_);
      if (s.ok()) return {};
      if (s.error().code == ErrorCode::kResourceExhausted) {
        return {WriteResult::Kind::kRetry, "", kBackpressureRetry};  // busy, not failing
      }
      return {WriteResult::Kind::kDropped,
              "publish to stream " + stream_ + ": " + s.error().message};
    } catch (const std::exception& e) {
      return {WriteResult::Kind::kDropped, "publish to stream " + stream_ + ": " + e.what()};
    }
  }

 private:
  const PublishFn publish_;
  const std::string stream_;
  const int qos_;
};

}  // namespace

void RegisterMqttOutput(ComponentRegistry* r) {
  (void)r->AddOutput("mqtt", [](const google::protobuf::Message& m, const std::string& path,
                                const Env& env) -> Result<std::unique_ptr<Output>> {
    const auto& c = static_cast<const v1::MqttOutput&>(m);
    if (!env.publish) {
      return Error::FailedPrecondition(path + ": this node has no publish function (no broker)");
    }
    return std::unique_ptr<Output>(
        std::make_unique<MqttOutput>(env.publish, c.stream(), static_cast<int>(c.qos())));
  });
}

}  // namespace cairn::edge::runtime
