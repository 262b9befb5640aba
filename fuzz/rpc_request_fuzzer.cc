// Fuzz target: what a client sends to a service over MQTT.
//   1. Every message type of package cairn.v1 decoded from the wire
//      (ParseFromString), then serialized, sized and printed, as a service
//      does with requests and a node with desired state and pipeline configs.
//      The type is named by the input (or picked from the generated pool), so
//      new request types are covered without editing this file.
//   2. The checks services run before any handler or database: the scheduler's
//      ApplyPipeline checks (names, selector, ValidatePipelineSpec, digest) and
//      the registry's CSR signing (Bootstrap, RenewCertificate).
//   3. RpcServer::OnMessage, the handler-independent gate of every service
//      (topic, response topic, principal stamps, size limit, method lookup),
//      on a message whose topic, response topic and user properties come from
//      the input, with handlers that decode every request type.
// Input: lines: message type ("cairn.v1.BootstrapRequest"), RPC method,
// response topic, user property count ('0'..'3'), that many "key=value"
// lines; the rest is the payload.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include "cairn/common/metrics.h"
#include "cairn/common/mqtt_client.h"
#include "cairn/common/pipeline_spec.h"
#include "cairn/common/rpc.h"
#include "cairn/common/selector.h"
#include "cairn/common/tls.h"
#include "cairn/common/topics.h"
#include "cairn/v1/edge_cache.pb.h"
#include "cairn/v1/events.pb.h"
#include "cairn/v1/node.pb.h"
#include "cairn/v1/pipeline.pb.h"
#include "cairn/v1/rpc.pb.h"
#include "fuzz_input.h"

