#include "login.h"

#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iterator>

#include "cairn/common/files.h"
#include "cairn/ctl/format.h"
#include "cairn/v1/rpc.pb.h"

namespace cairn::ctl {
namespace {

// The terminal's settings while echo is off, restored if Ctrl-C interrupts
// the prompt (the process dies, the terminal must not stay silent).
termios g_saved_termios;

void RestoreTerminalAndExit(int sig) {
  ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// Reads one line from the terminal; with `echo` false the typed characters
// are not shown.
Result<std::string> Prompt(const std::string& prompt, bool echo, std::istream& in, std::ostream& err) {
  err << prompt << std::flush;
  termios old{};
  const bool hide = !echo && ::tcgetattr(STDIN_FILENO, &old) == 0;
  void (*old_int)(int) = SIG_DFL;
  void (*old_term)(int) = SIG_DFL;
  if (hide) {
    g_saved_termios = old;
    old_int = ::signal(SIGINT, RestoreTerminalAndExit);
    old_term = ::signal(SIGTERM, RestoreTerminalAndExit);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  const bool got = static_cast<bool>(std::getline(in, line));
  if (hide) {
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    ::signal(SIGINT, old_int);
    ::signal(SIGTERM, old_term);
  }
  if (!got) return Error::InvalidArgument("no input");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::string FirstOf(const std::string& a, const std::string& b, const std::string& c) {
  return !a.empty() ? a : !b.empty() ? b : c;
}


int Fail(std::ostream& err, const std::string& message, int code) {
  err << "cairnctl: " << Printable(message) << "\n";
  return code;
}

}  // namespace

int Login(const CommandLine& cl, const ConnectionSettings& env, const LoginState& login, std::istream& in,
          bool interactive, std::ostream& out, std::ostream& err) {
  if (cl.words.size() > 1) return Fail(err, "usage: cairnctl login [--broker-url URL] [--ca-file FILE] [--user NAME] "
                                            "[--password-file FILE | --password-stdin]", 2);
  if (login.path.empty()) return Fail(err, "cannot find the config directory: set HOME or XDG_CONFIG_HOME", 1);
  const LoginConfig stored = login.stored.value_or(LoginConfig{});

  ConnectionSettings given = cl.connection;  // what this login will use, beside env and the stored login
  const std::string broker = FirstOf(given.broker_url, env.broker_url, stored.broker_url);
  if (broker.empty()) return Fail(err, "login needs --broker-url URL (or CAIRN_BROKER_URL)", 2);
  const bool same_broker = broker == stored.broker_url;
  given.broker_url = broker;

  std::string ca = FirstOf(given.ca_file, env.ca_file, same_broker ? stored.ca_file : "");
  if (!ca.empty()) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(ca, ec);
    if (!ec) ca = abs.lexically_normal().string();
    if (!FileExists(ca)) return Fail(err, "CA file " + ca + " does not exist", 2);
  }
  given.ca_file = ca;

  std::string user = UserName(FirstOf(given.user, env.user, same_broker ? stored.user : ""));
  if (user.empty() && interactive) {
    auto u = Prompt("user: ", true, in, err);
    if (!u.ok()) return Fail(err, "login needs --user NAME", 2);
    user = UserName(*u);
  }
  if (user.empty()) return Fail(err, "login needs --user NAME (or CAIRN_USER)", 2);
  given.user = user;

  const bool from_stdin = cl.Bool("password-stdin");
  if (from_stdin && !given.password_file.empty()) {
    return Fail(err, "give --password-file or --password-stdin, not both", 2);
  }
  std::string password;
  if (!given.password_file.empty()) {
    ResolvedConnection file_only;
    file_only.password_file = given.password_file;
    auto pw = ReadPassword(file_only);
    if (!pw.ok()) return Fail(err, pw.error().message, 2);
    password = *pw;
  } else if (from_stdin) {
    auto pw = PasswordFromText(std::string(std::istreambuf_iterator<char>(in), {}), "--password-stdin");
    if (!pw.ok()) return Fail(err, pw.error().message, 2);
    password = *pw;
  } else if (interactive) {
    auto pw = Prompt("password for user:" + user + " at " + broker + ": ", false, in, err);
    if (!pw.ok() || pw->empty()) return Fail(err, "no password given", 2);
    password = *pw;
  } else {
    return Fail(err, "login needs a password: --password-file FILE or --password-stdin (stdin is not a terminal)", 2);
  }
  given.password_file.clear();
  given.password = password;

  // Only what this login gathered counts: the check must be of the
  // credential that will be stored.
  auto conn = ResolveConnection(given, ConnectionSettings{}, std::nullopt);
  if (!conn.ok()) return Fail(err, conn.error().message, 2);
  Ctl ctl(cl, "", login, in, out, err);
  if (auto st = ctl.Connect(*conn, password); !st.ok()) return Fail(err, st.error().message + "; nothing stored", 1);
  auto who = ctl.Call<v1::WhoAmIResponse>("registry", "WhoAmI", v1::WhoAmIRequest());
  if (!who.ok()) return Fail(err, who.error().message + "; nothing stored", 1);

  LoginConfig next{broker, ca, user, password};
  if (auto st = SaveLoginConfig(login.path, next); !st.ok()) return Fail(err, st.error().message, 1);

  if (ctl.Json()) {
    ctl.PrintJson(*who);
  } else {
    std::string roles;
    for (const auto& b : who->bindings()) roles += (roles.empty() ? "" : ",") + b.workspace() + "=" + b.role();
    out << "logged in to " << Printable(broker) << " as " << Printable(who->principal()) << " (roles: "
        << Printable(roles.empty() ? "<none>" : roles) << ")\ncredential stored in " << login.path << "\n";
  }
  if (!env.broker_url.empty() && env.broker_url != broker) {
    err << "note: CAIRN_BROKER_URL is set in this environment and takes precedence over the stored login\n";
  }
  if (!env.user.empty() && UserName(env.user) != user) {
    err << "note: CAIRN_USER is set in this environment and takes precedence over the stored login\n";
  }
  return 0;
}

int Logout(const CommandLine& cl, const std::string& path, std::ostream& out, std::ostream& err) {
  if (cl.words.size() > 1) return Fail(err, "usage: cairnctl logout", 2);
  if (path.empty() || !FileExists(path)) {
    out << "not logged in (no stored credential)\n";
    return 0;
  }
  auto stored = LoadLoginConfig(path);
  if (!stored.ok()) {
    // Unreadable, invalid or too open: it goes entirely.
    if (::unlink(path.c_str()) != 0) return Fail(err, "cannot remove " + path, 1);
    out << "removed " << path << "\n";
    return 0;
  }
  if (!*stored || !(*stored)->HasCredential()) {
    out << "not logged in (no stored credential in " << path << ")\n";
    return 0;
  }
  LoginConfig kept = **stored;
  const std::string who = "user:" + kept.user;
  kept.user.clear();
  kept.password.clear();
  if (kept.broker_url.empty() && kept.ca_file.empty()) {
    if (::unlink(path.c_str()) != 0) return Fail(err, "cannot remove " + path, 1);
  } else if (auto st = SaveLoginConfig(path, kept); !st.ok()) {
    return Fail(err, st.error().message, 1);
  }
  out << "logged out " << Printable(who) << " (removed the stored credential from " << path << ")\n";
  return 0;
}

}  // namespace cairn::ctl
