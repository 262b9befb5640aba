// Topic permissions per principal kind (docs/security.md has the table):
//   svc:*              everything (and retained writes anywhere)
//   node:{ws}:{n}      write own nodes/{n}/status (the only retained write of a
//                      non-service), own health, own logs,
//                      cairn/v1/ws/{ws}/data/{stream} (one DNS label),
//                      cairn/v1/rpc/registry/RenewCertificate;
//                      read own nodes/{n}/desired, cairn/v1/ws/{ws}/pipelines/#,
//                      cairn/v1/ws/{ws}/data/+, own reply prefix
//   user:{name}        write cairn/v1/rpc/#; read cairn/v1/ws/{ws}/# for every
//                      workspace it has a role in ("*": all), own reply prefix
//   cred:{ws}:{name}   read cairn/v1/ws/{ws}/nodes/+/{status,health,logs},
//                      .../events, .../data/+; write nothing
//   bootstrap          write cairn/v1/rpc/registry/Bootstrap; read own reply prefix
// The own reply prefix is cairn/v1/reply/{principal}/{client id}/#
// (topics::ReplyPrefix). A subscription is allowed when its filter can match
// at least one readable topic; the broker checks every delivery again as a
// read, so only readable topics arrive.
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/policy/access.h"
#include "cairn/policy/principal.h"
#include "cairn/policy/refusals.h"

namespace cairn::policy {

enum class Access { kRead, kWrite, kSubscribe };

const char* AccessName(Access access);

// Who is asking: the parsed principal, its username (= principal string),
// its client id, and for a user its entry in the access snapshot (roles;
// nullptr: no roles).
struct Subject {
  const Principal& principal;
  std::string_view username;
  std::string_view client_id;
  const AccessUser* user = nullptr;
};

// The topic filters `subject` may read (and subscribe within) and write.
struct TopicRules {
  std::vector<std::string> read;
  std::vector<std::string> write;
};
TopicRules RulesFor(const Subject& subject);

// kNone if `subject` may do `access` on `topic` (a topic name for read and
// write, a filter, maybe "$share/{group}/...", for subscribe), with
// `retain` the retain flag of a write; otherwise why not.
Refusal CheckTopic(const Subject& subject, Access access, std::string_view topic, bool retain);

// True if `filter` is a well-formed MQTT filter (wildcards fill a level,
// '#' only last).
bool IsValidFilter(std::string_view filter);
// True if at least one topic name matches both filters.
bool FiltersIntersect(std::string_view a, std::string_view b);

// kNone if an RPC request from `username` connected as `client_id` may name
// `response_topic`: it must lie under cairn/v1/reply/{username}/{client_id}/
// and hold no wildcard; kBadResponseTopic otherwise (also when there is none).
Refusal CheckResponseTopic(std::string_view username, std::string_view client_id,
                           std::optional<std::string_view> response_topic);

}  // namespace cairn::policy
