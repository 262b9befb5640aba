// OutboundQueue: the node's on-disk store-and-forward queue for everything
// bound for MQTT. Records are appended in order, read from the head with
// Peek and removed with Ack once the broker has them. The queue has a size
// bound; when an append would exceed it, the OLDEST records are dropped and
// counted. SegmentedLogQueue is the implementation chosen by measurement
// (docs/design/edge-queue.md): a directory of append-only segment files of
// checksummed records plus a small head cursor file.
//
// Durability policy: Append returns after the record is written to the
// file (write(2)), so it survives a crash or kill -9 of the process; it
// survives a power loss once Sync() has returned (the drainer calls it about
// once a second, outside every lock). Acks are not synced: after a power loss
// a record may be sent twice, never lost.
//
// Crash safety: each record carries a CRC-32C; on open a torn or corrupt tail
// is cut off (never served), and a corrupt record in an older segment ends
// that segment (the rest of it is counted as dropped).
//
// Sequence: every record gets the next per-queue sequence number at Append
// (1, 2, 3, ...). It is persisted with the record and in the cursor, so it
// keeps growing across restarts even when the queue was empty; the agent
// sends it as the MQTT user property `cairn-seq`.
//
// Thread-safety: all methods are thread-safe (one internal mutex). File
// writes happen under that mutex, fsync does not. Never call them while
// holding a lock an MQTT callback needs if you care about latency: Append
// costs one write(2).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/result.h"

namespace cairn::edge {

struct QueuedRecord {
  enum class Kind : uint8_t {
    kStreamRecord = 0,  // one record of a data stream: batched with others of its topic
    kMessage = 1,       // a whole MQTT message (health, logs): sent as is
  };
  uint64_t seq = 0;
  Kind kind = Kind::kStreamRecord;
  std::string topic;
  std::string content_type;  // kMessage only
  std::string payload;
};

struct QueueStats {
  uint64_t depth = 0;          // records appended and neither acked nor dropped
  uint64_t bytes = 0;          // their size on disk (headers included)
  uint64_t dropped = 0;        // oldest records dropped because the queue was full
                               // (since this process opened the queue)
  uint64_t corrupt = 0;        // records lost to corruption found on open
  uint64_t next_seq = 1;       // sequence number the next Append gets
};

class OutboundQueue {
 public:
  virtual ~OutboundQueue() = default;

  // Appends a record and returns its sequence number. Drops the oldest
  // records first if the queue would exceed its size bound. Fails if the
  // record alone is larger than the bound or on an I/O error.
  virtual Result<uint64_t> Append(QueuedRecord::Kind kind, std::string_view topic,
                                  std::string_view content_type, std::string_view payload) = 0;
  // The oldest records not yet acked, in order, at most `max_records` and
  // about `max_bytes` of payload (at least one record when the queue is not
  // empty). Does not remove them: the same records come back until acked.
  virtual Result<std::vector<QueuedRecord>> Peek(size_t max_records, size_t max_bytes) = 0;
  // Removes every record with seq <= `through_seq` (acking a record that
  // was already dropped is fine).
  virtual Status Ack(uint64_t through_seq) = 0;
  // Makes every appended record durable against power loss (fdatasync).
  virtual Status Sync() = 0;
  // Blocks until the queue holds a record, `max_wait` passed or Interrupt()
  // was called; true if it holds one.
  virtual bool WaitForRecords(std::chrono::milliseconds max_wait) = 0;
  // Makes the next (or the current) WaitForRecords return at once: an
  // interrupt is kept until a wait sees it, so one given just before the
  // wait begins is not lost (a drainer that stops or is woken never waits
  // out its idle sleep). Waiters therefore need not poll.
  virtual void Interrupt() = 0;
  virtual QueueStats Stats() const = 0;
};

struct SegmentedLogOptions {
  std::string dir;  // created (0700) if missing
  // Bound on the bytes of unacked records; the oldest are dropped beyond it.
  uint64_t max_bytes = 64ull << 20;
  // A segment is closed and a new one started beyond this size.
  uint64_t segment_bytes = 4ull << 20;
};

// Opens (or creates) the queue in `options.dir`, recovering what a previous
// process left: torn tails cut, corrupt records skipped and counted.
Result<std::unique_ptr<OutboundQueue>> OpenSegmentedLogQueue(const SegmentedLogOptions& options);

// Backpressure rule for stream records (docs/design/edge-queue.md). While
// the link is up the drainer is emptying the queue: once it holds three
// quarters of its bound, a new stream record is held back (the pipeline
// pauses its input and offers it again) instead of pushing the oldest out,
// so a fast input never loses records to a slower link. While the link is
// down the queue fills to its bound and then drops the oldest, counted.
inline bool HoldBackStreamRecord(uint64_t queued_bytes, uint64_t max_bytes, bool link_up) {
  return link_up && queued_bytes >= max_bytes - max_bytes / 4;
}

// CRC-32C (Castagnoli), as used in the record framing.
uint32_t Crc32c(uint32_t crc, const void* data, size_t n);

}  // namespace cairn::edge
