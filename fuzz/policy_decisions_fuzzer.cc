// Fuzz target: the broker policy's decisions (BrokerPolicy), driven by a
// sequence of broker events as a hostile client population could cause them.
// The input is a list of operations; each starts with one byte:
//   0 connect      client#, username, password, client id, [certificate CN, serial]
//   1 check        client#, access, topic, retain
//   2 message      client#, topic, payload, retain, stamp, [response topic]
//   3 disconnect   client#
//   4 tick         (time advances on every operation)
//   5 access file  missing (nullptr) or back to the fixed snapshot
// Text fields are lines (FuzzInput). Properties checked after each step:
//   - no client that is not a service may write where only services write
//     (desired state, pipeline configs, events) or publish a wildcard topic;
//   - nobody but a node may write anything under cairn/v1/ws/{ws}/nodes/;
//   - a message that carries its own cairn-principal stamp is never accepted;
//   - a connection refused at CONNECT has no session afterwards;
//   - every kick names a client that had a session.
#include <array>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "cairn/policy/access.h"
#include "cairn/policy/broker_policy.h"
#include "cairn/policy/password.h"
#include "cairn/policy/principal.h"
#include "fuzz_input.h"

namespace {

using namespace cairn::policy;

// Cheap hashes: the cost is a parameter, the decisions are what we test.
std::shared_ptr<const AccessSnapshot> Snapshot() {
  static std::shared_ptr<const AccessSnapshot> snapshot = [] {
    auto s = std::make_shared<AccessSnapshot>();
    s->users["alice"] = {HashPassword("alice-pw", kMinIterations).value(), {{"*", Role::kAdmin}}};
    s->users["bob"] = {HashPassword("bob-pw", kMinIterations).value(), {{"demo", Role::kViewer}}};
    s->credentials[CredentialPrincipal("demo", "tg")] = {"demo", "tg", HashPassword("tg-pw", kMinIterations).value(),
                                                          0};
    return std::shared_ptr<const AccessSnapshot>(std::move(s));
  }();
  return snapshot;
}

std::array<char, 8> g_clients;  // their addresses are the client handles

ClientHandle Client(cairn::fuzz::FuzzInput& in) { return &g_clients[in.Byte() % g_clients.size()]; }

bool IsServiceOnlyTopic(std::string_view topic) {
  if (!topic.starts_with("cairn/v1/ws/")) return false;
  return topic.find("/desired") != std::string_view::npos || topic.find("/pipelines/") != std::string_view::npos ||
         topic.ends_with("/events");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::fuzz::FuzzInput in(data, size);
  Limits limits;
  BrokerPolicy policy(limits);
  policy.SetServiceCredentials(ParseServiceCredentials(
      "svc:registry 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8\n"));  // "password"
  int64_t now_ms = 1'000'000;
  int64_t wall_ms = 1'700'000'000'000;
  policy.SetAccess(Snapshot(), wall_ms);
  std::set<ClientHandle> connected;

  for (int steps = 0; !in.empty() && steps < 64; ++steps) {
    now_ms += in.Byte() * 37;
    wall_ms += 1000;
    switch (in.Byte() % 6) {
      case 0: {
        ClientHandle c = Client(in);
        if (policy.HasSession(c)) break;  // the broker never reuses a live connection
        std::string username = in.Line();
        std::string password = in.Line();
        std::string client_id = in.Line();
        std::optional<Certificate> cert;
        std::string cn, serial;
        if (in.Byte() & 1) {
          cn = in.Line();
          serial = in.Line();
          cert = Certificate{cn.empty() ? std::nullopt : std::optional<std::string>(cn), serial};
        }
        ConnectRequest req;
        req.client = c;
        if (!username.empty()) req.username = username;
        req.password = password;
        req.client_id = client_id;
        req.certificate = cert;
        ConnectDecision d = policy.Connect(req, now_ms, wall_ms);
        if (d.refusal != Refusal::kNone) {
          CAIRN_FUZZ_CHECK(!policy.HasSession(c) || connected.count(c) != 0,
                           "a refused CONNECT left a session for client id '" + client_id + "'");
        } else {
          connected.insert(c);
          CAIRN_FUZZ_CHECK(policy.HasSession(c), "an accepted CONNECT has no session");
          if (cert) {
            CAIRN_FUZZ_CHECK(ParsePrincipal(d.username).kind == PrincipalKind::kNode && cert->common_name &&
                                 *cert->common_name == d.username && d.username == client_id,
                             "certificate login accepted as '" + d.username + "' for CN '" + cn + "', client id '" +
                                 client_id + "'");
          }
        }
        break;
      }
      case 1: {
        ClientHandle c = Client(in);
        Access access = static_cast<Access>(in.Byte() % 3);
        std::string username = in.Line();
        std::string client_id = in.Line();
        std::string topic = in.Line();
        bool retain = in.Byte() & 1;
        Refusal r = policy.CheckAccess(c, username.empty() ? std::nullopt : std::optional<std::string_view>(username),
                                       client_id, access, topic, retain, wall_ms);
        PrincipalKind kind = ParsePrincipal(username).kind;
        if (r == Refusal::kNone && access == Access::kWrite && kind != PrincipalKind::kService) {
          CAIRN_FUZZ_CHECK(!IsServiceOnlyTopic(topic), username + " may write service-only topic " + topic);
          CAIRN_FUZZ_CHECK(topic.find_first_of("+#") == std::string::npos, username + " may write wildcard " + topic);
          CAIRN_FUZZ_CHECK(kind == PrincipalKind::kNode || topic.find("/nodes/") == std::string::npos,
                           username + " may write node topic " + topic);
        }
        break;
      }
      case 2: {
        MessageRequest m;
        m.client = Client(in);
        std::string username = in.Line();
        std::string client_id = in.Line();
        std::string topic = in.Line();
        std::string payload = in.Line();
        std::string response = in.Line();
        uint8_t flags = in.Byte();
        m.username = username;
        m.client_id = client_id;
        m.topic = topic;
        m.payload = payload;
        m.retain = flags & 1;
        m.has_principal_property = flags & 2;
        if (flags & 4) m.response_topic = response;
        Refusal r = policy.Message(m, now_ms);
        if (m.has_principal_property) CAIRN_FUZZ_CHECK(r != Refusal::kNone, "a forged stamp was accepted");
        break;
      }
      case 3: {
        ClientHandle c = Client(in);
        policy.Disconnected(c);
        connected.erase(c);
        break;
      }
      case 4:
        policy.Tick(now_ms, wall_ms);
        break;
      default:
        policy.SetAccess((in.Byte() & 1) ? Snapshot() : nullptr, wall_ms);
        break;
    }
    for (const Kick& k : policy.TakeKicks()) {
      CAIRN_FUZZ_CHECK(connected.count(k.client) != 0, "kicked a client that never connected: " + k.client_id);
    }
    (void)policy.TakeNotes();
    (void)policy.TakeRevocationsChanged();
  }
  return 0;
}
