#include "cairn/common/pipeline_spec.h"

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <limits>
#include <regex>
#include <set>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include "cairn/common/text.h"
#include "cairn/common/config.h"
#include "cairn/common/selector.h"
#include "cairn/common/topics.h"

namespace cairn {
namespace {

// Pipeline files are small; anything bigger is a mistake or an attack.
constexpr size_t kMaxYamlBytes = 1 << 20;
// Bounds the regex compiler's recursion on untrusted patterns.
constexpr size_t kMaxRegexLength = 1024;
constexpr uint32_t kMinIntervalMs = 10;
constexpr uint32_t kDefaultIntervalMs = 1000;
constexpr uint32_t kDefaultQos = 1;

std::string Child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

Error At(const std::string& path, const std::string& message) {
  return Error::InvalidArgument(path.empty() ? message : path + ": " + message);
}

std::string OneOf(std::initializer_list<std::string_view> names) {
  std::string out;
  size_t i = 0;
  for (std::string_view name : names) {
    if (i > 0) out += (i + 1 == names.size()) ? " or " : ", ";
    out += name;
    ++i;
  }
  return out;
}

// Custom tags ("!legacy") would silently turn a value into an empty scalar:
// a selector "!legacy" written unquoted must not select every node.
Status CheckTag(const YAML::Node& node, const std::string& path) {
  const std::string& tag = node.Tag();
  if (tag.empty() || tag == "?" || tag == "!" || tag.rfind("tag:yaml.org,2002:", 0) == 0) {
    return OkStatus();
  }
  return At(path, "unexpected YAML tag " + Quoted(tag) +
                      " (a value starting with '!' must be quoted)");
}

// `node` must be a map (or null, i.e. empty) whose keys are all in `allowed`.
Status CheckMap(const YAML::Node& node, const std::string& path,
                std::initializer_list<std::string_view> allowed) {
  if (node.IsNull()) return CheckTag(node, path);
  if (!node.IsMap()) {
    if (allowed.size() == 0) return At(path, "expected an empty map ({})");
    return At(path, "expected a map with keys " + OneOf(allowed));
  }
  std::set<std::string> seen;
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) return At(path, "keys must be plain strings");
    const std::string& key = entry.first.Scalar();
    bool known = false;
    for (std::string_view a : allowed) known = known || a == key;
    if (!known) {
      std::string hint = allowed.size() == 0 ? " (no keys allowed here)"
                                             : " (expected " + OneOf(allowed) + ")";
      return At(Child(path, key), "unknown key" + hint);
    }
    if (!seen.insert(key).second) return At(Child(path, key), "duplicate key");
  }
  return OkStatus();
}

// The single key of a map that must name exactly one kind.
Result<std::string> OneKind(const YAML::Node& node, const std::string& path, std::string_view what,
                            std::initializer_list<std::string_view> kinds) {
  if (auto s = CheckMap(node, path, kinds); !s.ok()) return s.error();
  if (!node.IsMap() || node.size() != 1) {
    return At(path, "expected exactly one " + std::string(what) + " kind: " + OneOf(kinds));
  }
  return node.begin()->first.Scalar();
}

Result<std::string> GetString(const YAML::Node& node, const std::string& path) {
  if (auto s = CheckTag(node, path); !s.ok()) return s.error();
  if (node.IsNull()) return std::string();
  if (!node.IsScalar()) return At(path, "expected a string");
  return node.Scalar();
}

Result<bool> GetBool(const YAML::Node& node, const std::string& path) {
  if (auto s = CheckTag(node, path); !s.ok()) return s.error();
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    return At(path, "expected true or false");
  }
  return value;
}

Result<uint64_t> GetUint(const YAML::Node& node, const std::string& path, uint64_t max) {
  if (auto s = CheckTag(node, path); !s.ok()) return s.error();
  if (!node.IsScalar()) return At(path, "expected a non-negative integer");
  const std::string& text = node.Scalar();
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return At(path, "expected a non-negative integer, got " + Quoted(text));
  }
  if (value > max) return At(path, "must be at most " + std::to_string(max));
  return value;
}

