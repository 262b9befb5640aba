#include "cairn/common/topics.h"
#include "cairn/common/text.h"

#include <charconv>
#include <vector>

namespace cairn::topics {
namespace {

constexpr size_t kMaxNameLength = 63;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

std::vector<std::string_view> SplitLevels(std::string_view topic) {
  std::vector<std::string_view> levels;
  size_t start = 0;
  while (true) {
    size_t slash = topic.find('/', start);
    if (slash == std::string_view::npos) {
      levels.push_back(topic.substr(start));
      return levels;
    }
    levels.push_back(topic.substr(start, slash - start));
    start = slash + 1;
  }
}

std::string Join(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view part : parts) {
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

// Levels 0-3 of a workspace topic: cairn/v1/ws/{ws}.
bool IsWorkspaceTopic(const std::vector<std::string_view>& levels) {
  return levels.size() >= 4 && levels[0] == "cairn" && levels[1] == "v1" && levels[2] == "ws" &&
         IsValidName(levels[3]);
}

std::optional<NodeTopic> ParseNodeKind(std::string_view kind) {
  if (kind == "status") return NodeTopic::kStatus;
  if (kind == "health") return NodeTopic::kHealth;
  if (kind == "logs") return NodeTopic::kLogs;
  if (kind == "desired") return NodeTopic::kDesired;
  return std::nullopt;
}

std::string_view NodeKindName(NodeTopic kind) {
  switch (kind) {
    case NodeTopic::kStatus: return "status";
    case NodeTopic::kHealth: return "health";
    case NodeTopic::kLogs: return "logs";
    case NodeTopic::kDesired: return "desired";
  }
  return "status";
}

// Canonical decimal uint32: digits only, no leading zeros (so that each
// version has exactly one topic).
std::optional<uint32_t> ParseVersion(std::string_view text) {
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

bool IsValidMethod(std::string_view method) {
  if (method.empty() || method.size() > 128) return false;
  for (char c : method) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  if (!IsLowerAlnum(name.front()) || !IsLowerAlnum(name.back())) return false;
  for (char c : name) {
    if (!IsLowerAlnum(c) && c != '-') return false;
  }
  return true;
}

Status ValidateName(std::string_view what, std::string_view name) {
  if (IsValidName(name)) return OkStatus();
  std::string prefix = "invalid " + std::string(what) + " name " + Quoted(name) + ": ";
  std::string reason;
  if (name.empty()) {
    reason = "must not be empty";
  } else if (name.size() > kMaxNameLength) {
    reason = "longer than 63 characters";
  } else {
    for (char c : name) {
      if (!IsLowerAlnum(c) && c != '-') {
        if (c >= 'A' && c <= 'Z') {
          reason = "must be lower case";
        } else {
          reason = "character " + Quoted(std::string_view(&c, 1)) + " is not allowed";
        }
        break;
      }
    }
    if (reason.empty()) reason = "must start and end with a letter or digit";
  }
  return Error::InvalidArgument(prefix + reason +
                                " (names are DNS labels: 1-63 characters of a-z, 0-9 and '-')");
}

std::string Node(std::string_view ws, std::string_view node, NodeTopic kind) {
  return Join({kRoot, "ws", ws, "nodes", node, NodeKindName(kind)});
}
std::string NodeStatus(std::string_view ws, std::string_view node) {
  return Node(ws, node, NodeTopic::kStatus);
}
std::string NodeHealth(std::string_view ws, std::string_view node) {
  return Node(ws, node, NodeTopic::kHealth);
}
std::string NodeLogs(std::string_view ws, std::string_view node) {
  return Node(ws, node, NodeTopic::kLogs);
}
std::string NodeDesired(std::string_view ws, std::string_view node) {
  return Node(ws, node, NodeTopic::kDesired);
}
std::string PipelineConfig(std::string_view ws, std::string_view pipeline, uint32_t version) {
  return Join({kRoot, "ws", ws, "pipelines", pipeline, std::to_string(version)});
}
std::string PipelineConfigs(std::string_view ws) { return Join({kRoot, "ws", ws, "pipelines", "#"}); }
std::string Events(std::string_view ws) { return Join({kRoot, "ws", ws, "events"}); }
std::string Data(std::string_view ws, std::string_view stream) {
  return Join({kRoot, "ws", ws, "data", stream});
}
std::string Workspace(std::string_view ws) { return Join({kRoot, "ws", ws, "#"}); }

std::string AllNodeStatus() { return NodeStatus("+", "+"); }
std::string AllNodeHealth() { return NodeHealth("+", "+"); }
std::string AllEvents() { return Events("+"); }

std::string RpcRequest(std::string_view service, std::string_view method) {
  return Join({kRoot, "rpc", service, method});
}
std::string RpcShared(std::string_view service) {
  return Join({"$share", service, kRoot, "rpc", service, "+"});
}
std::string ReplyPrefix(std::string_view principal, std::string_view client_id) {
  return Join({kRoot, "reply", principal, client_id});
}

std::optional<NodeTopicParts> ParseNodeTopic(std::string_view topic) {
  auto levels = SplitLevels(topic);
  if (levels.size() != 7 || !IsWorkspaceTopic(levels) || levels[4] != "nodes" ||
      !IsValidName(levels[5])) {
    return std::nullopt;
  }
  auto kind = ParseNodeKind(levels[6]);
  if (!kind) return std::nullopt;
  return NodeTopicParts{std::string(levels[3]), std::string(levels[5]), *kind};
}

std::optional<PipelineTopicParts> ParsePipelineTopic(std::string_view topic) {
  auto levels = SplitLevels(topic);
  if (levels.size() != 7 || !IsWorkspaceTopic(levels) || levels[4] != "pipelines" ||
      !IsValidName(levels[5])) {
    return std::nullopt;
  }
  auto version = ParseVersion(levels[6]);
  if (!version) return std::nullopt;
  return PipelineTopicParts{std::string(levels[3]), std::string(levels[5]), *version};
}

std::optional<std::string> ParseEventsTopic(std::string_view topic) {
  auto levels = SplitLevels(topic);
  if (levels.size() != 5 || !IsWorkspaceTopic(levels) || levels[4] != "events") {
    return std::nullopt;
  }
  return std::string(levels[3]);
}

std::optional<RpcTopicParts> ParseRpcTopic(std::string_view topic) {
  auto levels = SplitLevels(topic);
  if (levels.size() != 5 || levels[0] != "cairn" || levels[1] != "v1" || levels[2] != "rpc" ||
      !IsValidName(levels[3]) || !IsValidMethod(levels[4])) {
    return std::nullopt;
  }
  return RpcTopicParts{std::string(levels[3]), std::string(levels[4])};
}

bool Matches(std::string_view filter, std::string_view topic) {
  constexpr std::string_view kShare = "$share/";
  if (filter.substr(0, kShare.size()) == kShare) {
    size_t slash = filter.find('/', kShare.size());
    // A shared subscription needs a non-empty group and a filter after it.
    if (slash == std::string_view::npos || slash == kShare.size()) return false;
    filter = filter.substr(slash + 1);
  }
  if (filter.empty() || topic.empty()) return false;
  // Topic names never contain wildcards.
  if (topic.find_first_of("+#") != std::string_view::npos) return false;

  auto f = SplitLevels(filter);
  auto t = SplitLevels(topic);
  // Validate the filter: wildcards occupy a whole level, '#' only last.
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i].find('#') != std::string_view::npos && (f[i] != "#" || i + 1 != f.size())) return false;
    if (f[i].find('+') != std::string_view::npos && f[i] != "+") return false;
  }
  // Wildcards at the first level do not match topics starting with '$'.
  if (topic.front() == '$' && (f[0] == "+" || f[0] == "#")) return false;

