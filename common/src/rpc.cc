#include "cairn/common/rpc.h"

#include <spdlog/spdlog.h>

#include "cairn/common/tls.h"
#include "cairn/common/topics.h"
#include "cairn/v1/rpc.pb.h"

namespace cairn {
namespace {

constexpr char kReplyType[] = "cairn.v1.RpcReply";

bool SafeReplyTopic(const std::string& topic) {
  static const std::string prefix = std::string(topics::kRoot) + "/reply/";
  if (topic.size() <= prefix.size() || topic.compare(0, prefix.size(), prefix) != 0) return false;
  return topic.find_first_of("+#") == std::string::npos && topic.size() < 512;
}

}  // namespace

RpcServer::RpcServer(MqttClient& client, std::string service, Metrics& metrics)
    : client_(client), service_(std::move(service)), metrics_(metrics) {}

Status RpcServer::Start() { return client_.Subscribe(topics::RpcShared(service_), 1); }

bool RpcServer::OnMessage(const MqttMessage& message) {
  auto parts = topics::ParseRpcTopic(message.topic);
  if (!parts || parts->service != service_) return false;

  if (!SafeReplyTopic(message.response_topic)) {
    auto n = metrics_.Add("rpc_bad_response_topic");
    spdlog::warn("rpc {}.{}: request without a valid response topic dropped (count {})", service_,
                 parts->method, n);
    return true;
  }
  v1::RpcReply reply;
  CallContext ctx{message.UserProperty(kPrincipalProperty), parts->method};
  int stamps = 0;
  for (const auto& [k, v] : message.user_properties) stamps += k == kPrincipalProperty;
  auto it = handlers_.find(parts->method);
  Result<std::string> result = std::string();
  if (stamps != 1 || ctx.principal.empty()) {
    // Without exactly one broker stamp nobody can tell who asked (e.g. a
    // last will, which the plugin never sees).
    auto n = metrics_.Add("rpc_unstamped");
    spdlog::warn("rpc {}.{}: request without a broker-stamped principal refused (count {})", service_,
                 parts->method, n);
    result = Error::Unauthenticated("request carries no broker-stamped principal");
  } else if (message.payload.size() > kMaxRpcPayload) {
    result = Error::InvalidArgument("request too large (" + std::to_string(message.payload.size()) +
                                    " bytes, limit " + std::to_string(kMaxRpcPayload) + ")");
  } else if (it == handlers_.end()) {
    result = Error::InvalidArgument("unknown method " + service_ + "." + parts->method);
  } else {
    try {
      result = it->second(message.payload, ctx);
    } catch (const std::exception& e) {
      spdlog::error("rpc {}.{} failed: {}", service_, parts->method, e.what());
      result = Error::Internal(std::string("internal error: ") + e.what());
    }
  }
  if (result.ok()) {
    reply.set_code(0);
    reply.set_payload(std::move(*result));
  } else {
    const Error& err = result.error();
    reply.set_code(static_cast<int>(err.code));
    reply.set_message(err.message);
    if (err.code == ErrorCode::kInvalidArgument) {
      auto n = metrics_.Add("rpc_invalid_requests");
      spdlog::warn("rpc {}.{} from {}: {} (invalid requests: {})", service_, parts->method,
                   ctx.principal.empty() ? "?" : ctx.principal, err.message, n);
    } else {
      spdlog::info("rpc {}.{} from {}: {}", service_, parts->method,
                   ctx.principal.empty() ? "?" : ctx.principal, err.ToString());
    }
  }
  MqttMessage out;
  out.topic = message.response_topic;
  out.payload = reply.SerializeAsString();
  out.qos = 1;
  out.content_type = kReplyType;
  out.correlation_data = message.correlation_data;
  auto st = client_.Publish(out);
  if (!st.ok()) spdlog::warn("rpc {}: reply not sent: {}", service_, st.error().message);
  return true;
}

RpcClient::RpcClient(MqttClient& client)
    : client_(client), reply_prefix_(topics::ReplyPrefix(client.Username(), client.ClientId())) {}

Status RpcClient::Start() { return client_.Subscribe(reply_prefix_ + "/#", 1); }

bool RpcClient::OnMessage(const MqttMessage& message) {
  if (message.topic.compare(0, reply_prefix_.size(), reply_prefix_) != 0) return false;
  v1::RpcReply reply;
  if (!reply.ParseFromString(message.payload)) {
    spdlog::warn("malformed RPC reply on {}", message.topic);
    return true;
  }
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(message.correlation_data);
    if (it == pending_.end()) return true;  // late reply to a call that timed out
    it->second.done = true;
    it->second.code = reply.code();
    it->second.message = reply.message();
    it->second.payload = reply.payload();
  }
  cv_.notify_all();
  return true;
}

Result<std::string> RpcClient::CallRaw(const std::string& service, const std::string& method,
                                       const std::string& request,
                                       std::chrono::milliseconds timeout) {
  std::string id = tls::HexEncode(tls::RandomBytes(8)) + "-" + std::to_string(next_id_++);
  {
    std::lock_guard lock(mu_);
    pending_[id] = Pending{};
  }
  MqttMessage msg;
  msg.topic = topics::RpcRequest(service, method);
  msg.payload = request;
  msg.qos = 1;
  msg.response_topic = reply_prefix_ + "/" + service;
  msg.correlation_data = id;
  msg.message_expiry_s = static_cast<uint32_t>(
      std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(timeout).count()));
  auto st = client_.Publish(msg);
  if (!st.ok()) {
    std::lock_guard lock(mu_);
    pending_.erase(id);
    return st.error();
  }
  std::unique_lock lock(mu_);
  bool done = cv_.wait_for(lock, timeout, [&] { return pending_[id].done; });
  Pending p = std::move(pending_[id]);
  pending_.erase(id);
  if (!done) {
    return Error::DeadlineExceeded("no reply from " + service + " within " +
                                   std::to_string(timeout.count() / 1000) +
                                   "s (is cairn-" + service + " running?)");
  }
  if (p.code != 0) return Error{static_cast<ErrorCode>(p.code), p.message};
  return std::move(p.payload);
}

}  // namespace cairn
