// The batch payload a node publishes on cairn/v1/ws/{ws}/data/{stream}: many
// stream records in one MQTT message, so that a node stays under the
// broker's per-connection message rate (50/s) at 20,000+ records/s.
//
// Message: content type kRecordBatchContentType, QoS 1, not retained, MQTT v5
// user properties
//   cairn-node   the node's name
//   cairn-seq    sequence number of the first record in the payload
//   cairn-count  number of records in the payload
// Payload: records in order, each framed as
//   <seq> SP <length> LF <length bytes of record> LF
// (seq and length in ASCII decimal). The seqs are the node's outbound queue
// sequence (per node, across all its streams, increasing by one per record
// appended): within one stream they increase; a consumer that sees a seq not
// greater than the last it saw from that node has a duplicate (QoS 1
// redelivery), and one that reads all of a node's streams can detect gaps.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/result.h"

namespace cairn::edge {

inline constexpr char kRecordBatchContentType[] = "application/vnd.cairn.records.v1";

struct BatchEntry {
  uint64_t seq = 0;
  std::string record;
};

// Appends one framed record to `out`.
void AppendToBatch(std::string& out, uint64_t seq, std::string_view record);
// Parses a whole payload; any framing error fails the whole payload.
Result<std::vector<BatchEntry>> DecodeBatch(std::string_view payload);

}  // namespace cairn::edge
