#include "cairn/common/pipeline_spec.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <vector>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/evp.h>
#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include "cairn/common/text.h"
#include "cairn/common/config.h"
#include "cairn/common/selector.h"
#include "cairn/common/topics.h"

namespace cairn {
namespace {

// Pipeline files are small; anything bigger is a mistake or an attack.
constexpr size_t kMaxYamlBytes = 1 << 20;
// Bounds the work of compiling an untrusted pattern (RE2 also bounds its
// memory: a pattern whose automaton needs more is refused as too large).
constexpr size_t kMaxRegexLength = 4096;
constexpr uint32_t kMinIntervalMs = 10;
constexpr uint32_t kDefaultIntervalMs = 1000;
constexpr uint32_t kDefaultQos = 1;
constexpr uint32_t kMaxGenerateRate = 1'000'000;
// The broker takes at most 1 MiB per message; leave room for the envelope.
constexpr uint32_t kMaxBatchBytes = 1000 * 1000;

std::string Child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

Error At(const std::string& path, const std::string& message) {
  return Error::InvalidArgument(path.empty() ? message : path + ": " + message);
}

std::string OneOf(const std::vector<std::string>& names) {
  std::string out;
  size_t i = 0;
  for (const std::string& name : names) {
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
                const std::vector<std::string>& allowed) {
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
    for (const std::string& a : allowed) known = known || a == key;
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
                            const std::vector<std::string>& kinds) {
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

// ---------------------------------------------------------------------------
// Components are read and written generically from their schema
// (schemas/cairn/v1/pipeline.proto): each kind is a field of the oneof in
// Input, Processor or Output, and each of its fields is a YAML key. A field
// whose name ends in `_ms` is a duration written without the suffix
// (`interval: 1s` fills interval_ms). Adding a kind therefore needs no code
// here except, if it has one, its rule in kRules below.

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

bool IsDurationField(const FieldDescriptor* f) {
  const std::string& n = f->name();
  return f->cpp_type() == FieldDescriptor::CPPTYPE_UINT32 && !f->is_repeated() && n.size() > 3 &&
         n.compare(n.size() - 3, 3, "_ms") == 0;
}

std::string YamlKey(const FieldDescriptor* f) {
  return IsDurationField(f) ? f->name().substr(0, f->name().size() - 3) : f->name();
}

// Values a field takes when its key is absent from the file.
struct FieldDefault {
  const char* message;
  const char* field;
  uint64_t value;
  const char* unless_key;  // no default when this key is given
};
constexpr FieldDefault kDefaults[] = {
    {"cairn.v1.GenerateInput", "interval_ms", kDefaultIntervalMs, "rate"},
    {"cairn.v1.MqttOutput", "qos", kDefaultQos, nullptr},
};

const FieldDefault* DefaultFor(const FieldDescriptor* f) {
  for (const FieldDefault& d : kDefaults) {
    if (f->containing_type()->full_name() == d.message && f->name() == d.field) return &d;
  }
  return nullptr;
}

std::vector<std::string> Keys(const Descriptor* d) {
  std::vector<std::string> keys;
  for (int i = 0; i < d->field_count(); ++i) keys.push_back(YamlKey(d->field(i)));
  return keys;
}

std::vector<std::string> KindNames(const Descriptor* d) {
  std::vector<std::string> names;
  const auto* oneof = d->FindOneofByName("kind");
  for (int i = 0; oneof != nullptr && i < oneof->field_count(); ++i) {
    names.push_back(oneof->field(i)->name());
  }
  return names;
}

Status SetScalar(const YAML::Node& node, const std::string& path, const FieldDescriptor* f,
                 Message* msg) {
  const Reflection* r = msg->GetReflection();
  if (f->is_repeated() && f->cpp_type() != FieldDescriptor::CPPTYPE_STRING) {
    return At(path, "unsupported field type in the schema");
  }
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: {
      auto v = GetString(node, path);
      if (!v.ok()) return v.error();
      if (f->is_repeated()) r->AddString(msg, f, *v); else r->SetString(msg, f, *v);
      return OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      auto v = GetBool(node, path);
      if (!v.ok()) return v.error();
      r->SetBool(msg, f, *v);
      return OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      if (IsDurationField(f)) {
        auto text = GetString(node, path);
        if (!text.ok()) return text.error();
        auto d = ParseDuration(*text);
        if (!d.ok()) return At(path, d.error().message);
        if (d->count() > std::numeric_limits<uint32_t>::max()) return At(path, "too long");
        r->SetUInt32(msg, f, static_cast<uint32_t>(d->count()));
        return OkStatus();
      }
      auto v = GetUint(node, path, std::numeric_limits<uint32_t>::max());
      if (!v.ok()) return v.error();
      r->SetUInt32(msg, f, static_cast<uint32_t>(*v));
      return OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      auto v = GetUint(node, path, std::numeric_limits<uint64_t>::max());
      if (!v.ok()) return v.error();
      r->SetUInt64(msg, f, *v);
      return OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      auto text = GetString(node, path);
      if (!text.ok()) return text.error();
      double v = 0;
      auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
      if (text->empty() || ec != std::errc() || end != text->data() + text->size()) {
        return At(path, "expected a number, got " + Quoted(*text));
      }
      r->SetDouble(msg, f, v);
      return OkStatus();
    }
    default:
      return At(path, "unsupported field type in the schema");
  }
}

Status ParseFields(const YAML::Node& node, const std::string& path, Message* msg) {
  const Descriptor* d = msg->GetDescriptor();
  const std::vector<std::string> keys = Keys(d);
  if (auto s = CheckMap(node, path, keys); !s.ok()) return s;
  const Reflection* r = msg->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string key = YamlKey(f);
    const bool given = node.IsMap() && node[key];
    if (!given) {
      const FieldDefault* def = DefaultFor(f);
      if (def != nullptr && !(def->unless_key && node.IsMap() && node[def->unless_key])) {
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_UINT32) {
          r->SetUInt32(msg, f, static_cast<uint32_t>(def->value));
        }
      }
      continue;
    }
    const YAML::Node value = node[key];
    const std::string p = Child(path, key);
    if (f->is_map()) {
      if (auto s = CheckTag(value, p); !s.ok()) return s;
      if (value.IsNull()) continue;
      if (!value.IsMap()) return At(p, "expected a map of strings");
      const FieldDescriptor* kf = f->message_type()->FindFieldByName("key");
      const FieldDescriptor* vf = f->message_type()->FindFieldByName("value");
      std::set<std::string> seen;
      for (const auto& entry : value) {
        if (!entry.first.IsScalar()) return At(p, "keys must be plain strings");
        const std::string& k = entry.first.Scalar();
        if (!seen.insert(k).second) return At(Child(p, k), "duplicate key");
        auto v = GetString(entry.second, Child(p, k));
        if (!v.ok()) return v.error();
        Message* e = r->AddMessage(msg, f);
        e->GetReflection()->SetString(e, kf, k);
        e->GetReflection()->SetString(e, vf, *v);
      }
    } else if (f->is_repeated()) {
      if (auto s = CheckTag(value, p); !s.ok()) return s;
      if (value.IsNull()) continue;
      if (!value.IsSequence()) return At(p, "expected a list");
      for (size_t j = 0; j < value.size(); ++j) {
        if (auto s = SetScalar(value[j], p + "[" + std::to_string(j) + "]", f, msg); !s.ok()) {
          return s;
        }
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (auto s = ParseFields(value, p, r->MutableMessage(msg, f)); !s.ok()) return s;
    } else if (auto s = SetScalar(value, p, f, msg); !s.ok()) {
      return s;
    }
  }
  return OkStatus();
}

// Input, Processor or Output: one key naming the kind, or the bare kind name
// (`output: stdout`, `- parse_json`).
Status ParseComponent(const YAML::Node& node, const std::string& path, std::string_view what,
                      Message* msg) {
  const Descriptor* d = msg->GetDescriptor();
  const std::vector<std::string> kinds = KindNames(d);
  std::string kind;
  YAML::Node value;
  if (node.IsScalar() && CheckTag(node, path).ok() &&
      std::find(kinds.begin(), kinds.end(), node.Scalar()) != kinds.end()) {
    kind = node.Scalar();
  } else {
    auto k = OneKind(node, path, what, kinds);
    if (!k.ok()) return k.error();
    kind = *k;
    value = node[kind];
  }
  const FieldDescriptor* f = d->FindFieldByName(kind);
  return ParseFields(value, Child(path, kind), msg->GetReflection()->MutableMessage(msg, f));
}

Status ParseProcessors(const YAML::Node& node, const std::string& path,
                       google::protobuf::RepeatedPtrField<v1::Processor>* out) {
  if (auto s = CheckTag(node, path); !s.ok()) return s;
  if (node.IsNull()) return OkStatus();
  if (!node.IsSequence()) return At(path, "expected a list of processors");
  for (size_t i = 0; i < node.size(); ++i) {
    std::string p = path + "[" + std::to_string(i) + "]";
    if (auto s = ParseComponent(node[i], p, "processor", out->Add()); !s.ok()) return s;
  }
  return OkStatus();
}

Status ParseSpec(const YAML::Node& node, const std::string& path, v1::PipelineSpec* out) {
  if (auto s = CheckMap(node, path, {"input", "processors", "output"}); !s.ok()) return s;
  if (node.IsNull() || !node["input"]) return At(Child(path, "input"), "missing");
  if (!node["output"]) return At(Child(path, "output"), "missing");
  if (auto s = ParseComponent(node["input"], Child(path, "input"), "input", out->mutable_input());
      !s.ok()) {
    return s;
  }
  if (node["processors"]) {
    auto s = ParseProcessors(node["processors"], Child(path, "processors"),
                             out->mutable_processors());
    if (!s.ok()) return s;
  }
  return ParseComponent(node["output"], Child(path, "output"), "output", out->mutable_output());
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

namespace {

// Relative path as the node resolves it, for comparing two spec paths.
std::string NormalPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string part = path.substr(start, (slash == std::string::npos ? path.size() : slash) - start);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  std::string out = (!path.empty() && path.front() == '/') ? "/" : "";
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "/" : "") + parts[i];
  return out;
}

Status CheckRegex(const std::string& regex, const std::string& where) {
  if (regex.size() > kMaxRegexLength) {
    return At(where, "longer than " + std::to_string(kMaxRegexLength) + " characters");
  }
  auto re = CompileFilterRegex(regex);
  if (!re.ok()) return At(where, re.error().message);
  return OkStatus();
}

Status CheckFieldName(const std::string& name, const std::string& where) {
  if (name.empty()) return At(where, "must not be empty");
  if (name.size() > 256) return At(where, "longer than 256 characters");
  if (FirstInvalidUtf8(name) != std::string::npos) return At(where, "is not UTF-8 text");
  return OkStatus();
}

// One rule per component kind that needs more than its schema's types. The
// path is that of the kind (e.g. "processors[0].filter").
using Rule = Status (*)(const google::protobuf::Message& m, const std::string& path,
                        const v1::PipelineSpec& spec);

Status GenerateRule(const google::protobuf::Message& m, const std::string& path,
                    const v1::PipelineSpec&) {
  const auto& g = static_cast<const v1::GenerateInput&>(m);
  if (g.rate() != 0) {
    if (g.rate() > kMaxGenerateRate) {
      return At(path + ".rate", "must be at most " + std::to_string(kMaxGenerateRate) +
                                    " records per second");
    }
    return OkStatus();
  }
  if (g.interval_ms() != 0 && g.interval_ms() < kMinIntervalMs) {
    return At(path + ".interval", "must be at least " + std::to_string(kMinIntervalMs) + "ms");
  }
  return OkStatus();
}

Status FileInputRule(const google::protobuf::Message& m, const std::string& path,
                     const v1::PipelineSpec&) {
  return CheckFilePath(static_cast<const v1::FileInput&>(m).path(), path + ".path");
}

Status ExecRule(const google::protobuf::Message& m, const std::string& path,
                const v1::PipelineSpec&) {
  const auto& e = static_cast<const v1::ExecInput&>(m);
  if (e.command().empty() || e.command(0).empty()) {
    return At(path + ".command", "needs the program to run (a list: [program, args...])");
  }
  for (int i = 0; i < e.command_size(); ++i) {
    if (e.command(i).find('\0') != std::string::npos) {
      return At(path + ".command[" + std::to_string(i) + "]", "must not contain a NUL character");
    }
  }
  if (e.restart_ms() > 3'600'000) return At(path + ".restart", "must be at most 1h");
  return OkStatus();
}

Status FilterRule(const google::protobuf::Message& m, const std::string& path,
                  const v1::PipelineSpec&) {
  const auto& f = static_cast<const v1::FilterProcessor&>(m);
  if (f.contains().empty() && f.regex().empty() && f.field().empty()) {
    return At(path, "needs one of contains, regex, field");
  }
  if (f.field().empty()) {
    if (!f.equals().empty()) return At(path + ".equals", "needs field");
    if (f.has_above()) return At(path + ".above", "needs field");
    if (f.has_below()) return At(path + ".below", "needs field");
  } else if (auto s = CheckFieldName(f.field(), path + ".field"); !s.ok()) {
    return s;
  }
  if (!f.regex().empty()) return CheckRegex(f.regex(), path + ".regex");
  return OkStatus();
}

Status SetRule(const google::protobuf::Message& m, const std::string& path,
               const v1::PipelineSpec&) {
  const auto& s = static_cast<const v1::SetProcessor&>(m);
  if (s.fields().empty() && s.node_field().empty() && s.labels_field().empty()) {
    return At(path, "needs one of fields, node_field, labels_field");
  }
  for (const auto& [k, v] : s.fields()) {
    if (auto st = CheckFieldName(k, path + ".fields"); !st.ok()) return st;
  }
  return OkStatus();
}

Status DropRule(const google::protobuf::Message& m, const std::string& path,
                const v1::PipelineSpec&) {
  const auto& d = static_cast<const v1::DropProcessor&>(m);
  if (d.fields().empty()) return At(path + ".fields", "needs at least one field");
  for (int i = 0; i < d.fields_size(); ++i) {
    if (auto st = CheckFieldName(d.fields(i), path + ".fields[" + std::to_string(i) + "]");
        !st.ok()) {
      return st;
    }
  }
  return OkStatus();
}

Status SampleRule(const google::protobuf::Message& m, const std::string& path,
                  const v1::PipelineSpec&) {
  if (static_cast<const v1::SampleProcessor&>(m).one_in() == 0) {
    return At(path + ".one_in", "must be at least 1");
  }
  return OkStatus();
}

Status BatchRule(const google::protobuf::Message& m, const std::string& path,
                 const v1::PipelineSpec&) {
  const auto& b = static_cast<const v1::BatchProcessor&>(m);
  if (!b.format().empty() && b.format() != "json" && b.format() != "lines") {
    return At(path + ".format", Quoted(b.format()) + " is not json or lines");
  }
  if (b.max_records() > 100000) return At(path + ".max_records", "must be at most 100000");
  if (b.max_bytes() > kMaxBatchBytes) {
    return At(path + ".max_bytes", "must be at most " + std::to_string(kMaxBatchBytes));
  }
  return OkStatus();
}

Status AggregateRule(const google::protobuf::Message& m, const std::string& path,
                     const v1::PipelineSpec&) {
  const auto& a = static_cast<const v1::AggregateProcessor&>(m);
  if (a.window_ms() != 0 && (a.window_ms() < 100 || a.window_ms() > 86'400'000)) {
    return At(path + ".window", "must be between 100ms and 1d");
  }
  for (int i = 0; i < a.functions_size(); ++i) {
    const std::string& f = a.functions(i);
    if (f != "count" && f != "sum" && f != "avg" && f != "min" && f != "max") {
      return At(path + ".functions[" + std::to_string(i) + "]",
                Quoted(f) + " is not count, sum, avg, min or max");
    }
  }
  for (int i = 0; i < a.group_by_size(); ++i) {
    auto s = CheckFieldName(a.group_by(i), path + ".group_by[" + std::to_string(i) + "]");
    if (!s.ok()) return s;
  }
  for (int i = 0; i < a.fields_size(); ++i) {
    auto s = CheckFieldName(a.fields(i), path + ".fields[" + std::to_string(i) + "]");
    if (!s.ok()) return s;
  }
  return OkStatus();
}

Status FileOutputRule(const google::protobuf::Message& m, const std::string& path,
                      const v1::PipelineSpec& spec) {
  const auto& o = static_cast<const v1::FileOutput&>(m);
  const std::string& out = o.path();
  if (auto s = CheckFilePath(out, path + ".path"); !s.ok()) return s;
  if (o.max_bytes() != 0 && o.max_bytes() < 4096) {
    return At(path + ".max_bytes", "must be 0 (no rotation) or at least 4096");
  }
  if (o.keep() > 100) return At(path + ".keep", "must be at most 100");
  if (spec.input().has_file() && NormalPath(spec.input().file().path()) == NormalPath(out)) {
    return At(path + ".path", Quoted(out) + " is also the input file");
  }
  return OkStatus();
}

Status MqttOutputRule(const google::protobuf::Message& m, const std::string& path,
                      const v1::PipelineSpec&) {
  const auto& o = static_cast<const v1::MqttOutput&>(m);
  if (auto s = topics::ValidateName("stream", o.stream()); !s.ok()) {
    return At(path + ".stream", s.error().message);
  }
  if (o.qos() > 2) return At(path + ".qos", "must be 0, 1 or 2");
  return OkStatus();
}

Status MqttInputRule(const google::protobuf::Message& m, const std::string& path,
                     const v1::PipelineSpec& spec) {
  const auto& i = static_cast<const v1::MqttInput&>(m);
  if (auto s = topics::ValidateName("stream", i.stream()); !s.ok()) {
    return At(path + ".stream", s.error().message);
  }
  if (i.buffer() > 1'000'000) return At(path + ".buffer", "must be at most 1000000 records");
  if (spec.output().has_mqtt() && spec.output().mqtt().stream() == i.stream()) {
    return At(path + ".stream", Quoted(i.stream()) + " is also the output stream (the pipeline would read its own records)");
  }
  return OkStatus();
}

// Header names are HTTP tokens; values have no line breaks (no injection).
// The client sets Host, Content-Length and Connection itself.
Status HttpOutputRule(const google::protobuf::Message& m, const std::string& path,
                      const v1::PipelineSpec&) {
  const auto& o = static_cast<const v1::HttpOutput&>(m);
  if (o.url().empty()) return At(path + ".url", "missing");
  if (auto u = ParseHttpUrl(o.url()); !u.ok()) return At(path + ".url", u.error().message);
  for (const auto& [name, value] : o.headers()) {
    const std::string p = path + ".headers." + name;
    if (name.empty()) return At(path + ".headers", "a header name must not be empty");
    for (unsigned char c : name) {
      if (!(std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) !=
                                   std::string_view::npos)) {
        return At(p, "is not a valid header name");
      }
    }
    std::string lower;
    for (unsigned char c : name) lower += static_cast<char>(std::tolower(c));
    if (lower == "host" || lower == "content-length" || lower == "connection" || lower == "transfer-encoding") {
      return At(p, "is set by the node (not configurable)");
    }
    for (unsigned char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) return At(p, "must not contain control characters or line breaks");
    }
  }
  if (!o.format().empty() && o.format() != "json" && o.format() != "lines") {
    return At(path + ".format", Quoted(o.format()) + " is not json or lines");
  }
  if (o.max_records() > 100000) return At(path + ".max_records", "must be at most 100000");
  if (o.max_bytes() > 16u << 20) return At(path + ".max_bytes", "must be at most 16777216");
  if (o.max_bytes() != 0 && o.max_bytes() < 1024) return At(path + ".max_bytes", "must be at least 1024");
  if (o.timeout_ms() != 0 && (o.timeout_ms() < 100 || o.timeout_ms() > 300'000)) {
    return At(path + ".timeout", "must be between 100ms and 5m");
  }
  if (o.max_wait_ms() > 3'600'000) return At(path + ".max_wait", "must be at most 1h");
  if (o.max_backoff_ms() != 0 && (o.max_backoff_ms() < 100 || o.max_backoff_ms() > 3'600'000)) {
    return At(path + ".max_backoff", "must be between 100ms and 1h");
  }
  if (!o.ca_file().empty()) return CheckFilePath(o.ca_file(), path + ".ca_file");
  return OkStatus();
}

struct KindRule {
  const char* message;  // full name of the kind's message
  Rule rule;
};
constexpr KindRule kRules[] = {
    {"cairn.v1.GenerateInput", GenerateRule}, {"cairn.v1.FileInput", FileInputRule},
    {"cairn.v1.ExecInput", ExecRule},
    {"cairn.v1.FilterProcessor", FilterRule}, {"cairn.v1.SetProcessor", SetRule},
    {"cairn.v1.DropProcessor", DropRule},     {"cairn.v1.SampleProcessor", SampleRule},
    {"cairn.v1.BatchProcessor", BatchRule},   {"cairn.v1.AggregateProcessor", AggregateRule},
    {"cairn.v1.FileOutput", FileOutputRule},
    {"cairn.v1.MqttOutput", MqttOutputRule},
    {"cairn.v1.HttpOutput", HttpOutputRule},
    {"cairn.v1.MqttInput", MqttInputRule},
};

// `msg` is an Input, Processor or Output: exactly one kind must be set (an
// unknown field from a newer schema leaves none set).
Status CheckComponent(const google::protobuf::Message& msg, const std::string& path,
                      const v1::PipelineSpec& spec) {
  const auto* d = msg.GetDescriptor();
  const auto* oneof = d->FindOneofByName("kind");
  const auto* r = msg.GetReflection();
  const auto* f = r->GetOneofFieldDescriptor(msg, oneof);
  if (f == nullptr) return At(path, "missing (expected " + OneOf(KindNames(d)) + ")");
  const std::string kind_path = path + "." + f->name();
  for (const KindRule& k : kRules) {
    if (f->message_type()->full_name() == k.message) {
      return k.rule(r->GetMessage(msg, f), kind_path, spec);
    }
  }
  return OkStatus();
}

}  // namespace

