#include "cairn/ctl/connection.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "cairn/common/config.h"
#include "cairn/common/files.h"
#include "cairn/common/text.h"

namespace cairn::ctl {
namespace {

constexpr char kNotConfigured[] =
    "run `cairnctl login --broker-url URL --ca-file FILE --user NAME`, or set CAIRN_BROKER_URL, "
    "CAIRN_CA_FILE, CAIRN_USER and CAIRN_PASSWORD_FILE (dev stack: eval \"$(./cairn-dev env)\")";

// The first non-empty of flag, environment, stored (when `use_stored`).
std::string Pick(const std::string& flag, const std::string& env, const std::string& stored, bool use_stored,
                 Source* source) {
  if (!flag.empty()) {
    *source = Source::kFlag;
    return flag;
  }
  if (!env.empty()) {
    *source = Source::kEnvironment;
    return env;
  }
  if (use_stored && !stored.empty()) {
    *source = Source::kLoginConfig;
    return stored;
  }
  *source = Source::kNone;
  return "";
}

std::string Octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

}  // namespace

const char* SourceName(Source source) {
  switch (source) {
    case Source::kFlag: return "flag";
    case Source::kEnvironment: return "environment";
    case Source::kLoginConfig: return "login config";
    default: return "none";
  }
}

ConnectionSettings SettingsFromEnvironment(const GetEnv& getenv_fn) {
  auto get = [&](const char* name) {
    const char* v = getenv_fn(name);
    return std::string(v ? v : "");
  };
  ConnectionSettings s;
  s.broker_url = get("CAIRN_BROKER_URL");
  s.ca_file = get("CAIRN_CA_FILE");
  s.user = get("CAIRN_USER");
  s.password_file = get("CAIRN_PASSWORD_FILE");
  s.password = get("CAIRN_PASSWORD");
  return s;
}

std::string UserName(const std::string& user) {
  return user.rfind("user:", 0) == 0 ? user.substr(5) : user;
}

Result<ResolvedConnection> ResolveConnection(const ConnectionSettings& flags, const ConnectionSettings& env,
                                             const std::optional<LoginConfig>& stored) {
  const LoginConfig none;
  const LoginConfig& s = stored ? *stored : none;
  ResolvedConnection c;
  c.broker_url = Pick(flags.broker_url, env.broker_url, s.broker_url, true, &c.broker_source);
  if (c.broker_url.empty()) return Error::InvalidArgument("not logged in and no broker given: " + std::string(kNotConfigured));
  const bool same_broker = !s.broker_url.empty() && s.broker_url == c.broker_url;
  Source ca_source;
  c.ca_file = Pick(flags.ca_file, env.ca_file, s.ca_file, same_broker, &ca_source);
  c.user = UserName(Pick(flags.user, env.user, s.user, same_broker, &c.user_source));
  if (c.user.empty()) {
    return Error::InvalidArgument("no user for " + c.broker_url + ": pass --user NAME, set CAIRN_USER, or " +
                                  "run `cairnctl login`");
  }
  const bool same_user = same_broker && UserName(s.user) == c.user;
  if (!flags.password_file.empty()) {
    c.password_file = flags.password_file;
    c.password_source = Source::kFlag;
  } else if (!flags.password.empty()) {
    c.password = flags.password;
    c.password_source = Source::kFlag;
  } else if (!env.password_file.empty()) {
    c.password_file = env.password_file;
    c.password_source = Source::kEnvironment;
  } else if (!env.password.empty()) {
    c.password = env.password;
    c.password_source = Source::kEnvironment;
  } else if (same_user && !s.password.empty()) {
    c.password = s.password;
    c.password_source = Source::kLoginConfig;
  } else {
    return Error::InvalidArgument("no password for " + c.Principal() + " at " + c.broker_url +
                                  ": pass --password-file FILE, set CAIRN_PASSWORD_FILE, or run `cairnctl login" +
                                  (c.user_source == Source::kLoginConfig ? "" : " --user " + c.user) + "`");
  }
  return c;
}

Result<std::string> ReadPassword(const ResolvedConnection& c) {
  if (c.password_file.empty()) return c.password;
  auto pw = ReadFile(c.password_file);
  if (!pw.ok()) return Error::InvalidArgument("password file: " + pw.error().message);
  std::string p = *pw;
  while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
  if (p.empty()) return Error::InvalidArgument("password file " + c.password_file + " is empty");
  return p;
}

Result<std::string> PasswordFromText(std::string text, const std::string& origin) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) return Error::InvalidArgument(origin + ": no password");
  if (text.find_first_of("\r\n") != std::string::npos) return Error::InvalidArgument(origin + ": expected one line");
  return text;
}

Result<std::string> LoginConfigPath(const GetEnv& getenv_fn) {
  const char* xdg = getenv_fn("XDG_CONFIG_HOME");
  if (xdg && xdg[0] == '/') return std::string(xdg) + "/cairn/config";
  std::string home;
  if (const char* h = getenv_fn("HOME"); h && h[0]) {
    home = h;
  } else if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir) {
    home = pw->pw_dir;
  }
  if (home.empty()) return Error::FailedPrecondition("cannot find the config directory: set HOME or XDG_CONFIG_HOME");
  return home + "/.config/cairn/config";
}

Result<std::optional<LoginConfig>> LoadLoginConfig(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::optional<LoginConfig>();
    return Error::FailedPrecondition("cannot read " + path + ": " + std::strerror(errno));
  }
  auto text = ReadFile(path);
  if (!text.ok()) return Error::FailedPrecondition(text.error().message);
  LoginConfig c;
  ConfigSchema schema;
  schema.String("broker-url", &c.broker_url, "broker URL");
  schema.String("ca-file", &c.ca_file, "CA file that verifies the broker");
  schema.String("user", &c.user, "user name (principal user:NAME)");
  schema.String("password", &c.password, "the user's password");
  if (auto s = schema.LoadYaml(*text, path); !s.ok()) {
    return Error::FailedPrecondition(s.error().message + " (written by `cairnctl login`; run it again)");
  }
  if (!c.password.empty() && (st.st_mode & 077) != 0) {
    return Error::FailedPrecondition(path + " holds a password but others may read it (mode " + Octal(st.st_mode) +
                                     "): run `chmod 600 " + path + "` or `cairnctl logout`");
  }
  c.user = UserName(c.user);
  return std::optional<LoginConfig>(c);
}

std::string LoginConfigText(const LoginConfig& config) {
  std::string out = "# cairnctl login config: written by `cairnctl login`, credential removed by\n"
                    "# `cairnctl logout`. Flags and CAIRN_* environment variables take precedence.\n";
  auto line = [&](const char* key, const std::string& value) {
    if (!value.empty()) out += std::string(key) + ": " + Quoted(value) + "\n";
  };
  line("broker-url", config.broker_url);
  line("ca-file", config.ca_file);
  line("user", config.user);
  line("password", config.password);
  return out;
}

Status SaveLoginConfig(const std::string& path, const LoginConfig& config) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (auto s = MakeDirs(dir, 0700); !s.ok()) return s;
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return Error::Internal("cannot stat " + dir + ": " + std::strerror(errno));
  if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0) {
    return Error::Internal("cannot narrow " + dir + " to mode 0700: " + std::strerror(errno));
  }
  return WriteFileAtomic(path, LoginConfigText(config), 0600);
}

}  // namespace cairn::ctl