Status ParseGenerate(const YAML::Node& node, const std::string& path, v1::GenerateInput* out) {
  if (auto s = CheckMap(node, path, {"interval", "message", "count"}); !s.ok()) return s;
  out->set_interval_ms(kDefaultIntervalMs);
  if (node.IsNull()) return OkStatus();
  if (node["interval"]) {
    std::string p = Child(path, "interval");
    auto text = GetString(node["interval"], p);
    if (!text.ok()) return text.error();
    auto d = ParseDuration(*text);
    if (!d.ok()) return At(p, d.error().message);
    if (d->count() > std::numeric_limits<uint32_t>::max()) return At(p, "too long");
    out->set_interval_ms(static_cast<uint32_t>(d->count()));
  }
  if (node["message"]) {
    auto message = GetString(node["message"], Child(path, "message"));
    if (!message.ok()) return message.error();
    out->set_message(*message);
  }
  if (node["count"]) {
    auto count = GetUint(node["count"], Child(path, "count"), std::numeric_limits<uint64_t>::max());
    if (!count.ok()) return count.error();
    out->set_count(*count);
  }
  return OkStatus();
}

Status ParseFileInput(const YAML::Node& node, const std::string& path, v1::FileInput* out) {
  if (auto s = CheckMap(node, path, {"path", "from_beginning"}); !s.ok()) return s;
  if (node.IsNull()) return OkStatus();
  if (node["path"]) {
    auto p = GetString(node["path"], Child(path, "path"));
    if (!p.ok()) return p.error();
    out->set_path(*p);
  }
  if (node["from_beginning"]) {
    auto b = GetBool(node["from_beginning"], Child(path, "from_beginning"));
    if (!b.ok()) return b.error();
    out->set_from_beginning(*b);
  }
  return OkStatus();
}

Status ParseInput(const YAML::Node& node, const std::string& path, v1::Input* out) {
  auto kind = OneKind(node, path, "input", {"generate", "file"});
  if (!kind.ok()) return kind.error();
  const YAML::Node value = node[*kind];
  std::string p = Child(path, *kind);
  if (*kind == "generate") return ParseGenerate(value, p, out->mutable_generate());
  return ParseFileInput(value, p, out->mutable_file());
}

Status ParseFilter(const YAML::Node& node, const std::string& path, v1::FilterProcessor* out) {
  if (auto s = CheckMap(node, path, {"contains", "regex", "invert"}); !s.ok()) return s;
  if (node.IsNull()) return OkStatus();
  if (node["contains"]) {
    auto v = GetString(node["contains"], Child(path, "contains"));
    if (!v.ok()) return v.error();
    out->set_contains(*v);
  }
  if (node["regex"]) {
    auto v = GetString(node["regex"], Child(path, "regex"));
    if (!v.ok()) return v.error();
    out->set_regex(*v);
  }
  if (node["invert"]) {
    auto v = GetBool(node["invert"], Child(path, "invert"));
    if (!v.ok()) return v.error();
    out->set_invert(*v);
  }
  return OkStatus();
}

Status ParseProcessors(const YAML::Node& node, const std::string& path,
                       google::protobuf::RepeatedPtrField<v1::Processor>* out) {
  if (auto s = CheckTag(node, path); !s.ok()) return s;
  if (node.IsNull()) return OkStatus();
  if (!node.IsSequence()) return At(path, "expected a list of processors");
  for (size_t i = 0; i < node.size(); ++i) {
    std::string p = path + "[" + std::to_string(i) + "]";
    auto kind = OneKind(node[i], p, "processor", {"filter"});
    if (!kind.ok()) return kind.error();
    if (auto s = ParseFilter(node[i][*kind], Child(p, *kind), out->Add()->mutable_filter()); !s.ok()) {
      return s;
    }
  }
  return OkStatus();
}