Status ValidatePipelineSpec(const v1::PipelineSpec& spec) {
  if (auto s = CheckComponent(spec.input(), "input", spec); !s.ok()) return s;
  for (int i = 0; i < spec.processors_size(); ++i) {
    auto s = CheckComponent(spec.processors(i), "processors[" + std::to_string(i) + "]", spec);
    if (!s.ok()) return s;
  }
  return CheckComponent(spec.output(), "output", spec);
}

std::string HttpUrl::HostHeader() const {
  std::string h = ipv6 ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) h += ":" + std::to_string(port);
  return h;
}

Result<HttpUrl> ParseHttpUrl(const std::string& url) {
  HttpUrl u;
  std::string_view rest(url);
  if (rest.rfind("https://", 0) == 0) {
    u.tls = true;
    rest.remove_prefix(8);
  } else if (rest.rfind("http://", 0) == 0) {
    rest.remove_prefix(7);
  } else {
    return Error::InvalidArgument(Quoted(url) + " must start with http:// or https://");
  }
  if (url.size() > 2048) return Error::InvalidArgument("URL longer than 2048 characters");
  for (unsigned char c : url) {
    if (c <= 0x20 || c == 0x7f) {
      return Error::InvalidArgument(Quoted(url) + " contains a space or control character (percent-encode it)");
    }
  }
  if (url.find('#') != std::string::npos) return Error::InvalidArgument(Quoted(url) + " has a fragment (#)");
  const size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  u.target = end == std::string_view::npos ? "/" : std::string(rest.substr(end));
  if (u.target.front() == '?') u.target = "/" + u.target;
  if (authority.find('@') != std::string_view::npos) {
    return Error::InvalidArgument(Quoted(url) + ": user info in the URL is not supported (use headers)");
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return Error::InvalidArgument(Quoted(url) + ": unclosed [ in the host");
    u.host = std::string(authority.substr(1, close - 1));
    u.ipv6 = true;
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Error::InvalidArgument(Quoted(url) + ": unexpected text after ]");
      port_text = after.substr(1);
      if (port_text.empty()) return Error::InvalidArgument(Quoted(url) + ": empty port");
    }
  } else {
    const size_t colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return Error::InvalidArgument(Quoted(url) + ": empty port");
    }
    for (char c : u.host) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) {
        return Error::InvalidArgument(Quoted(url) + ": invalid character in the host");
      }
    }
  }
  if (u.host.empty()) return Error::InvalidArgument(Quoted(url) + " has no host");
  u.port = u.tls ? 443 : 80;
  if (!port_text.empty()) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || value == 0 || value > 65535) {
      return Error::InvalidArgument(Quoted(url) + ": the port must be 1..65535");
    }
    u.port = static_cast<uint16_t>(value);
  }
  return u;
}

