#include "cairn/policy/topic_rules.h"

#include "cairn/common/topics.h"

namespace cairn::policy {
namespace {

std::vector<std::string_view> Levels(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    std::size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
}

std::string OwnReplyFilter(const Subject& s) {
  return topics::ReplyPrefix(s.username, s.client_id) + "/#";
}

bool OwnsReplyPrefix(const Subject& s) {
  return topics::IsTopicLevel(s.username) && topics::IsTopicLevel(s.client_id);
}

bool AnyMatches(const std::vector<std::string>& filters, std::string_view topic) {
  for (const auto& f : filters) {
    if (topics::Matches(f, topic)) return true;
  }
  return false;
}

// Strips "$share/{group}/"; nullopt if the shared form is malformed.
std::optional<std::string_view> Unshared(std::string_view filter) {
  constexpr std::string_view kShare = "$share/";
  if (filter.substr(0, kShare.size()) != kShare) return filter;
  std::size_t slash = filter.find('/', kShare.size());
  if (slash == std::string_view::npos || slash == kShare.size()) return std::nullopt;
  std::string_view group = filter.substr(kShare.size(), slash - kShare.size());
  if (group.find_first_of("+#") != std::string_view::npos) return std::nullopt;
  return filter.substr(slash + 1);
}

}  // namespace

const char* AccessName(Access access) {
  switch (access) {
    case Access::kRead: return "read";
    case Access::kWrite: return "write";
    case Access::kSubscribe: return "subscribe";
  }
  return "access";
}

TopicRules RulesFor(const Subject& s) {
  TopicRules r;
  const Principal& p = s.principal;
  switch (p.kind) {
    case PrincipalKind::kService:
      r.read = {"#"};
      r.write = {"#"};
      break;
    case PrincipalKind::kNode: {
      r.write = {topics::NodeStatus(p.ws, p.name), topics::NodeHealth(p.ws, p.name),
                 topics::NodeLogs(p.ws, p.name), topics::Data(p.ws, "+"),
                 topics::RpcRequest("registry", "RenewCertificate")};
      r.read = {topics::NodeDesired(p.ws, p.name), topics::PipelineConfigs(p.ws), topics::Data(p.ws, "+")};
      break;
    }
    case PrincipalKind::kUser:
      r.write = {topics::RpcRoot() + "/#"};
      if (s.user != nullptr) {
        for (const auto& [ws, role] : s.user->roles) {
          if (role == Role::kNone) continue;
          if (ws == kAllWorkspaces) {
            r.read.push_back(std::string(topics::kRoot) + "/ws/#");
          } else if (topics::IsValidName(ws)) {
            r.read.push_back(topics::Workspace(ws));
          }
        }
      }
      break;
    case PrincipalKind::kIntegrator:
      r.read = {topics::NodeStatus(p.ws, "+"), topics::NodeHealth(p.ws, "+"), topics::NodeLogs(p.ws, "+"),
                topics::Events(p.ws), topics::Data(p.ws, "+")};
      return r;  // calls no RPC: no reply prefix
    case PrincipalKind::kBootstrap:
      r.write = {topics::RpcRequest("registry", "Bootstrap")};
      break;
    case PrincipalKind::kUnknown:
      return r;
  }
  if (p.kind != PrincipalKind::kService && OwnsReplyPrefix(s)) r.read.push_back(OwnReplyFilter(s));
  return r;
}

bool IsValidFilter(std::string_view filter) {
  if (filter.empty()) return false;
  auto levels = Levels(filter);
  for (std::size_t i = 0; i < levels.size(); ++i) {
    std::string_view l = levels[i];
    if (l.find('#') != std::string_view::npos && (l != "#" || i + 1 != levels.size())) return false;
    if (l.find('+') != std::string_view::npos && l != "+") return false;
  }
  return true;
}

bool FiltersIntersect(std::string_view a, std::string_view b) {
  if (!IsValidFilter(a) || !IsValidFilter(b)) return false;
  auto x = Levels(a);
  auto y = Levels(b);
  // Wildcards in the first level never match topics that start with '$'.
  auto dollar = [](std::string_view l) { return !l.empty() && l.front() == '$'; };
  if ((dollar(x[0]) && (y[0] == "+" || y[0] == "#")) || (dollar(y[0]) && (x[0] == "+" || x[0] == "#"))) {
    return false;
  }
  for (std::size_t i = 0;; ++i) {
    bool x_end = i >= x.size();
    bool y_end = i >= y.size();
    if (!x_end && x[i] == "#") return true;  // also matches the parent level
    if (!y_end && y[i] == "#") return true;
    if (x_end || y_end) return x_end && y_end;
    if (x[i] != "+" && y[i] != "+" && x[i] != y[i]) return false;
  }
}

Refusal CheckTopic(const Subject& s, Access access, std::string_view topic, bool retain) {
  const Principal& p = s.principal;
  if (p.kind == PrincipalKind::kUnknown) {
    return access == Access::kWrite ? Refusal::kNotWritable
           : access == Access::kRead ? Refusal::kNotReadable
                                     : Refusal::kNotSubscribable;
  }
  if (p.kind == PrincipalKind::kService) return Refusal::kNone;
  TopicRules rules = RulesFor(s);
  switch (access) {
    case Access::kWrite: {
      if (topic.find_first_of("+#") != std::string_view::npos) return Refusal::kNotWritable;
      bool writable = false;
      for (const auto& f : rules.write) {
        if (!topics::Matches(f, topic)) continue;
        // The one pattern with a wildcard: data/{stream}, a DNS label.
        writable = f.find('+') == std::string::npos || topics::ParseDataTopic(topic).has_value();
        if (writable) break;
      }
      if (!writable) return Refusal::kNotWritable;
      if (retain && !(p.kind == PrincipalKind::kNode && topic == topics::NodeStatus(p.ws, p.name))) {
        return Refusal::kRetainNotAllowed;
      }
      return Refusal::kNone;
    }
    case Access::kRead:
      return AnyMatches(rules.read, topic) ? Refusal::kNone : Refusal::kNotReadable;
    case Access::kSubscribe: {
      std::optional<std::string_view> filter = Unshared(topic);
      if (!filter) return Refusal::kNotSubscribable;
      for (const auto& f : rules.read) {
        if (FiltersIntersect(f, *filter)) return Refusal::kNone;
      }
      return Refusal::kNotSubscribable;
    }
  }
  return Refusal::kNotReadable;
}

Refusal CheckResponseTopic(std::string_view username, std::string_view client_id,
                           std::optional<std::string_view> response_topic) {
  if (!response_topic || !topics::IsTopicLevel(username) || !topics::IsTopicLevel(client_id)) {
    return Refusal::kBadResponseTopic;
  }
  std::string prefix = topics::ReplyPrefix(username, client_id) + "/";
  std::string_view rt = *response_topic;
  if (rt.substr(0, prefix.size()) != prefix) return Refusal::kBadResponseTopic;
  if (rt.find_first_of("+#") != std::string_view::npos) return Refusal::kBadResponseTopic;
  return Refusal::kNone;
}

}  // namespace cairn::policy
