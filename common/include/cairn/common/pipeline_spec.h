// The pipeline file a user writes (YAML) and its validation:
//
//   name: app-errors
//   workspace: demo
//   selector: {env: production, role: log-processor}   # or a string selector
//   pipeline:
//     input: {generate: {interval: 1s, message: "ERROR disk almost full"}}
//     processors:
//       - filter: {contains: ERROR}
//     output: {file: {path: out/app-errors.log}}
//
// Unknown keys anywhere are errors (with their path, e.g.
// "pipeline.input.generate.intervall: unknown key"). Component kinds are
// read and rendered from their schema (schemas/cairn/v1/pipeline.proto); the
// reference of every kind is docs/pipelines.md.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cairn/common/result.h"
#include "cairn/v1/pipeline.pb.h"

namespace re2 {
class RE2;
}

namespace cairn {

// Parses a pipeline file. `default_workspace` fills a missing `workspace:`.
// The selector is returned in canonical string form.
Result<v1::Pipeline> ParsePipelineYaml(const std::string& yaml_text,
                                       const std::string& default_workspace);

// The one validator of a spec, used by cairnctl, the scheduler and the node:
// exactly one input and one output kind known to this schema, and each
// kind's rule (e.g. interval >= 10ms, non-empty paths without '..' escaping
// the data dir, a valid regex, a valid stream name). The message starts with
// the field's path without the leading "pipeline.", e.g.
//   processors[0].filter: needs one of contains, regex, field
Status ValidatePipelineSpec(const v1::PipelineSpec& spec);

// The one way a `filter` regex is compiled (validator and node alike): RE2
// syntax (https://github.com/google/re2/wiki/Syntax), matched in linear time
// without backtracking, unanchored (use ^ and $ to anchor). An error says
// why, e.g. `invalid regex "(a": missing ): (a`.
Result<std::shared_ptr<const re2::RE2>> CompileFilterRegex(const std::string& regex);

// An http output's URL, split: http://HOST[:PORT][/PATH][?QUERY] or https://...
// HOST is a DNS name, an IPv4 address or a bracketed IPv6 address. No user
// info, no fragment, no whitespace or control characters. The one rule of
// what the validator accepts and what the node's HTTP client dials.
struct HttpUrl {
  bool tls = false;
  std::string host;    // without brackets
  uint16_t port = 0;   // 80 / 443 when not given
  std::string target;  // "/PATH?QUERY", at least "/"
  bool ipv6 = false;
  // For the Host header: host[:port] (brackets for IPv6; port only when not
  // the scheme's default).
  std::string HostHeader() const;
};
Result<HttpUrl> ParseHttpUrl(const std::string& url);

// sha256 hex of the deterministic serialization of `spec`.
std::string PipelineDigest(const v1::PipelineSpec& spec);

// Renders a spec back to YAML (for `cairnctl pipeline get`).
std::string PipelineSpecToYaml(const v1::PipelineSpec& spec);

}  // namespace cairn
