// `file` input: follows a file by name, like `tail -F`: reads complete lines,
// notices truncation (size below the read offset) and replacement (another
// inode at the path; the old file is read to its end first). Each poll reads
// at most 1 MiB, so Stop() stays prompt. The offset lives in memory only.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

constexpr milliseconds kPollInterval{100};
constexpr size_t kReadChunkBytes = 64 * 1024;
constexpr size_t kMaxBytesPerPoll = 1024 * 1024;
// A longer line is delivered in pieces of at most this size.
constexpr size_t kMaxRecordBytes = 64 * 1024;

std::string ErrnoText(int err) { return std::strerror(err); }

class FileInput final : public Input {
 public:
  FileInput(std::string path, bool from_beginning, const Env& env)
      : path_(std::move(path)), from_beginning_(from_beginning), clock_(env.clock) {}
  ~FileInput() override { Close(); }

  Status Begin() override {
    if (begun_) return OkStatus();
    begun_ = true;
    // A file that exists now is read from its end (unless from_beginning);
    // anything that appears later is new and is read from its start.
    if (OpenCurrent().ok() && !from_beginning_) {
      struct stat st {};
      if (::fstat(fd_, &st) == 0) offset_ = st.st_size;
    }
    return OkStatus();
  }

  Result<milliseconds> Poll(std::vector<Record>* out) override {
    (void)Begin();
    size_t budget = kMaxBytesPerPoll;
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) {
      const int err = errno;
      if (fd_ < 0) {
        if (err == ENOENT) return Error::NotFound("waiting for file " + path_);
        return Error::Unavailable("cannot stat " + path_ + ": " + ErrnoText(err));
      }
      // Renamed or deleted: keep reading what the old file still gets.
      return ReadAvailable(out, &budget);
    }
    if (fd_ >= 0 && (st.st_dev != dev_ || st.st_ino != ino_)) {
      // Replaced (rotation): finish the old file, then switch.
      auto drained = ReadAvailable(out, &budget);
      if (!drained.ok()) return drained.error();
      if (*drained == milliseconds(0)) return milliseconds(0);
      if (!partial_.empty()) EmitLine(std::exchange(partial_, {}), out);
      Close();
    }
    if (fd_ < 0) {
      if (Status s = OpenCurrent(); !s.ok()) return s.error();
      offset_ = 0;
    }
    return ReadAvailable(out, &budget);
  }

  void End() override { Close(); }

 private:
  Status OpenCurrent() {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == ENOENT) return Error::NotFound("waiting for file " + path_);
      return Error::Unavailable("cannot open " + path_ + ": " + ErrnoText(err));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return Error::Unavailable("cannot read " + path_ + ": not a regular file");
    }
    fd_ = fd;
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    offset_ = 0;
    partial_.clear();
    partial_start_ = 0;
    return OkStatus();
  }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  Result<milliseconds> ReadAvailable(std::vector<Record>* out, size_t* budget) {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      return Error::Unavailable("cannot stat " + path_ + ": " + ErrnoText(errno));
    }
    if (st.st_size < offset_) {  // truncated: start over
      offset_ = 0;
      partial_.clear();
      partial_start_ = 0;
    }
    buf_.resize(kReadChunkBytes);
    while (*budget > 0) {
      const ssize_t n = ::pread(fd_, buf_.data(), std::min(buf_.size(), *budget), offset_);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Error::Unavailable("cannot read " + path_ + ": " + ErrnoText(errno));
      }
      if (n == 0) return kPollInterval;
      Split(std::string_view(buf_.data(), static_cast<size_t>(n)), out);
      offset_ += n;
      *budget -= static_cast<size_t>(n);
    }
    return milliseconds(0);
  }

  void EmitLine(std::string line, std::vector<Record>* out) {
    Record r;
    r.body = std::move(line);
    r.timestamp_ms = clock_->NowMs();
    r.position = {path_, partial_start_};
    out->push_back(std::move(r));
  }

  // Splits data read at offset_ into lines.
  void Split(std::string_view data, std::vector<Record>* out) {
    size_t start = 0;
    while (start < data.size()) {
      const size_t nl = data.find('\n', start);
      if (nl == std::string_view::npos) {
        partial_.append(data.substr(start));
        break;
      }
      partial_.append(data.substr(start, nl - start));
      if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
      EmitLine(std::exchange(partial_, {}), out);
      partial_start_ = static_cast<uint64_t>(offset_) + nl + 1;
      start = nl + 1;
    }
    while (partial_.size() > kMaxRecordBytes) {
      EmitLine(partial_.substr(0, kMaxRecordBytes), out);
      partial_.erase(0, kMaxRecordBytes);
      partial_start_ += kMaxRecordBytes;
    }
  }

  const std::string path_;
  const bool from_beginning_;
  const Clock* clock_;
  bool begun_ = false;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  off_t offset_ = 0;
  std::string partial_;         // bytes after the last newline read so far
  uint64_t partial_start_ = 0;  // file offset where partial_ starts
  std::string buf_;
};

}  // namespace

void RegisterFileInput(ComponentRegistry* r) {
  (void)r->AddInput("file", [](const google::protobuf::Message& m, const std::string& path,
                               const Env& env) -> Result<std::unique_ptr<Input>> {
    const auto& c = static_cast<const v1::FileInput&>(m);
    auto resolved = ResolvePath(path + ".path", c.path(), env);
    if (!resolved.ok()) return resolved.error();
    return std::unique_ptr<Input>(
        std::make_unique<FileInput>(*resolved, c.from_beginning(), env));
  });
}

}  // namespace cairn::edge::runtime
