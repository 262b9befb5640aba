#include "cairn/common/log.h"

#include <memory>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace cairn {
namespace {

// UTC timestamp, level, component, message:
//   2024-05-01T12:00:00.123Z info [cairn-registry] listening on ...
constexpr char kPattern[] = "%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ [%n] %v";

// Tokens shorter than this many characters keep at most half of themselves.
constexpr size_t kRedactKeep = 10;

Result<spdlog::level::level_enum> ParseLevel(const std::string& level) {
  if (level == "trace") return spdlog::level::trace;
  if (level == "debug") return spdlog::level::debug;
  if (level == "info") return spdlog::level::info;
  if (level == "warn") return spdlog::level::warn;
  if (level == "error") return spdlog::level::err;
  return Error::InvalidArgument("invalid log level \"" + level +
                                "\": expected trace, debug, info, warn or error");
}

}  // namespace

Status InitLogging(const std::string& component, const std::string& level,
                   const std::string& file) {
  auto parsed = ParseLevel(level);
  if (!parsed.ok()) return parsed.error();

  spdlog::sink_ptr sink;
  try {
    if (file.empty()) {
      sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    } else {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, /*truncate=*/false);
    }
  } catch (const spdlog::spdlog_ex& e) {
    return Error::InvalidArgument("cannot open log file \"" + file + "\": " + e.what());
  }

  auto logger = std::make_shared<spdlog::logger>(component, std::move(sink));
  logger->set_formatter(
      std::make_unique<spdlog::pattern_formatter>(kPattern, spdlog::pattern_time_type::utc));
  logger->set_level(*parsed);
  // stderr is unbuffered; a file is flushed on every record so that nothing
  // is lost when the process dies.
  logger->flush_on(file.empty() ? spdlog::level::warn : spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return OkStatus();
}

std::string RedactToken(std::string_view token) {
  size_t keep = std::min(kRedactKeep, token.size() / 2);
  // Do not cut a UTF-8 sequence in half.
  while (keep > 0 && (static_cast<unsigned char>(token[keep]) & 0xC0) == 0x80) --keep;
  std::string out;
  for (char c : token.substr(0, keep)) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  out += "\u2026(redacted)";
  return out;
}

}  // namespace cairn
