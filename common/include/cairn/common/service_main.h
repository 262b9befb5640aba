// Pieces every service's main() shares: the broker connection settings,
// loading a Config from file + env + flags, and waiting for SIGTERM/SIGINT.
// Thread-safety: call from main() only.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "cairn/common/config.h"
#include "cairn/common/mqtt_paho.h"

namespace cairn {

struct BrokerConfig {
  std::string url;            // ssl://host:port of the password listener
  std::string ca_file;        // CA that signed the broker certificate
  std::string username;       // e.g. svc:registry
  std::string password_file;  // file holding the password (never on the command line)

  void Bind(ConfigSchema& schema, const std::string& default_username);
  Result<MqttOptions> ToOptions(const std::string& client_prefix) const;
};

// database-url and database-wait, shared by the services.
struct DatabaseConfig {
  std::string url;
  std::chrono::milliseconds wait{30000};

  void Bind(ConfigSchema& schema);
  // `wait` in whole seconds, at least 1 (what Db::Connect takes).
  int WaitSeconds() const;
};

// log-level and log-file, shared by every binary.
struct LogConfig {
  std::string level = "info";
  std::string file;

  void Bind(ConfigSchema& schema);
  Status Init(const std::string& component) const;
};

// Prints "{binary}: {what}" to stderr and returns the exit code 1.
int ExitWithError(const char* binary, const std::string& what);

// Loads `schema` from --config FILE (if given), then env with `env_prefix`,
// then the flags. Returns positional args. Prints usage on --help and exits 0.
Result<std::vector<std::string>> LoadConfig(ConfigSchema& schema, const std::string& env_prefix,
                                            const std::vector<std::string>& args,
                                            const std::string& usage_head);

// Blocks SIGINT/SIGTERM in this thread (call before starting threads, so they
// inherit the mask), and later WaitForStopSignal() returns the signal.
void BlockStopSignals();
int WaitForStopSignal();
// Waits at most `timeout` for SIGINT/SIGTERM; returns the signal, or 0.
int PollStopSignal(std::chrono::milliseconds timeout);
// Like WaitForStopSignal, but calls `tick` every `period` while waiting.
int WaitForStopSignal(std::chrono::milliseconds period, const std::function<void()>& tick);

}  // namespace cairn