Status ParseOutput(const YAML::Node& node, const std::string& path, v1::Output* out) {
  // The bare word: `output: stdout`.
  if (node.IsScalar() && node.Scalar() == "stdout" && CheckTag(node, path).ok()) {
    out->mutable_stdout();
    return OkStatus();
  }
  auto kind = OneKind(node, path, "output", {"file", "mqtt", "stdout"});
  if (!kind.ok()) return kind.error();
  const YAML::Node value = node[*kind];
  std::string p = Child(path, *kind);
  if (*kind == "stdout") {
    if (auto s = CheckMap(value, p, {}); !s.ok()) return s;
    out->mutable_stdout();
    return OkStatus();
  }
  if (*kind == "file") {
    if (auto s = CheckMap(value, p, {"path"}); !s.ok()) return s;
    auto* file = out->mutable_file();
    if (!value.IsNull() && value["path"]) {
      auto v = GetString(value["path"], Child(p, "path"));
      if (!v.ok()) return v.error();
      file->set_path(*v);
    }
    return OkStatus();
  }
  if (auto s = CheckMap(value, p, {"stream", "qos"}); !s.ok()) return s;
  auto* mqtt = out->mutable_mqtt();
  mqtt->set_qos(kDefaultQos);
  if (value.IsNull()) return OkStatus();
  if (value["stream"]) {
    auto v = GetString(value["stream"], Child(p, "stream"));
    if (!v.ok()) return v.error();
    mqtt->set_stream(*v);
  }
  if (value["qos"]) {
    auto v = GetUint(value["qos"], Child(p, "qos"), 2);
    if (!v.ok()) return v.error();
    mqtt->set_qos(static_cast<uint32_t>(*v));
  }
  return OkStatus();
}

Status ParseSpec(const YAML::Node& node, const std::string& path, v1::PipelineSpec* out) {
  if (auto s = CheckMap(node, path, {"input", "processors", "output"}); !s.ok()) return s;
  if (node.IsNull() || !node["input"]) return At(Child(path, "input"), "missing");
  if (!node["output"]) return At(Child(path, "output"), "missing");
  if (auto s = ParseInput(node["input"], Child(path, "input"), out->mutable_input()); !s.ok()) {
    return s;
  }
  if (node["processors"]) {
    auto s = ParseProcessors(node["processors"], Child(path, "processors"),
                             out->mutable_processors());
    if (!s.ok()) return s;
  }
  return ParseOutput(node["output"], Child(path, "output"), out->mutable_output());
}

Result<std::string> ParseSelector(const YAML::Node& node, const std::string& path) {
  if (auto s = CheckTag(node, path); !s.ok()) return s.error();
  if (node.IsNull()) return std::string();
  if (node.IsScalar()) {
    auto selector = Selector::Parse(node.Scalar());
    if (!selector.ok()) return At(path, selector.error().message);
    return selector->ToString();
  }
  if (!node.IsMap()) return At(path, "expected a map of labels or a selector string");
  Labels labels;
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) return At(path, "label keys must be plain strings");
    const std::string& key = entry.first.Scalar();
    std::string p = Child(path, key);
    auto value = GetString(entry.second, p);
    if (!value.ok()) return value.error();
    if (!labels.emplace(key, *value).second) return At(p, "duplicate key");
  }
  auto selector = Selector::FromMap(labels);
  if (!selector.ok()) return At(path, selector.error().message);
  return selector->ToString();
}

// Relative paths are below the node's data dir and must stay there.
Status CheckFilePath(const std::string& path, const std::string& where) {
  if (path.empty()) return At(where, "must not be empty");
  if (path.find('\0') != std::string::npos) return At(where, "must not contain a NUL character");
  // The last component must name a file, as the node requires.
  std::string_view last(path);
  if (auto slash = last.rfind('/'); slash != std::string_view::npos) last.remove_prefix(slash + 1);
  if (last.empty() || last == "." || last == "..") return At(where, Quoted(path) + " does not name a file");
  if (path.front() == '/') return OkStatus();
  int depth = 0;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string_view part(path.data() + start,
                          (slash == std::string::npos ? path.size() : slash) - start);
    if (part == "..") {
      if (--depth < 0) {
        return At(where, Quoted(path) + " leaves the data directory ('..')");
      }
    } else if (!part.empty() && part != ".") {
      ++depth;
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return OkStatus();
}

std::string FormatDuration(uint64_t ms) {
  struct Unit {
    uint64_t ms;
    const char* suffix;
  };
  static constexpr Unit kUnits[] = {{86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}};
  if (ms == 0) return "0ms";
  for (const Unit& u : kUnits) {
    if (ms % u.ms == 0) return std::to_string(ms / u.ms) + u.suffix;
  }
  return std::to_string(ms) + "ms";
}

}  // namespace