Result<std::shared_ptr<const re2::RE2>> CompileFilterRegex(const std::string& regex) {
  re2::RE2::Options options;
  options.set_log_errors(false);  // the error comes back in the message instead
  auto re = std::make_shared<const re2::RE2>(regex, options);
  if (!re->ok()) {
    return Error::InvalidArgument("invalid regex " + Quoted(regex) + ": " + re->error());
  }
  return re;
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

namespace {

void RenderScalar(YAML::Emitter& out, const google::protobuf::Message& m,
                  const google::protobuf::FieldDescriptor* f, int index) {
  using google::protobuf::FieldDescriptor;
  const auto* r = m.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      out << YAML::DoubleQuoted << (rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      out << r->GetBool(m, f);
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      if (IsDurationField(f)) {
        out << FormatDuration(r->GetUInt32(m, f));
      } else {
        out << r->GetUInt32(m, f);
      }
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      out << r->GetUInt64(m, f);
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      // Shortest text that reads back to the same double.
      char buf[32];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, r->GetDouble(m, f));
      out << std::string(buf, ec == std::errc() ? end : buf);
      break;
    }
    default:
      out << YAML::Null;
  }
}

void RenderFields(YAML::Emitter& out, const google::protobuf::Message& m) {
  using google::protobuf::FieldDescriptor;
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  out << YAML::BeginMap;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated()) {
      if (r->FieldSize(m, f) == 0) continue;
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (!r->HasField(m, f)) continue;
    } else if (!r->HasField(m, f) && DefaultFor(f) == nullptr) {
      continue;  // proto3: zero values are not written (unless 0 differs from the default)
    }
    out << YAML::Key << YamlKey(f) << YAML::Value;
    if (f->is_map()) {
      // Sorted, so that the text is deterministic.
      std::map<std::string, std::string> entries;
      for (int j = 0; j < r->FieldSize(m, f); ++j) {
        const auto& e = r->GetRepeatedMessage(m, f, j);
        entries[e.GetReflection()->GetString(e, e.GetDescriptor()->FindFieldByName("key"))] =
            e.GetReflection()->GetString(e, e.GetDescriptor()->FindFieldByName("value"));
      }
      out << YAML::BeginMap;
      for (const auto& [k, v] : entries) {
        out << YAML::Key << YAML::DoubleQuoted << k << YAML::Value << YAML::DoubleQuoted << v;
      }
      out << YAML::EndMap;
    } else if (f->is_repeated()) {
      out << YAML::BeginSeq;
      for (int j = 0; j < r->FieldSize(m, f); ++j) RenderScalar(out, m, f, j);
      out << YAML::EndSeq;
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      RenderFields(out, r->GetMessage(m, f));
    } else {
      RenderScalar(out, m, f, 0);
    }
  }
  out << YAML::EndMap;
}

// Writes `key: {kind: {...}}` for a set Input/Processor/Output.
void RenderComponent(YAML::Emitter& out, const google::protobuf::Message& m) {
  const auto* oneof = m.GetDescriptor()->FindOneofByName("kind");
  const auto* f = m.GetReflection()->GetOneofFieldDescriptor(m, oneof);
  out << YAML::BeginMap;
  if (f != nullptr) {
    out << YAML::Key << f->name() << YAML::Value;
    RenderFields(out, m.GetReflection()->GetMessage(m, f));
  }
  out << YAML::EndMap;
}

}  // namespace

std::string PipelineSpecToYaml(const v1::PipelineSpec& spec) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  if (spec.has_input()) {
    out << YAML::Key << "input" << YAML::Value;
    RenderComponent(out, spec.input());
  }
  if (spec.processors_size() > 0) {
    out << YAML::Key << "processors" << YAML::Value << YAML::BeginSeq;
    for (const v1::Processor& p : spec.processors()) RenderComponent(out, p);
    out << YAML::EndSeq;
  }
  if (spec.has_output()) {
    out << YAML::Key << "output" << YAML::Value;
    RenderComponent(out, spec.output());
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace cairn
