// Where cairnctl finds its broker and credential, and the login config that
// `cairnctl login` writes.
//
// Each setting comes from the first of: command-line flags, the environment
// (CAIRN_BROKER_URL, CAIRN_CA_FILE, CAIRN_USER, CAIRN_PASSWORD_FILE,
// CAIRN_PASSWORD), the login config ($XDG_CONFIG_HOME/cairn/config, else
// ~/.config/cairn/config). A login belongs to one broker: its CA file and
// user apply only while the broker URL in use is the stored one, and its
// password only while the user in use is the stored user too, so a stored
// password is never sent to another broker or for another user.
// Thread-safety: pure functions, except the file functions (plain file I/O).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "cairn/common/result.h"

namespace cairn::ctl {

// getenv-style lookup (injectable for tests); returns nullptr when unset.
using GetEnv = std::function<const char*(const char*)>;

// One source's settings; an empty field is not set there.
struct ConnectionSettings {
  std::string broker_url;
  std::string ca_file;
  std::string user;           // "alice" (a leading "user:" is accepted)
  std::string password_file;  // wins over `password` from the same source
  std::string password;
};

// What `cairnctl login` stores.
struct LoginConfig {
  std::string broker_url;
  std::string ca_file;  // absolute path
  std::string user;
  std::string password;

  bool HasCredential() const { return !user.empty() && !password.empty(); }
};

enum class Source { kNone, kFlag, kEnvironment, kLoginConfig };
// "flag", "environment", "login config" or "none".
const char* SourceName(Source source);

struct ResolvedConnection {
  std::string broker_url;
  std::string ca_file;
  std::string user;           // without "user:"
  std::string password_file;  // read it when set
  std::string password;       // otherwise this
  Source broker_source = Source::kNone;
  Source user_source = Source::kNone;
  Source password_source = Source::kNone;

  std::string Principal() const { return "user:" + user; }
};

// CAIRN_BROKER_URL, CAIRN_CA_FILE, CAIRN_USER, CAIRN_PASSWORD_FILE,
// CAIRN_PASSWORD.
ConnectionSettings SettingsFromEnvironment(const GetEnv& getenv_fn);

// "alice" for "alice" and "user:alice".
std::string UserName(const std::string& user);

// Picks each setting by precedence (see the top of this file). Fails, saying
// what to do, when no broker, user or password is configured.
Result<ResolvedConnection> ResolveConnection(const ConnectionSettings& flags, const ConnectionSettings& env,
                                             const std::optional<LoginConfig>& stored);

// The password `c` names: the file's contents without trailing newlines,
// or `c.password`.
Result<std::string> ReadPassword(const ResolvedConnection& c);

// A password typed or piped in (--password-stdin): trailing newlines
// dropped; fails if nothing is left or more than one line remains.
Result<std::string> PasswordFromText(std::string text, const std::string& origin);

// $XDG_CONFIG_HOME/cairn/config when XDG_CONFIG_HOME is an absolute path,
// else $HOME/.config/cairn/config (HOME from the password database if unset).
Result<std::string> LoginConfigPath(const GetEnv& getenv_fn);

// Reads the login config; nullopt if there is none. Refuses a file that
// holds a password and that others may read (mode & 077), saying how to fix
// it, and rejects unknown keys.
Result<std::optional<LoginConfig>> LoadLoginConfig(const std::string& path);
// The file text SaveLoginConfig writes (values double-quoted and escaped).
std::string LoginConfigText(const LoginConfig& config);
// Writes atomically with mode 0600; creates the directory with mode 0700 and
// narrows it to 0700 if it exists with a wider mode.
Status SaveLoginConfig(const std::string& path, const LoginConfig& config);

}  // namespace cairn::ctl
