// Request/response over MQTT v5: a request goes to
// cairn/v1/rpc/{service}/{Method} with a response topic below the caller's
// private cairn/v1/reply/{client-id}/ prefix and correlation data; the server
// answers with a cairn.v1.RpcReply. Servers subscribe through a shared
// subscription, so several replicas of a service split the load.
//
// The caller's identity is the `cairn-principal` user property that the
// broker plugin stamps on every message (and refuses from clients); a service
// trusts nothing else; what each principal may call is decided by
// cairn/common/authz.h.
// Thread-safety: RpcClient::Call may be called from any thread concurrently.
// RpcServer handlers run on the MQTT dispatcher thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <google/protobuf/message.h>

#include "cairn/common/metrics.h"
#include "cairn/common/mqtt_client.h"
#include "cairn/common/result.h"

namespace cairn {

inline constexpr char kPrincipalProperty[] = "cairn-principal";
// Largest request a server accepts.
inline constexpr size_t kMaxRpcPayload = 1 << 20;

struct CallContext {
  std::string principal;  // stamped by the broker plugin, never empty
  std::string method;
};

class RpcServer {
 public:
  using RawHandler = std::function<Result<std::string>(const std::string& request,
                                                       const CallContext& ctx)>;

  RpcServer(MqttClient& client, std::string service, Metrics& metrics);

  // Registers `method`. Req and Resp are protobuf message types.
  template <typename Req, typename Resp>
  void Handle(const std::string& method,
              std::function<Result<Resp>(const Req&, const CallContext&)> fn) {
    handlers_[method] = [fn = std::move(fn), method](const std::string& raw,
                                                     const CallContext& ctx) -> Result<std::string> {
      Req req;
      if (!req.ParseFromString(raw)) {
        return Error::InvalidArgument("malformed " + Req().GetTypeName() + " for " + method);
      }
      auto resp = fn(req, ctx);
      if (!resp.ok()) return resp.error();
      return resp->SerializeAsString();
    };
  }

  // Subscribes to the service's shared request topic. Call once connected.
  Status Start();
  // Feeds one message; returns true if it was a request for this service.
  bool OnMessage(const MqttMessage& message);

  const std::string& service() const { return service_; }

 private:
  MqttClient& client_;
  std::string service_;
  Metrics& metrics_;
  std::map<std::string, RawHandler> handlers_;
};

class RpcClient {
 public:
  explicit RpcClient(MqttClient& client);

  // Subscribes to this client's reply prefix. Call once connected.
  Status Start();
  // Feeds one message; returns true if it was a reply to this client.
  bool OnMessage(const MqttMessage& message);

  Result<std::string> CallRaw(const std::string& service, const std::string& method,
                              const std::string& request, std::chrono::milliseconds timeout);

  template <typename Resp>
  Result<Resp> Call(const std::string& service, const std::string& method,
                    const google::protobuf::Message& request,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto raw = CallRaw(service, method, request.SerializeAsString(), timeout);
    if (!raw.ok()) return raw.error();
    Resp resp;
    if (!resp.ParseFromString(*raw)) {
      return Error::Internal("malformed reply from " + service + "." + method);
    }
    return resp;
  }

 private:
  struct Pending {
    bool done = false;
    int code = 0;
    std::string message;
    std::string payload;
  };
  MqttClient& client_;
  std::string reply_prefix_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Pending> pending_;
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace cairn
