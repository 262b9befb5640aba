// `file` output: appends one line per record. Opened once; each record is
// one write(2), so other processes see it at once and concurrent appenders
// never interleave within a line. With `max_bytes`, before a line would take
// the file past it, PATH.{keep-1} -> PATH.{keep} ... PATH -> PATH.1 and a new
// PATH is started (a single line longer than max_bytes still goes whole into
// a fresh file).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

class FileOutput final : public Output {
 public:
  FileOutput(std::string path, uint64_t max_bytes, uint32_t keep, std::shared_ptr<const FileRoots> files)
      : path_(std::move(path)), max_bytes_(max_bytes), keep_(keep == 0 ? 5 : keep), files_(std::move(files)) {}
  ~FileOutput() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Open() override {
    if (fd_ >= 0) return OkStatus();
    if (files_) return OpenFile();  // FileRoots creates parent directories inside the root
    const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return Error::Unavailable("cannot create directory " + parent.string() + ": " +
                                  ec.message());
      }
    }
    return OpenFile();
  }

  WriteResult Write(const Record& record) override {
    line_ = record.Text();
    line_.push_back('\n');
    if (max_bytes_ != 0 && size_ > 0 && size_ + line_.size() > max_bytes_) {
      if (Status s = Rotate(); !s.ok()) return {WriteResult::Kind::kFailed, s.error().message};
    }
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
    size_ += line_.size();
    return {};
  }

 private:
  Status OpenFile() {
    if (files_) {
      auto opened = files_->OpenForAppend(path_);
      if (!opened.ok()) return opened.error();
      fd_ = opened->release();
    } else {
      fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    }
    if (fd_ < 0) {
      return Error::Unavailable("cannot open " + path_ + ": " + std::strerror(errno));
    }
    struct stat st {};
    size_ = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    return OkStatus();
  }

  Status Rotate() {
    ::close(fd_);
    fd_ = -1;
    auto name = [this](uint32_t i) { return i == 0 ? path_ : path_ + "." + std::to_string(i); };
    if (files_) {
      (void)files_->Remove(name(keep_));
      for (uint32_t i = keep_; i > 0; --i) {
        Status st = files_->Rename(name(i - 1), name(i));
        if (!st.ok() && st.error().code != ErrorCode::kNotFound) {
          return Error::Unavailable("cannot rotate " + name(i - 1) + ": " + st.error().message);
        }
      }
      return OpenFile();
    }
    ::unlink(name(keep_).c_str());
    for (uint32_t i = keep_; i > 0; --i) {
      if (::rename(name(i - 1).c_str(), name(i).c_str()) != 0 && errno != ENOENT) {
        return Error::Unavailable("cannot rotate " + name(i - 1) + ": " + std::strerror(errno));
      }
    }
    return OpenFile();
  }

  const std::string path_;
  const uint64_t max_bytes_;
  const uint32_t keep_;
  const std::shared_ptr<const FileRoots> files_;
  uint64_t size_ = 0;
  int fd_ = -1;
  std::string line_;
};

}  // namespace

void RegisterFileOutput(ComponentRegistry* r) {
  (void)r->AddOutput("file", [](const google::protobuf::Message& m, const std::string& path,
                                const Env& env) -> Result<std::unique_ptr<Output>> {
    const auto& c = static_cast<const v1::FileOutput&>(m);
    auto resolved = ResolvePath(path + ".path", c.path(), env, FileAccess::kWrite);
    if (!resolved.ok()) return resolved.error();
    return std::unique_ptr<Output>(
        std::make_unique<FileOutput>(*resolved, c.max_bytes(), c.keep(), env.files));
  });
}

}  // namespace cairn::edge::runtime
