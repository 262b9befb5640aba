#include "cairn/common/service_main.h"

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

#include <algorithm>

#include "cairn/common/files.h"
#include "cairn/common/log.h"

namespace cairn {

void BrokerConfig::Bind(ConfigSchema& schema, const std::string& default_username) {
  username = default_username;
  schema.String("broker-url", &url, "broker URL, ssl://host:port (the password listener)");
  schema.String("broker-ca-file", &ca_file, "CA certificate that verifies the broker");
  schema.String("broker-username", &username, "broker username (default " + default_username + ")");
  schema.String("broker-password-file", &password_file, "file holding the broker password");
}

void DatabaseConfig::Bind(ConfigSchema& schema) {
  schema.String("database-url", &url, "PostgreSQL connection URL");
  schema.Duration("database-wait", &wait, "how long to retry the first database connection (default 30s)");
}

int DatabaseConfig::WaitSeconds() const {
  return static_cast<int>(std::max<int64_t>(1, wait.count() / 1000));
}

void LogConfig::Bind(ConfigSchema& schema) {
  schema.String("log-level", &level, "trace|debug|info|warn|error (default info)");
  schema.String("log-file", &file, "log to this file instead of stderr");
}

Status LogConfig::Init(const std::string& component) const { return InitLogging(component, level, file); }

int ExitWithError(const char* binary, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", binary, what.c_str());
  return 1;
}

Result<MqttOptions> BrokerConfig::ToOptions(const std::string& client_prefix) const {
  if (url.empty()) return Error::InvalidArgument("broker-url is not set");
  MqttOptions o;
  o.uri = url;
  o.client_id = RandomClientId(client_prefix);
  o.username = username;
  o.ca_file = ca_file;
  if (!password_file.empty()) {
    auto pw = ReadFile(password_file);
    if (!pw.ok()) return Error::InvalidArgument("broker-password-file: " + pw.error().message);
    std::string p = *pw;
    while (!p.empty() && (p.back() == '\n' || p.back() == '\r' || p.back() == ' ')) p.pop_back();
    o.password = p;
  }
  return o;
}

Result<std::vector<std::string>> LoadConfig(ConfigSchema& schema, const std::string& env_prefix,
                                            const std::vector<std::string>& args,
                                            const std::string& usage_head) {
  std::string config_file;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::printf("%s\n\nOptions (also as YAML keys in --config FILE, or env %s_KEY):\n%s", usage_head.c_str(),
                  env_prefix.c_str(), schema.Usage().c_str());
      std::exit(0);
    }
    if (args[i] == "--config" && i + 1 < args.size()) {
      config_file = args[++i];
    } else if (args[i].rfind("--config=", 0) == 0) {
      config_file = args[i].substr(9);
    } else {
      rest.push_back(args[i]);
    }
  }
  if (!config_file.empty()) {
    if (auto st = schema.LoadFile(config_file); !st.ok()) return st.error();
  }
  if (auto st = schema.LoadEnv(env_prefix, [](const char* n) { return std::getenv(n); }); !st.ok()) {
    return st.error();
  }
  return schema.LoadFlags(rest);
}

void BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForStopSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

int PollStopSignal(std::chrono::milliseconds timeout) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  timespec ts{static_cast<time_t>(timeout.count() / 1000), static_cast<long>((timeout.count() % 1000) * 1000000)};
  int sig = sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

int WaitForStopSignal(std::chrono::milliseconds period, const std::function<void()>& tick) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  for (;;) {
    timespec ts{static_cast<time_t>(period.count() / 1000),
                static_cast<long>((period.count() % 1000) * 1000000)};
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig > 0) return sig;
    tick();
  }
}

}  // namespace cairn