namespace {

namespace pb = google::protobuf;

// An MqttClient that keeps only the last message published (RpcServer's reply).
class LastPublishClient final : public cairn::MqttClient {
 public:
  cairn::Status Connect() override { return cairn::OkStatus(); }
  cairn::Status Publish(const cairn::MqttMessage& m) override {
    last = m;
    return cairn::OkStatus();
  }
  cairn::Status Subscribe(const std::string&, int) override { return cairn::OkStatus(); }
  cairn::Status Unsubscribe(const std::string&) override { return cairn::OkStatus(); }
  void Disconnect() override {}
  bool IsConnected() const override { return true; }
  std::string ClientId() const override { return "svc-fuzz"; }
  std::string Username() const override { return "svc:registry"; }
  void SetMessageHandler(MessageHandler) override {}
  void SetConnectionHandler(ConnectionHandler) override {}
  cairn::MqttMessage last;
};

struct World {
  std::vector<const pb::Descriptor*> types;
  LastPublishClient client;
  cairn::Metrics metrics;
  std::unique_ptr<cairn::RpcServer> server;
  cairn::tls::CertAuthority ca;
};

World* world = nullptr;

void AddTypesOf(const pb::FileDescriptor* file, std::vector<const pb::Descriptor*>* out) {
  for (int i = 0; i < file->message_type_count(); ++i) out->push_back(file->message_type(i));
}

// The scheduler's ApplyPipeline checks, before it touches the database.
void CheckPipeline(const cairn::v1::Pipeline& p) {
  if (!cairn::topics::ValidateName("pipeline", p.name()).ok()) return;
  if (!cairn::topics::ValidateName("workspace", p.workspace()).ok()) return;
  auto sel = cairn::Selector::Parse(p.selector());
  if (!sel.ok()) return;
  (void)sel->ToString();
  if (!cairn::ValidatePipelineSpec(p.spec()).ok()) return;
  (void)cairn::PipelineDigest(p.spec());
}

// The registry's CSR handling (it refuses CSRs over 16 KiB first).
void CheckCsr(const std::string& csr_pem) {
  if (csr_pem.size() > 16 * 1024) return;
  (void)cairn::tls::SignClientCsr(world->ca, csr_pem, "node:demo:n1", 1);
}

template <typename Req>
void Register(const std::string& method) {
  world->server->Handle<Req, cairn::v1::Empty>(
      method, [](const Req& req, const cairn::CallContext&) -> cairn::Result<cairn::v1::Empty> {
        (void)req.ByteSizeLong();
        return cairn::v1::Empty();
      });
}

void DecodeAs(const pb::Descriptor* type, const std::string& payload) {
  std::unique_ptr<pb::Message> m(pb::MessageFactory::generated_factory()->GetPrototype(type)->New());
  if (!m->ParseFromString(payload)) return;
  std::string again = m->SerializeAsString();
  std::unique_ptr<pb::Message> m2(m->New());
  CAIRN_FUZZ_CHECK(m2->ParseFromString(again), type->full_name() + " does not re-parse its own serialization");
  CAIRN_FUZZ_CHECK(m2->ByteSizeLong() == again.size(), type->full_name() + " size changed after a round trip");
  (void)m->ShortDebugString();
  if (auto* apply = dynamic_cast<cairn::v1::ApplyPipelineRequest*>(m.get())) CheckPipeline(apply->pipeline());
  if (auto* pipeline = dynamic_cast<cairn::v1::Pipeline*>(m.get())) CheckPipeline(*pipeline);
  if (auto* spec = dynamic_cast<cairn::v1::PipelineSpec*>(m.get())) {
    if (cairn::ValidatePipelineSpec(*spec).ok()) (void)cairn::PipelineDigest(*spec);
  }
  if (auto* boot = dynamic_cast<cairn::v1::BootstrapRequest*>(m.get())) CheckCsr(boot->csr_pem());
  if (auto* renew = dynamic_cast<cairn::v1::RenewCertificateRequest*>(m.get())) CheckCsr(renew->csr_pem());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  google::protobuf::SetLogHandler(nullptr);  // no "invalid UTF-8" lines per input
  world = new World;
  // Touch one message of each file so the generated pool holds them all.
  const pb::FileDescriptor* files[] = {
      cairn::v1::RpcReply::descriptor()->file(), cairn::v1::PipelineSpec::descriptor()->file(),
      cairn::v1::NodeHealth::descriptor()->file(), cairn::v1::WorkspaceEvent::descriptor()->file(),
      cairn::v1::NodeCache::descriptor()->file()};
  for (const auto* f : files) AddTypesOf(f, &world->types);
  world->server = std::make_unique<cairn::RpcServer>(world->client, "registry", world->metrics);
  Register<cairn::v1::BootstrapRequest>("Bootstrap");
  Register<cairn::v1::CreateTokenRequest>("CreateToken");
  Register<cairn::v1::ListNodesRequest>("ListNodes");
  Register<cairn::v1::LabelNodeRequest>("LabelNode");
  Register<cairn::v1::CreateUserRequest>("CreateUser");
  Register<cairn::v1::GrantRoleRequest>("GrantRole");
  Register<cairn::v1::RenewCertificateRequest>("RenewCertificate");
  Register<cairn::v1::ApplyPipelineRequest>("ApplyPipeline");
  auto ca = cairn::tls::CreateCa("cairn fuzz CA", 1);
  if (!ca.ok()) std::abort();
  world->ca = *ca;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::fuzz::FuzzInput in(data, size);
  // The type by name (stable seeds), else any type chosen by the name's length.
  std::string type_name = in.Line();
  const pb::Descriptor* type = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(type_name);
  if (type == nullptr || type->file()->package() != "cairn.v1") {
    type = world->types[type_name.size() % world->types.size()];
  }

  cairn::MqttMessage m;
  m.topic = std::string(cairn::topics::kRoot) + "/rpc/registry/" + in.Line();
  m.response_topic = in.Line();
  std::string count = in.Line();
  int props = count.empty() ? 0 : static_cast<unsigned char>(count[0]) % 4;  // '0'..'3'

  for (int i = 0; i < props; ++i) {
    std::string kv = in.Line();
    auto eq = kv.find('=');
    m.user_properties.emplace_back(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
  }
  m.payload = in.Rest();

  DecodeAs(type, m.payload);

  world->client.last = cairn::MqttMessage();
  bool mine = world->server->OnMessage(m);
  if (mine && !world->client.last.topic.empty()) {
    CAIRN_FUZZ_CHECK(world->client.last.topic == m.response_topic, "reply went to another topic than asked");
    cairn::v1::RpcReply reply;
    CAIRN_FUZZ_CHECK(reply.ParseFromString(world->client.last.payload), "reply does not decode");
    int stamps = 0;
    for (const auto& [k, v] : m.user_properties) stamps += k == cairn::kPrincipalProperty;
    // A request without exactly one non-empty stamp never reaches a handler.
    if (stamps != 1 || m.UserProperty(cairn::kPrincipalProperty).empty()) {
      CAIRN_FUZZ_CHECK(reply.code() != 0, "unstamped request was served: " + m.topic);
    }
  }
  return 0;
}
