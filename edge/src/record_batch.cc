#include "cairn/edge/record_batch.h"

#include <charconv>

namespace cairn::edge {

void AppendToBatch(std::string& out, uint64_t seq, std::string_view record) {
  out += std::to_string(seq);
  out += ' ';
  out += std::to_string(record.size());
  out += '\n';
  out.append(record);
  out += '\n';
}

Result<std::vector<BatchEntry>> DecodeBatch(std::string_view payload) {
  std::vector<BatchEntry> out;
  size_t pos = 0;
  while (pos < payload.size()) {
    size_t sp = payload.find(' ', pos);
    size_t lf = sp == std::string_view::npos ? sp : payload.find('\n', sp);
    if (lf == std::string_view::npos || lf - pos > 45) {
      return Error::InvalidArgument("record batch: bad frame header at byte " + std::to_string(pos));
    }
    BatchEntry e;
    uint64_t len = 0;
    auto r1 = std::from_chars(payload.data() + pos, payload.data() + sp, e.seq);
    auto r2 = std::from_chars(payload.data() + sp + 1, payload.data() + lf, len);
    if (r1.ec != std::errc() || r1.ptr != payload.data() + sp || r2.ec != std::errc() ||
        r2.ptr != payload.data() + lf) {
      return Error::InvalidArgument("record batch: bad frame header at byte " + std::to_string(pos));
    }
    size_t start = lf + 1;
    if (len > payload.size() - start || start + len >= payload.size() || payload[start + len] != '\n') {
      return Error::InvalidArgument("record batch: record at byte " + std::to_string(pos) + " is cut short");
    }
    e.record.assign(payload.substr(start, len));
    out.push_back(std::move(e));
    pos = start + len + 1;
  }
  return out;
}

}  // namespace cairn::edge
