// `file` output: appends one line per record. Opened once; each record is
// one write(2), so other processes see it at once and concurrent appenders
// never interleave within a line.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

class FileOutput final : public Output {
 public:
  explicit FileOutput(std::string path) : path_(std::move(path)) {}
  ~FileOutput() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Open() override {
    if (fd_ >= 0) return OkStatus();
    const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return Error::Unavailable("cannot create directory " + parent.string() + ": " +
                                  ec.message());
      }
    }
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      return Error::Unavailable("cannot open " + path_ + ": " + std::strerror(errno));
    }
    return OkStatus();
  }

  WriteResult Write(const Record& record) override {
    line_ = record.Text();
    line_.push_back('\n');
    size_t done = 0;
    while (done < line_.size()) {
      const ssize_t n = ::write(fd_, line_.data() + done, line_.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return {WriteResult::Kind::kFailed,
                "cannot write " + path_ + ": " + std::strerror(errno)};
      }
      done += static_cast<size_t>(n);
    }
    return {};
  }

 private:
  const std::string path_;
  int fd_ = -1;
  std::string line_;
};

}  // namespace

void RegisterFileOutput(ComponentRegistry* r) {
  (void)r->AddOutput("file", [](const google::protobuf::Message& m, const std::string& path,
                                const Env& env) -> Result<std::unique_ptr<Output>> {
    auto resolved = ResolvePath(path + ".path", static_cast<const v1::FileOutput&>(m).path(), env);
    if (!resolved.ok()) return resolved.error();
    return std::unique_ptr<Output>(std::make_unique<FileOutput>(*resolved));
  });
}

}  // namespace cairn::edge::runtime