Result<v1::Pipeline> ParsePipelineYaml(const std::string& yaml_text,
                                       const std::string& default_workspace) {
  if (yaml_text.size() > kMaxYamlBytes) {
    return Error::InvalidArgument("pipeline file is larger than " + std::to_string(kMaxYamlBytes) +
                                  " bytes");
  }
  if (size_t bad = FirstInvalidUtf8(yaml_text); bad != std::string::npos) {
    size_t line = 1 + static_cast<size_t>(std::count(yaml_text.begin(), yaml_text.begin() + bad, '\n'));
    size_t line_start = yaml_text.rfind('\n', bad == 0 ? 0 : bad - 1);
    size_t column = bad - (line_start == std::string::npos || bad == 0 ? 0 : line_start + 1) + 1;
    return Error::InvalidArgument("pipeline file: line " + std::to_string(line) + ", column " +
                                  std::to_string(column) + ": not UTF-8 text");
  }
  v1::Pipeline pipeline;
  try {
    const YAML::Node root = YAML::Load(yaml_text);
    if (!root.IsMap()) return Error::InvalidArgument("pipeline file: expected a map at the top level");
    if (auto s = CheckMap(root, "", {"name", "workspace", "selector", "pipeline"}); !s.ok()) {
      return s.error();
    }

    if (!root["name"]) return At("name", "missing");
    auto name = GetString(root["name"], "name");
    if (!name.ok()) return name.error();
    if (auto s = topics::ValidateName("pipeline", *name); !s.ok()) return At("name", s.error().message);
    pipeline.set_name(*name);

    std::string workspace = default_workspace;
    if (root["workspace"]) {
      auto ws = GetString(root["workspace"], "workspace");
      if (!ws.ok()) return ws.error();
      if (!ws->empty()) workspace = *ws;
    }
    if (workspace.empty()) return At("workspace", "missing (and no default workspace)");
    if (auto s = topics::ValidateName("workspace", workspace); !s.ok()) {
      return At("workspace", s.error().message);
    }
    pipeline.set_workspace(workspace);

    if (root["selector"]) {
      auto selector = ParseSelector(root["selector"], "selector");
      if (!selector.ok()) return selector.error();
      pipeline.set_selector(*selector);
    }

    if (!root["pipeline"]) return At("pipeline", "missing");
    if (auto s = ParseSpec(root["pipeline"], "pipeline", pipeline.mutable_spec()); !s.ok()) {
      return s.error();
    }
  } catch (const YAML::Exception& e) {
    return Error::InvalidArgument("invalid YAML at line " + std::to_string(e.mark.line + 1) +
                                  ", column " + std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (auto s = ValidatePipelineSpec(pipeline.spec()); !s.ok()) {
    return Error::InvalidArgument("pipeline." + s.error().message);
  }
  pipeline.set_digest(PipelineDigest(pipeline.spec()));
  return pipeline;
}

Status ValidatePipelineSpec(const v1::PipelineSpec& spec) {
  const v1::Input& input = spec.input();
  switch (input.kind_case()) {
    case v1::Input::kGenerate:
      if (input.generate().interval_ms() < kMinIntervalMs) {
        return At("input.generate.interval", "must be at least " + std::to_string(kMinIntervalMs) + "ms");
      }
      break;
    case v1::Input::kFile:
      if (auto s = CheckFilePath(input.file().path(), "input.file.path"); !s.ok()) return s;
      break;
    case v1::Input::KIND_NOT_SET:
      return At("input", "missing (expected generate or file)");
  }

  for (int i = 0; i < spec.processors_size(); ++i) {
    const v1::Processor& p = spec.processors(i);
    std::string path = "processors[" + std::to_string(i) + "]";
    if (p.kind_case() == v1::Processor::KIND_NOT_SET) return At(path, "missing kind (expected filter)");
    const v1::FilterProcessor& f = p.filter();
    if (f.contains().empty() && f.regex().empty()) {
      return At(path + ".filter", "needs contains or regex");
    }
    if (!f.regex().empty()) {
      if (f.regex().size() > kMaxRegexLength) {
        return At(path + ".filter.regex", "longer than " + std::to_string(kMaxRegexLength) + " characters");
      }
      try {
        std::regex re(f.regex(), std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        return At(path + ".filter.regex", "invalid regex " + Quoted(f.regex()) + ": " + e.what());
      }
    }
  }

  const v1::Output& output = spec.output();
  switch (output.kind_case()) {
    case v1::Output::kFile:
      if (auto s = CheckFilePath(output.file().path(), "output.file.path"); !s.ok()) return s;
      break;
    case v1::Output::kMqtt:
      if (auto s = topics::ValidateName("stream", output.mqtt().stream()); !s.ok()) {
        return At("output.mqtt.stream", s.error().message);
      }
      if (output.mqtt().qos() > 2) return At("output.mqtt.qos", "must be 0, 1 or 2");
      break;
    case v1::Output::kStdout:
      break;
    case v1::Output::KIND_NOT_SET:
      return At("output", "missing (expected file, mqtt or stdout)");
  }
  return OkStatus();
}

std::string PipelineDigest(const v1::PipelineSpec& spec) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    spec.SerializeToCodedStream(&coded);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &md_len, EVP_sha256(), nullptr) != 1) {
    return "";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(md_len * 2);
  for (unsigned int i = 0; i < md_len; ++i) {
    hex += kHex[md[i] >> 4];
    hex += kHex[md[i] & 0xf];
  }
  return hex;
}

std::string PipelineSpecToYaml(const v1::PipelineSpec& spec) {
  YAML::Emitter out;
  out << YAML::BeginMap;

  const v1::Input& input = spec.input();
  if (input.kind_case() != v1::Input::KIND_NOT_SET) {
    out << YAML::Key << "input" << YAML::Value << YAML::BeginMap;
    if (input.has_generate()) {
      const auto& g = input.generate();
      out << YAML::Key << "generate" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "interval" << YAML::Value << FormatDuration(g.interval_ms());
      out << YAML::Key << "message" << YAML::Value << YAML::DoubleQuoted << g.message();
      if (g.count() != 0) out << YAML::Key << "count" << YAML::Value << g.count();
      out << YAML::EndMap;
    } else {
      const auto& f = input.file();
      out << YAML::Key << "file" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "path" << YAML::Value << YAML::DoubleQuoted << f.path();
      if (f.from_beginning()) out << YAML::Key << "from_beginning" << YAML::Value << true;
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }

  if (spec.processors_size() > 0) {
    out << YAML::Key << "processors" << YAML::Value << YAML::BeginSeq;
    for (const v1::Processor& p : spec.processors()) {
      out << YAML::BeginMap;
      if (p.has_filter()) {
        const auto& f = p.filter();
        out << YAML::Key << "filter" << YAML::Value << YAML::BeginMap;
        if (!f.contains().empty()) {
          out << YAML::Key << "contains" << YAML::Value << YAML::DoubleQuoted << f.contains();
        }
        if (!f.regex().empty()) {
          out << YAML::Key << "regex" << YAML::Value << YAML::DoubleQuoted << f.regex();
        }
        if (f.invert()) out << YAML::Key << "invert" << YAML::Value << true;
        out << YAML::EndMap;
      }
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }

  const v1::Output& output = spec.output();
  if (output.kind_case() != v1::Output::KIND_NOT_SET) {
    out << YAML::Key << "output" << YAML::Value << YAML::BeginMap;
    if (output.has_file()) {
      out << YAML::Key << "file" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "path" << YAML::Value << YAML::DoubleQuoted << output.file().path();
      out << YAML::EndMap;
    } else if (output.has_mqtt()) {
      out << YAML::Key << "mqtt" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "stream" << YAML::Value << YAML::DoubleQuoted << output.mqtt().stream();
      out << YAML::Key << "qos" << YAML::Value << output.mqtt().qos();
      out << YAML::EndMap;
    } else {
      out << YAML::Key << "stdout" << YAML::Value << YAML::BeginMap << YAML::EndMap;
    }
    out << YAML::EndMap;
  }

  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace cairn
