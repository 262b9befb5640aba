// `exec` input: runs a command (argv, no shell) in its own process group and
// reads its standard output, one record per line (stdin and stderr are
// /dev/null). When the command exits it is started again after a back-off
// that doubles from `restart` (default 1 s) up to 1 min, and resets once a
// run lasted a minute. End() kills the process group (SIGTERM, then SIGKILL
// after 100 ms), so stopping stays bounded.
// The command's environment is PATH, LANG, LC_ALL, TZ and HOME only.
// Refused unless Env::allow_exec: a pipeline comes from the control plane,
// running commands is the node owner's decision.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

constexpr int64_t kDefaultRestartMs = 1000;
constexpr int64_t kMaxRestartMs = 60'000;
constexpr int64_t kHealthyRunMs = 60'000;
constexpr milliseconds kReadInterval{50};
constexpr size_t kMaxBytesPerPoll = 1024 * 1024;
constexpr size_t kMaxRecordBytes = 64 * 1024;

class ExecInput final : public Input {
 public:
  ExecInput(std::vector<std::string> argv, int64_t restart_ms, const Env& env)
      : argv_(std::move(argv)), first_delay_ms_(restart_ms), delay_ms_(restart_ms),
        clock_(env.clock) {
    // The command sees a minimal environment: the agent's may hold secrets
    // (a bootstrap token).
    for (const char* name : {"PATH", "LANG", "LC_ALL", "TZ", "HOME"}) {
      if (const char* v = std::getenv(name)) env_.push_back(std::string(name) + "=" + v);
    }
  }
  ~ExecInput() override { End(); }

  Result<milliseconds> Poll(std::vector<Record>* out) override {
    const int64_t now = clock_->NowMs();
    if (pid_ < 0) {
      if (now < next_start_ms_) return milliseconds(next_start_ms_ - now);
      if (Status s = Spawn(now); !s.ok()) {
        ScheduleRestart(now);
        return s.error();
      }
    }
    // Read what is there.
    char buf[64 * 1024];
    size_t budget = kMaxBytesPerPoll;
    bool eof = fd_ < 0;
    while (!eof && budget > 0) {
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n > 0) {
        Split(std::string_view(buf, static_cast<size_t>(n)), now, out);
        budget -= std::min(budget, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) {
        eof = true;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;
      } else {
        eof = true;
      }
    }
    if (budget == 0) return milliseconds(0);
    if (eof && fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
      if (!partial_.empty()) Emit(std::exchange(partial_, {}), now, out);
    }
    if (fd_ < 0) {
      // stdout closed: reap (the process may take a moment to exit).
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == 0) return kReadInterval;
      pid_ = -1;
      const std::string how = (r > 0 && WIFEXITED(status))
                                  ? "exited with status " + std::to_string(WEXITSTATUS(status))
                              : (r > 0 && WIFSIGNALED(status))
                                  ? "was killed by signal " + std::to_string(WTERMSIG(status))
                                  : "ended";
      if (now - started_ms_ >= kHealthyRunMs) delay_ms_ = first_delay_ms_;
      ScheduleRestart(now);
      return Error::Unavailable("exec: " + argv_[0] + " " + how + "; restarting in " +
                                std::to_string(next_start_ms_ - now) + " ms");
    }
    return kReadInterval;
  }

  void End() override {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    if (pid_ < 0) return;
    ::kill(-pid_, SIGTERM);
    for (int i = 0; i < 20; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  Status Spawn(int64_t now) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      return Error::Unavailable(std::string("exec: pipe: ") + std::strerror(errno));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
    std::vector<char*> argv;
    for (std::string& a : argv_) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (std::string& e : env_) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = -1;
    const int err = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(fds[1]);
    if (err != 0) {
      ::close(fds[0]);
      return Error::Unavailable("exec: cannot run " + argv_[0] + ": " + std::strerror(err));
    }
    ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    fd_ = fds[0];
    pid_ = pid;
    started_ms_ = now;
    ++runs_;
    return OkStatus();
  }

  void ScheduleRestart(int64_t now) {
    next_start_ms_ = now + delay_ms_;
    delay_ms_ = std::min(kMaxRestartMs, delay_ms_ * 2);
  }

  void Emit(std::string line, int64_t now, std::vector<Record>* out) {
    Record r;
    r.body = std::move(line);
    r.timestamp_ms = now;
    r.position = {argv_[0], line_no_++};
    out->push_back(std::move(r));
  }

  void Split(std::string_view data, int64_t now, std::vector<Record>* out) {
    size_t start = 0;
    while (start < data.size()) {
      const size_t nl = data.find('\n', start);
      if (nl == std::string_view::npos) {
        partial_.append(data.substr(start));
        break;
      }
      partial_.append(data.substr(start, nl - start));
      if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
      Emit(std::exchange(partial_, {}), now, out);
      start = nl + 1;
    }
    while (partial_.size() > kMaxRecordBytes) {
      Emit(partial_.substr(0, kMaxRecordBytes), now, out);
      partial_.erase(0, kMaxRecordBytes);
    }
  }

  std::vector<std::string> argv_;
  std::vector<std::string> env_;
  const int64_t first_delay_ms_;
  int64_t delay_ms_;
  const Clock* clock_;
  pid_t pid_ = -1;
  int fd_ = -1;
  int64_t started_ms_ = 0;
  int64_t next_start_ms_ = 0;
  uint64_t runs_ = 0;
  uint64_t line_no_ = 0;
  std::string partial_;
};

}  // namespace

void RegisterExecInput(ComponentRegistry* r) {
  (void)r->AddInput("exec", [](const google::protobuf::Message& m, const std::string& path,
                               const Env& env) -> Result<std::unique_ptr<Input>> {
    const auto& c = static_cast<const v1::ExecInput&>(m);
    if (!env.allow_exec) {
      return Error::PermissionDenied(
          path + ": running commands is not allowed on this node (its owner enables it with "
                 "cairn-edge run --allow-exec)");
    }
    if (c.command().empty() || c.command(0).empty()) {
      return Error::InvalidArgument(path + ".command: needs the program to run");
    }
    return std::unique_ptr<Input>(std::make_unique<ExecInput>(
        std::vector<std::string>(c.command().begin(), c.command().end()),
        c.restart_ms() ? c.restart_ms() : kDefaultRestartMs, env));
  });
}

}  // namespace cairn::edge::runtime
