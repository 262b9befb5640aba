#include "cairn/policy/access.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include "cairn/common/text.h"
#include "cairn/common/topics.h"
#include "cairn/policy/password.h"
#include "cairn/policy/principal.h"

namespace cairn::policy {
namespace {

constexpr std::string_view kMagic = "cairn-access 1";

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= line.size()) {
    std::size_t sp = line.find(' ', start);
    if (sp == std::string_view::npos) sp = line.size();
    out.push_back(line.substr(start, sp - start));
    start = sp + 1;
  }
  return out;
}

bool ParseInt64(std::string_view s, int64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && *out >= 0;
}

bool IsWorkspaceOrAll(std::string_view ws) { return ws == kAllWorkspaces || topics::IsValidName(ws); }

Error Bad(int lineno, const std::string& why) {
  return Error::InvalidArgument("access snapshot line " + std::to_string(lineno) + ": " + why);
}

}  // namespace

std::string SerializeAccess(const AccessSnapshot& s) {
  std::string out(kMagic);
  out += "\ngenerated_ms " + std::to_string(s.generated_ms) + "\n";
  for (const auto& [name, user] : s.users) {
    out += "user " + name + " " + user.password_hash + "\n";
    for (const auto& [ws, role] : user.roles) {
      out += "role " + name + " " + ws + " " + RoleName(role) + "\n";
    }
  }
  for (const auto& [principal, c] : s.credentials) {
    out += "cred " + c.ws + " " + c.name + " " + std::to_string(c.expires_ms) + " " + c.password_hash + "\n";
  }
  out += "end\n";
  return out;
}

Result<AccessSnapshot> ParseAccess(std::string_view text) {
  AccessSnapshot s;
  bool ended = false;
  int lineno = 0;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return Bad(lineno + 1, "truncated (no final newline)");
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    ++lineno;
    if (ended) return Bad(lineno, "data after 'end'");
    if (lineno == 1) {
      if (line != kMagic) return Bad(lineno, "not a cairn access snapshot (version 1)");
      continue;
    }
    auto f = Fields(line);
    if (f[0] == "end" && f.size() == 1) {
      ended = true;
    } else if (f[0] == "generated_ms" && f.size() == 2) {
      if (!ParseInt64(f[1], &s.generated_ms)) return Bad(lineno, "bad generated_ms");
    } else if (f[0] == "user" && f.size() == 3) {
      if (!topics::IsValidName(f[1])) return Bad(lineno, "bad user name " + Quoted(f[1]));
      if (!IsWellFormedHash(f[2])) return Bad(lineno, "bad password hash for user " + std::string(f[1]));
      if (!s.users.emplace(std::string(f[1]), AccessUser{std::string(f[2]), {}}).second) {
        return Bad(lineno, "duplicate user " + std::string(f[1]));
      }
    } else if (f[0] == "role" && f.size() == 4) {
      auto it = s.users.find(std::string(f[1]));
      if (it == s.users.end()) return Bad(lineno, "role for unknown user " + Quoted(f[1]));
      if (!IsWorkspaceOrAll(f[2])) return Bad(lineno, "bad workspace " + Quoted(f[2]));
      auto role = ParseRole(f[3]);
      if (!role) return Bad(lineno, "bad role " + Quoted(f[3]));
      it->second.roles[std::string(f[2])] = *role;
    } else if (f[0] == "cred" && f.size() == 5) {
      AccessCredential c{std::string(f[1]), std::string(f[2]), std::string(f[4]), 0};
      if (!topics::IsValidName(c.ws) || !topics::IsValidName(c.name)) {
        return Bad(lineno, "bad credential name");
      }
      if (!ParseInt64(f[3], &c.expires_ms)) return Bad(lineno, "bad expiry");
      if (!IsWellFormedHash(c.password_hash)) return Bad(lineno, "bad password hash");
      std::string key = CredentialPrincipal(c.ws, c.name);
      if (!s.credentials.emplace(key, std::move(c)).second) return Bad(lineno, "duplicate credential");
    } else {
      return Bad(lineno, "unknown record " + Quoted(line.substr(0, 40)));
    }
  }
  if (lineno == 0) return Bad(1, "empty");
  if (!ended) return Bad(lineno, "truncated (no 'end' line)");
  return s;
}

Role RoleIn(const AccessUser& user, std::string_view ws) {
  Role best = Role::kNone;
  for (const auto& [bound, role] : user.roles) {
    if ((bound == ws || bound == kAllWorkspaces) && Grants(role, best)) best = role;
  }
  return best;
}

Status WriteAccessFile(const std::string& path, const AccessSnapshot& snapshot) {
  std::string data = SerializeAccess(snapshot);
  std::string dir = ".";
  if (auto slash = path.rfind('/'); slash != std::string::npos) dir = slash == 0 ? "/" : path.substr(0, slash);
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return Error::Unavailable("cannot write " + tmp + ": " + std::strerror(errno));
  bool ok = ::fchmod(fd, 0640) == 0;
  if (ok && ::geteuid() == 0) {
    struct stat st {};
    ok = ::stat(dir.c_str(), &st) == 0 && ::fchown(fd, st.st_uid, st.st_gid) == 0;
  }
  std::size_t off = 0;
  while (ok && off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) off += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  int saved = errno;
  ok = (::close(fd) == 0) && ok;
  if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) {
    saved = errno;
    ok = false;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return Error::Unavailable("cannot write access snapshot " + path + ": " + std::strerror(saved));
  }
  return OkStatus();
}

}  // namespace cairn::policy