  size_t i = 0;
  for (; i < f.size(); ++i) {
    if (f[i] == "#") return true;  // also matches the parent level itself
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return i == t.size();
}

std::string RpcRoot() { return Join({kRoot, "rpc"}); }
std::string ReplyRoot() { return Join({kRoot, "reply"}); }

bool IsRpcTopic(std::string_view topic) {
  const std::string root = RpcRoot();
  return topic.substr(0, root.size()) == root &&
         (topic.size() == root.size() || topic[root.size()] == '/');
}

std::string RevokeTopic() { return Join({kRoot, "sys", "revoke"}); }
std::string UnrevokeTopic() { return Join({kRoot, "sys", "unrevoke"}); }

bool IsTopicLevel(std::string_view text) {
  return !text.empty() && text.find_first_of(std::string_view("/+#\0", 4)) == std::string_view::npos;
}

std::optional<DataTopicParts> ParseDataTopic(std::string_view topic) {
  auto levels = SplitLevels(topic);
  if (levels.size() != 6 || !IsWorkspaceTopic(levels) || levels[4] != "data" ||
      !IsValidName(levels[5])) {
    return std::nullopt;
  }
  return DataTopicParts{std::string(levels[3]), std::string(levels[5])};
}

std::string NodePrincipal(std::string_view ws, std::string_view node) {
  return "node:" + std::string(ws) + ":" + std::string(node);
}

}  // namespace cairn::topics
