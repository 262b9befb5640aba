// `file` input: follows a file by name, like `tail -F`: reads complete lines,
// notices truncation (size below the read offset) and replacement (another
// inode at the path; the old file is read to its end first). Each poll reads
// at most 1 MiB, so Stop() stays prompt.
//
// The position survives a restart through the Env's checkpoints: at the
// start of each poll (when the runner has written every record of the
// previous one) and at most once a second, the file's identity and the
// offset after the last complete line are saved. On Begin, a checkpoint of
// the same file resumes there; of another file (rotated while stopped) the
// new file is read from its start. Records are read at least once: after a
// crash, up to a second's records (and those a batch held) come again.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <cstring>

#include "cairn/edge/runtime/registry.h"

namespace cairn::edge::runtime {
namespace {

constexpr milliseconds kPollInterval{100};
constexpr size_t kReadChunkBytes = 64 * 1024;
constexpr size_t kMaxBytesPerPoll = 1024 * 1024;
// A longer line is delivered in pieces of at most this size.
constexpr size_t kMaxRecordBytes = 64 * 1024;
constexpr int64_t kCheckpointEveryMs = 1000;

std::string ErrnoText(int err) { return std::strerror(err); }

class FileInput final : public Input {
 public:
  FileInput(std::string path, bool from_beginning, const Env& env)
      : path_(std::move(path)),
        from_beginning_(from_beginning),
        clock_(env.clock),
        checkpoints_(env.checkpoints),
        key_("file:" + path_),
        files_(env.files) {}
  ~FileInput() override { Close(); }

  Status Begin() override {
    if (begun_) return OkStatus();
    begun_ = true;
    if (files_) {
      // A path the node's roots refuse (e.g. a symlink out of a root) fails
      // the pipeline now; a file that does not exist yet is waited for.
      auto st = files_->StatForRead(path_);
      if (!st.ok() && st.error().code != ErrorCode::kNotFound) return st.error();
    }
    // A file that exists now is read from its end (unless from_beginning);
    // anything that appears later is new and is read from its start.
    const bool open = OpenCurrent().ok();
    if (auto saved = LoadCheckpoint()) {
      struct stat st {};
      if (open && saved->dev == dev_ && saved->ino == ino_ && ::fstat(fd_, &st) == 0 &&
          st.st_size >= saved->offset) {
        offset_ = saved->offset;
        partial_start_ = static_cast<uint64_t>(offset_);
      }
      // Another file than the one we were reading: all of it is new.
      return OkStatus();
    }
    if (open && !from_beginning_) {
      struct stat st {};
      if (::fstat(fd_, &st) == 0) {
        offset_ = st.st_size;
        partial_start_ = static_cast<uint64_t>(offset_);
      }
    }
    return OkStatus();
  }

  Result<milliseconds> Poll(std::vector<Record>* out) override {
    (void)Begin();
    MaybeSaveCheckpoint();
    size_t budget = kMaxBytesPerPoll;
    struct stat st {};
    if (files_) {
      auto confined = files_->StatForRead(path_);
      if (confined.ok()) {
        st = *confined;
      } else if (fd_ < 0) {
        return confined.error();
      } else {
        return ReadAvailable(out, &budget);  // renamed away: finish the old file
      }
    } else if (::stat(path_.c_str(), &st) != 0) {
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
  struct Position {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t offset = 0;
  };

  std::optional<Position> LoadCheckpoint() {
    if (!checkpoints_) return std::nullopt;
    auto text = checkpoints_->Load(key_);
    if (!text) return std::nullopt;
    unsigned long long dev = 0, ino = 0;
    long long offset = 0;
    if (std::sscanf(text->c_str(), "%llu %llu %lld", &dev, &ino, &offset) != 3 || offset < 0) {
      return std::nullopt;
    }
    return Position{static_cast<dev_t>(dev), static_cast<ino_t>(ino), static_cast<off_t>(offset)};
  }

  // Saves where the last complete line handed out ends (all of them have
  // been through the pipeline when Poll is called again).
  void MaybeSaveCheckpoint() {
    if (!checkpoints_ || fd_ < 0) return;
    const std::string value = std::to_string(static_cast<unsigned long long>(dev_)) + " " +
                              std::to_string(static_cast<unsigned long long>(ino_)) + " " +
                              std::to_string(partial_start_);
    if (value == saved_) return;
    const int64_t now = clock_->NowMs();
    if (!saved_.empty() && now - saved_ms_ < kCheckpointEveryMs) return;
    checkpoints_->Save(key_, value);
    saved_ = value;
    saved_ms_ = now;
  }

  Status OpenCurrent() {
    int fd = -1;
    if (files_) {
      auto opened = files_->OpenForRead(path_);
      if (!opened.ok()) return opened.error();
      fd = opened->release();
    } else {
      fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    }
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
  const std::shared_ptr<Checkpoints> checkpoints_;
  const std::string key_;
  std::string saved_;
  int64_t saved_ms_ = 0;
  bool begun_ = false;
  std::shared_ptr<const FileRoots> files_;
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
    auto resolved = ResolvePath(path + ".path", c.path(), env, FileAccess::kRead);
    if (!resolved.ok()) return resolved.error();
    return std::unique_ptr<Input>(
        std::make_unique<FileInput>(*resolved, c.from_beginning(), env));
  });
}

}  // namespace cairn::edge::runtime
