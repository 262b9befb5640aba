#include "cairn/edge/outbound_queue.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>

// On-disk format (all integers little-endian):
//   DIR/NNNNNNNNNNNNNNNNNNNN.seg  segment whose first record has seq N (20 digits)
//   record  = magic u32 (0x43524543 "CERC") | body_len u32 | seq u64 |
//             crc u32 (CRC-32C of the 8 seq bytes then the body) | body
//   body    = kind u8 | topic_len u16 | ctype_len u8 | topic | ctype | payload
//   DIR/cursor = magic u32 (0x52554343 "CCUR") | head_seq u64 | crc u32 of head_seq
// head_seq is the first record not yet acked or dropped. Within a segment
// the records' seqs are consecutive; a record that breaks the chain, fails
// its CRC or is cut short ends the segment.

namespace cairn::edge {
namespace {

constexpr uint32_t kRecordMagic = 0x43524543;
constexpr uint32_t kCursorMagic = 0x52554343;
constexpr size_t kHeaderBytes = 20;
constexpr size_t kMaxBody = 64u << 20;

// CRC-32C (Castagnoli), slicing-by-8: eight tables, eight bytes per step
// (byte-order independent: the bytes are combined explicitly). The profile
// of a bulk run showed the byte-at-a-time form as a quarter of the node's
// CPU (docs/benchmarks.md).
using CrcTables = std::array<std::array<uint32_t, 256>, 8>;

CrcTables MakeCrcTables() {
  CrcTables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (size_t k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF];
  }
  return t;
}

void PutU16(std::string& s, uint16_t v) { s.append(reinterpret_cast<const char*>(&v), 2); }
void PutU32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
void PutU64(std::string& s, uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
template <typename T>
T Get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::string ErrnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string SegmentName(uint64_t first_seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu.seg", static_cast<unsigned long long>(first_seq));
  return buf;
}

bool PreadAll(int fd, char* buf, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t r = ::pread(fd, buf, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    buf += r;
    n -= static_cast<size_t>(r);
    off += static_cast<uint64_t>(r);
  }
  return true;
}

bool WriteAll(int fd, const char* buf, size_t n) {
  while (n > 0) {
    ssize_t r = ::write(fd, buf, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    buf += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// Parses one record at `p` (with `avail` bytes readable). Returns its total
// size, 0 if it is cut short (need more bytes), or -1 if it is invalid.
int64_t ParseRecord(const char* p, size_t avail, uint64_t expect_seq, QueuedRecord* out) {
  if (avail < kHeaderBytes) return 0;
  if (Get<uint32_t>(p) != kRecordMagic) return -1;
  uint32_t len = Get<uint32_t>(p + 4);
  uint64_t seq = Get<uint64_t>(p + 8);
  if (len < 4 || len > kMaxBody) return -1;
  if (expect_seq != 0 && seq != expect_seq) return -1;
  if (avail < kHeaderBytes + len) return 0;
  const char* body = p + kHeaderBytes;
  uint32_t crc = Crc32c(Crc32c(0, p + 8, 8), body, len);
  if (crc != Get<uint32_t>(p + 16)) return -1;
  uint8_t kind = static_cast<uint8_t>(body[0]);
  uint16_t tlen = Get<uint16_t>(body + 1);
  uint8_t clen = static_cast<uint8_t>(body[3]);
  if (kind > 1 || 4u + tlen + clen > len) return -1;
  if (out) {
    out->seq = seq;
    out->kind = static_cast<QueuedRecord::Kind>(kind);
    out->topic.assign(body + 4, tlen);
    out->content_type.assign(body + 4 + tlen, clen);
    out->payload.assign(body + 4 + tlen + clen, len - 4 - tlen - clen);
  }
  return static_cast<int64_t>(kHeaderBytes + len);
}

struct Segment {
  uint64_t first_seq = 0;  // from the file name
  uint64_t last_seq = 0;   // of its last valid record; first_seq - 1 if none
  uint64_t size = 0;       // bytes of valid records
  std::string path;
};

class SegmentedLogQueue final : public OutboundQueue {
 public:
  explicit SegmentedLogQueue(SegmentedLogOptions options) : options_(std::move(options)) {}

  ~SegmentedLogQueue() override {
    if (active_fd_ >= 0) ::close(active_fd_);
    if (read_fd_ >= 0) ::close(read_fd_);
    if (cursor_fd_ >= 0) ::close(cursor_fd_);
  }

  Status Open();

  Result<uint64_t> Append(QueuedRecord::Kind kind, std::string_view topic, std::string_view content_type,
                          std::string_view payload) override {
    if (topic.size() > 0xFFFF || content_type.size() > 0xFF) {
      return Error::InvalidArgument("topic or content type too long for the outbound queue");
    }
    size_t body = 4 + topic.size() + content_type.size() + payload.size();
    if (kHeaderBytes + body > options_.max_bytes || body > kMaxBody) {
      return Error::InvalidArgument("record of " + std::to_string(payload.size()) +
                                    " bytes is larger than the outbound queue");
    }
    std::unique_lock lock(mu_);
    if (auto st = MakeRoom(kHeaderBytes + body); !st.ok()) return st.error();
    if (segments_.back().size >= options_.segment_bytes) {
      if (auto st = Roll(); !st.ok()) return st.error();
    }
    uint64_t seq = next_seq_;
    buf_.clear();
    PutU32(buf_, kRecordMagic);
    PutU32(buf_, static_cast<uint32_t>(body));
    PutU64(buf_, seq);
    PutU32(buf_, 0);  // crc, filled below
    buf_.push_back(static_cast<char>(kind));
    PutU16(buf_, static_cast<uint16_t>(topic.size()));
    buf_.push_back(static_cast<char>(content_type.size()));
    buf_.append(topic);
    buf_.append(content_type);
    buf_.append(payload);
    uint32_t crc = Crc32c(Crc32c(0, buf_.data() + 8, 8), buf_.data() + kHeaderBytes, body);
    std::memcpy(buf_.data() + 16, &crc, 4);
    Segment& seg = segments_.back();
    if (!WriteAll(active_fd_, buf_.data(), buf_.size())) {
      Error e = Error::Unavailable(ErrnoText("outbound queue: write " + seg.path));
      // Cut a partial write so the file ends with a whole record again.
      (void)!::ftruncate(active_fd_, static_cast<off_t>(seg.size));
      return e;
    }
    seg.size += buf_.size();
    seg.last_seq = seq;
    next_seq_ = seq + 1;
    ++depth_;
    bytes_ += buf_.size();
    lock.unlock();
    cv_.notify_all();
    return seq;
  }

  Result<std::vector<QueuedRecord>> Peek(size_t max_records, size_t max_bytes) override {
    std::lock_guard lock(mu_);
    std::vector<QueuedRecord> out;
    size_t taken_bytes = 0;
    size_t si = 0;
    uint64_t off = head_off_;
    uint64_t seq = head_seq_;
    std::string chunk;
    bool full = false;  // the next record would exceed max_bytes
    while (out.size() < max_records && depth_ > out.size() && si < segments_.size()) {
      const Segment& seg = segments_[si];
      if (off >= seg.size) {
        if (++si < segments_.size()) seq = std::max(seq, segments_[si].first_seq);
        off = 0;
        continue;
      }
      int fd = ReadFd(seg);
      if (fd < 0) return Error::Unavailable(ErrnoText("outbound queue: open " + seg.path));
      size_t want = static_cast<size_t>(
          std::min<uint64_t>(seg.size - off, std::max<size_t>(max_bytes - std::min(max_bytes, taken_bytes), 0) +
                                                 (64u << 10)));
      chunk.resize(want);
      if (!PreadAll(fd, chunk.data(), want, off)) {
        return Error::Unavailable(ErrnoText("outbound queue: read " + seg.path));
      }
      size_t pos = 0;
      bool progressed = false;
      while (out.size() < max_records && (out.empty() || taken_bytes < max_bytes)) {
        QueuedRecord r;
        int64_t n = ParseRecord(chunk.data() + pos, chunk.size() - pos, seq, &r);
        if (n == 0 && !progressed) {
          // One record larger than the chunk: read it whole.
          if (chunk.size() - pos < kHeaderBytes) return Error::Internal("outbound queue: short segment " + seg.path);
          uint32_t len = Get<uint32_t>(chunk.data() + pos + 4);
          chunk.resize(kHeaderBytes + len);
          if (!PreadAll(fd, chunk.data(), chunk.size(), off)) {
            return Error::Unavailable(ErrnoText("outbound queue: read " + seg.path));
          }
          pos = 0;
          continue;
        }
        if (n <= 0) break;
        if (!out.empty() && taken_bytes + r.payload.size() > max_bytes) {
          full = true;
          break;
        }
        pos += static_cast<size_t>(n);
        progressed = true;
        taken_bytes += r.payload.size();
        out.push_back(std::move(r));
        ++seq;
        if (off + pos >= seg.size) break;
      }
      if (full) break;
      if (!progressed) return Error::Internal("outbound queue: unreadable record in " + seg.path);
      off += pos;
      if (out.size() >= max_records || taken_bytes >= max_bytes) break;
    }
    return out;
  }

  Status Ack(uint64_t through_seq) override {
    std::lock_guard lock(mu_);
    if (through_seq < head_seq_) return OkStatus();
    through_seq = std::min(through_seq, next_seq_ - 1);
    if (auto st = AdvanceHead(through_seq + 1, /*dropped=*/false); !st.ok()) return st;
    return WriteCursor();
  }

  Status Sync() override {
    std::vector<int> fds;
    int dir_fd = -1;
    {
      std::lock_guard lock(mu_);
      for (const auto& path : unsynced_) fds.push_back(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      unsynced_.clear();
      if (active_fd_ >= 0) fds.push_back(::dup(active_fd_));
      if (dir_dirty_) dir_fd = ::open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      dir_dirty_ = false;
    }
    Status st;
    for (int fd : fds) {
      if (fd < 0) continue;
      if (::fdatasync(fd) != 0 && st.ok()) st = Error::Unavailable(ErrnoText("outbound queue: fdatasync"));
      ::close(fd);
    }
    if (dir_fd >= 0) {
      (void)::fsync(dir_fd);
      ::close(dir_fd);
    }
    return st;
  }

  bool WaitForRecords(std::chrono::milliseconds max_wait) override {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, max_wait, [&] { return depth_ > 0 || interrupted_; });
    interrupted_ = false;
    return depth_ > 0;
  }

  void Interrupt() override {
    {
      std::lock_guard lock(mu_);
      interrupted_ = true;
    }
    cv_.notify_all();
  }

  QueueStats Stats() const override {
    std::lock_guard lock(mu_);
    QueueStats s;
    s.depth = depth_;
    s.bytes = bytes_;
    s.dropped = dropped_;
    s.corrupt = corrupt_;
    s.next_seq = next_seq_;
    return s;
  }

 private:
  // Under mu_. A read fd for `seg` (cached for the last segment read).
  int ReadFd(const Segment& seg) {
    if (read_fd_ >= 0 && read_path_ == seg.path) return read_fd_;
    if (read_fd_ >= 0) ::close(read_fd_);
    read_fd_ = ::open(seg.path.c_str(), O_RDONLY | O_CLOEXEC);
    read_path_ = seg.path;
    return read_fd_;
  }

  // Under mu_. Drops oldest records until `need` more bytes fit.
  Status MakeRoom(uint64_t need) {
    if (bytes_ + need <= options_.max_bytes) return OkStatus();
    uint64_t target = head_seq_;
    uint64_t freed = 0;
    // Walk record headers from the head until enough bytes are freed.
    size_t si = 0;
    uint64_t off = head_off_;
    char hdr[kHeaderBytes];
    while (bytes_ - freed + need > options_.max_bytes && si < segments_.size()) {
      const Segment& seg = segments_[si];
      if (off >= seg.size) {
        ++si;
        off = 0;
        continue;
      }
      if (si + 1 < segments_.size() && off == 0 && bytes_ - freed - seg.size + need > options_.max_bytes) {
        // The whole segment goes: no need to read its headers.
        freed += seg.size;
        target = seg.last_seq + 1;
        ++si;
        continue;
      }
      int fd = ReadFd(seg);
      if (fd < 0 || !PreadAll(fd, hdr, kHeaderBytes, off)) {
        return Error::Unavailable(ErrnoText("outbound queue: read " + seg.path));
      }
      uint64_t n = kHeaderBytes + Get<uint32_t>(hdr + 4);
      freed += n;
      off += n;
      target = Get<uint64_t>(hdr + 8) + 1;
    }
    if (auto st = AdvanceHead(target, /*dropped=*/true); !st.ok()) return st;
    return WriteCursor();
  }

  // Under mu_. Moves the head to the record with seq `new_head`, deleting
  // segments left wholly behind (except the active one).
  Status AdvanceHead(uint64_t new_head, bool dropped) {
    if (new_head <= head_seq_) return OkStatus();
    uint64_t count = 0;
    // Drop whole segments first.
    while (segments_.size() > 1 && segments_.front().last_seq < new_head) {
      Segment& f = segments_.front();
      if (f.last_seq >= head_seq_) count += f.last_seq - std::max(head_seq_, f.first_seq) + 1;
      bytes_ -= f.size - head_off_;
      if (read_path_ == f.path && read_fd_ >= 0) {
        ::close(read_fd_);
        read_fd_ = -1;
      }
      ::unlink(f.path.c_str());
      dir_dirty_ = true;
      segments_.pop_front();
      head_off_ = 0;
      head_seq_ = segments_.front().first_seq;
    }
    // Then records within the front segment.
    const Segment& seg = segments_.front();
    char hdr[kHeaderBytes];
    while (head_seq_ < new_head && head_off_ < seg.size) {
      int fd = ReadFd(seg);
      if (fd < 0 || !PreadAll(fd, hdr, kHeaderBytes, head_off_)) {
        return Error::Unavailable(ErrnoText("outbound queue: read " + seg.path));
      }
      uint64_t n = kHeaderBytes + Get<uint32_t>(hdr + 4);
      head_off_ += n;
      bytes_ -= n;
      ++head_seq_;
      ++count;
    }
    head_seq_ = std::max(head_seq_, new_head);
    depth_ -= std::min(depth_, count);
    if (dropped) dropped_ += count;
    return OkStatus();
  }

  // Under mu_. Persists head_seq_ (not synced: see the header).
  Status WriteCursor() {
    std::string c;
    PutU32(c, kCursorMagic);
    PutU64(c, head_seq_);
    PutU32(c, Crc32c(0, c.data() + 4, 8));
    if (cursor_fd_ < 0) {
      cursor_fd_ = ::open((options_.dir + "/cursor").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (cursor_fd_ < 0) return Error::Unavailable(ErrnoText("outbound queue: open cursor"));
    }
    if (::pwrite(cursor_fd_, c.data(), c.size(), 0) != static_cast<ssize_t>(c.size())) {
      return Error::Unavailable(ErrnoText("outbound queue: write cursor"));
    }
    return OkStatus();
  }

  // Under mu_. Closes the active segment and starts one named next_seq_.
  Status Roll() {
    Segment s;
    s.first_seq = next_seq_;
    s.last_seq = next_seq_ - 1;
    s.path = options_.dir + "/" + SegmentName(next_seq_);
    int fd = ::open(s.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return Error::Unavailable(ErrnoText("outbound queue: create " + s.path));
    if (active_fd_ >= 0) {
      ::close(active_fd_);
      unsynced_.push_back(segments_.back().path);  // synced by the next Sync()
    }
    active_fd_ = fd;
    dir_dirty_ = true;
    segments_.push_back(std::move(s));
    return OkStatus();
  }

  SegmentedLogOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool interrupted_ = false;  // an Interrupt() not yet seen by a WaitForRecords
  std::deque<Segment> segments_;  // oldest first; back() is the active one
  int active_fd_ = -1;
  int read_fd_ = -1;
  std::string read_path_;
  int cursor_fd_ = -1;
  std::vector<std::string> unsynced_;  // closed segments not yet synced
  bool dir_dirty_ = false;
  uint64_t head_seq_ = 1;  // first record not acked or dropped
  uint64_t head_off_ = 0;  // its offset in segments_.front()
  uint64_t next_seq_ = 1;
  uint64_t depth_ = 0;
  uint64_t bytes_ = 0;
  uint64_t dropped_ = 0;
  uint64_t corrupt_ = 0;
  std::string buf_;
};

// Scans a segment file: returns the valid prefix's size and last seq.
Status ScanSegment(Segment& seg) {
  int fd = ::open(seg.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::Unavailable(ErrnoText("outbound queue: open " + seg.path));
  std::string buf;
  uint64_t off = 0;
  uint64_t file_off = 0;  // of buf[0]
  uint64_t expect = seg.first_seq;
  seg.last_seq = seg.first_seq - 1;
  for (;;) {
    // Keep the unparsed rest, read more behind it.
    buf.erase(0, off - file_off);
    file_off = off;
    size_t have = buf.size();
    buf.resize(have + (1u << 20));
    ssize_t r;
    do r = ::pread(fd, buf.data() + have, 1u << 20, static_cast<off_t>(file_off + have));
    while (r < 0 && errno == EINTR);
    if (r < 0) {
      ::close(fd);
      return Error::Unavailable(ErrnoText("outbound queue: read " + seg.path));
    }
    buf.resize(have + static_cast<size_t>(r));
    size_t pos = 0;
    int64_t n = 0;
    while ((n = ParseRecord(buf.data() + pos, buf.size() - pos, expect, nullptr)) > 0) {
      pos += static_cast<size_t>(n);
      seg.last_seq = expect++;
    }
    off = file_off + pos;
    if (n < 0 || r == 0) break;  // invalid record, or cut short at end of file
  }
  ::close(fd);
  seg.size = off;
  return OkStatus();
}

Status SegmentedLogQueue::Open() {
  if (::mkdir(options_.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Error::Unavailable(ErrnoText("outbound queue: mkdir " + options_.dir));
  }
  uint64_t cursor = 1;
  {
    int fd = ::open((options_.dir + "/cursor").c_str(), O_RDONLY | O_CLOEXEC);
    char c[16];
    if (fd >= 0) {
      if (PreadAll(fd, c, 16, 0) && Get<uint32_t>(c) == kCursorMagic &&
          Crc32c(0, c + 4, 8) == Get<uint32_t>(c + 12)) {
        cursor = std::max<uint64_t>(1, Get<uint64_t>(c + 4));
      }
      ::close(fd);
    }
  }
  std::vector<Segment> found;
  DIR* d = ::opendir(options_.dir.c_str());
  if (!d) return Error::Unavailable(ErrnoText("outbound queue: opendir " + options_.dir));
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() != 24 || name.substr(20) != ".seg") continue;
    if (name.find_first_not_of("0123456789") != 20) continue;
    Segment s;
    s.first_seq = std::stoull(name.substr(0, 20));
    s.path = options_.dir + "/" + name;
    if (s.first_seq == 0) continue;
    found.push_back(std::move(s));
  }
  ::closedir(d);
  std::sort(found.begin(), found.end(), [](const Segment& a, const Segment& b) { return a.first_seq < b.first_seq; });

  uint64_t last_seq = cursor - 1;
  for (size_t i = 0; i < found.size(); ++i) {
    Segment& s = found[i];
    // A segment wholly before the cursor holds only acked records.
    if (i + 1 < found.size() && found[i + 1].first_seq <= cursor) {
      ::unlink(s.path.c_str());
      continue;
    }
    if (auto st = ScanSegment(s); !st.ok()) return st;
    struct stat stt{};
    if (::stat(s.path.c_str(), &stt) == 0 && static_cast<uint64_t>(stt.st_size) > s.size) {
      // Torn or corrupt tail: cut it so that it is never served. Records it
      // held (in an older segment) are counted as lost.
      if (i + 1 < found.size() && found[i + 1].first_seq > s.last_seq + 1) {
        corrupt_ += found[i + 1].first_seq - std::max(s.last_seq + 1, cursor);
      }
      if (::truncate(s.path.c_str(), static_cast<off_t>(s.size)) != 0) {
        return Error::Unavailable(ErrnoText("outbound queue: truncate " + s.path));
      }
    }
    if (s.last_seq < s.first_seq && i + 1 < found.size()) {
      ::unlink(s.path.c_str());  // empty and not the last one
      continue;
    }
    last_seq = std::max(last_seq, s.last_seq);
    segments_.push_back(s);
  }
  next_seq_ = last_seq + 1;
  head_seq_ = cursor;
  // Skip records before the cursor in the front segment(s).
  while (!segments_.empty() && segments_.front().last_seq < cursor && segments_.size() > 1) {
    ::unlink(segments_.front().path.c_str());
    segments_.pop_front();
  }
  if (!segments_.empty()) {
    Segment& f = segments_.front();
    head_seq_ = std::max(cursor, f.first_seq);
    for (const auto& s : segments_) bytes_ += s.size;
    // Offset of head_seq_ in the front segment.
    int fd = ReadFd(f);
    char hdr[kHeaderBytes];
    uint64_t seq = f.first_seq;
    while (seq < head_seq_ && head_off_ < f.size && fd >= 0 && PreadAll(fd, hdr, kHeaderBytes, head_off_)) {
      head_off_ += kHeaderBytes + Get<uint32_t>(hdr + 4);
      ++seq;
    }
    bytes_ -= head_off_;
    for (const auto& s : segments_) {
      if (s.last_seq >= s.first_seq && s.last_seq >= head_seq_) {
        depth_ += s.last_seq - std::max(s.first_seq, head_seq_) + 1;
      }
    }
    next_seq_ = std::max(next_seq_, head_seq_);
  }
  // Open the last segment for appends, or start one.
  if (!segments_.empty() && segments_.back().size < options_.segment_bytes &&
      segments_.back().first_seq + (segments_.back().last_seq + 1 - segments_.back().first_seq) == next_seq_) {
    active_fd_ = ::open(segments_.back().path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (active_fd_ < 0) return Error::Unavailable(ErrnoText("outbound queue: open " + segments_.back().path));
  } else {
    if (auto st = Roll(); !st.ok()) return st;
  }
  return WriteCursor();
}

}  // namespace

uint32_t Crc32c(uint32_t crc, const void* data, size_t n) {
  static const CrcTables t = MakeCrcTables();
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    crc ^= static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
           static_cast<uint32_t>(p[3]) << 24;
    crc = t[7][crc & 0xFF] ^ t[6][(crc >> 8) & 0xFF] ^ t[5][(crc >> 16) & 0xFF] ^ t[4][crc >> 24] ^
          t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
  }
  while (n--) crc = t[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

Result<std::unique_ptr<OutboundQueue>> OpenSegmentedLogQueue(const SegmentedLogOptions& options) {
  if (options.dir.empty()) return Error::InvalidArgument("outbound queue: no directory");
  if (options.max_bytes < 1024 || options.segment_bytes == 0) {
    return Error::InvalidArgument("outbound queue: max_bytes must be >= 1024 and segment_bytes > 0");
  }
  auto q = std::make_unique<SegmentedLogQueue>(options);
  if (auto st = q->Open(); !st.ok()) return st.error();
  return std::unique_ptr<OutboundQueue>(std::move(q));
}

}  // namespace cairn::edge
