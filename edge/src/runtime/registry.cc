// ComponentRegistry, the Env helpers, and the explicit list of built-in kinds.
#include "cairn/edge/runtime/registry.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include <spdlog/spdlog.h>

namespace cairn::edge::runtime {

// Each component kind's file defines its registration function.
void RegisterGenerateInput(ComponentRegistry* r);
void RegisterFileInput(ComponentRegistry* r);
void RegisterExecInput(ComponentRegistry* r);
void RegisterMqttInput(ComponentRegistry* r);
void RegisterFilterProcessor(ComponentRegistry* r);
void RegisterParseJsonProcessor(ComponentRegistry* r);
void RegisterSetProcessor(ComponentRegistry* r);
void RegisterDropProcessor(ComponentRegistry* r);
void RegisterSampleProcessor(ComponentRegistry* r);
void RegisterBatchProcessor(ComponentRegistry* r);
void RegisterAggregateProcessor(ComponentRegistry* r);
void RegisterFileOutput(ComponentRegistry* r);
void RegisterMqttOutput(ComponentRegistry* r);
void RegisterStdoutOutput(ComponentRegistry* r);
void RegisterHttpOutput(ComponentRegistry* r);

void RegisterBuiltinComponents(ComponentRegistry* r) {
  RegisterGenerateInput(r);
  RegisterFileInput(r);
  RegisterExecInput(r);
  RegisterMqttInput(r);
  RegisterFilterProcessor(r);
  RegisterParseJsonProcessor(r);
  RegisterSetProcessor(r);
  RegisterDropProcessor(r);
  RegisterSampleProcessor(r);
  RegisterBatchProcessor(r);
  RegisterAggregateProcessor(r);
  RegisterFileOutput(r);
  RegisterMqttOutput(r);
  RegisterStdoutOutput(r);
  RegisterHttpOutput(r);
}

const ComponentRegistry& BuiltinRegistry() {
  static const ComponentRegistry* registry = [] {
    auto* r = new ComponentRegistry();
    RegisterBuiltinComponents(r);
    return r;
  }();
  return *registry;
}

namespace {

const google::protobuf::FieldDescriptor* KindField(const google::protobuf::Descriptor* d,
                                                   const std::string& kind) {
  const auto* oneof = d->FindOneofByName("kind");
  const auto* f = d->FindFieldByName(kind);
  return (f != nullptr && f->containing_oneof() == oneof) ? f : nullptr;
}

template <typename T>
Status Add(std::map<std::string, Factory<T>>* m, const google::protobuf::Descriptor* d,
           const std::string& kind, Factory<T> factory) {
  if (KindField(d, kind) == nullptr) {
    return Error::InvalidArgument("component kind " + kind + " is not in the schema of " +
                                  d->name());
  }
  if (!m->emplace(kind, std::move(factory)).second) {
    return Error::AlreadyExists("component kind " + kind + " registered twice");
  }
  return OkStatus();
}

template <typename T>
Result<std::unique_ptr<T>> Make(const std::map<std::string, Factory<T>>& m,
                                const google::protobuf::Message& config, const std::string& path,
                                const Env& env) {
  const auto* oneof = config.GetDescriptor()->FindOneofByName("kind");
  const auto* f = config.GetReflection()->GetOneofFieldDescriptor(config, oneof);
  if (f == nullptr) {
    return Error::InvalidArgument(path + ": no kind set, or one unknown to this node");
  }
  auto it = m.find(f->name());
  if (it == m.end()) {
    return Error::InvalidArgument(path + "." + f->name() + ": kind not supported by this node");
  }
  return it->second(config.GetReflection()->GetMessage(config, f), path + "." + f->name(), env);
}

}  // namespace

Status ComponentRegistry::AddInput(const std::string& kind, Factory<Input> factory) {
  return Add(&inputs_, v1::Input::descriptor(), kind, std::move(factory));
}
Status ComponentRegistry::AddProcessor(const std::string& kind, Factory<Processor> factory) {
  return Add(&processors_, v1::Processor::descriptor(), kind, std::move(factory));
}
Status ComponentRegistry::AddOutput(const std::string& kind, Factory<Output> factory) {
  return Add(&outputs_, v1::Output::descriptor(), kind, std::move(factory));
}

Result<std::unique_ptr<Input>> ComponentRegistry::MakeInput(const v1::Input& config,
                                                            const Env& env) const {
  return Make(inputs_, config, "input", env);
}
Result<std::unique_ptr<Processor>> ComponentRegistry::MakeProcessor(const v1::Processor& config,
                                                                    const std::string& path,
                                                                    const Env& env) const {
  return Make(processors_, config, path, env);
}
Result<std::unique_ptr<Output>> ComponentRegistry::MakeOutput(const v1::Output& config,
                                                              const Env& env) const {
  return Make(outputs_, config, "output", env);
}

std::optional<std::string> MemoryCheckpoints::Load(const std::string& key) {
  std::lock_guard lock(mu_);
  for (const auto& [k, v] : values_) {
    if (k == key) return v;
  }
  return std::nullopt;
}

void MemoryCheckpoints::Save(const std::string& key, const std::string& value) {
  std::lock_guard lock(mu_);
  for (auto& [k, v] : values_) {
    if (k == key) {
      v = value;
      return;
    }
  }
  values_.emplace_back(key, value);
}

void Wakeup::Notify() {
  {
    std::lock_guard lock(mu_);
    notified_ = true;
  }
  cv_.notify_all();
}

void Wakeup::WaitFor(milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [this] { return notified_; });
  notified_ = false;
}

ComponentLog::ComponentLog(std::string pipeline, const Clock* clock, double per_second, double burst)
    : pipeline_(std::move(pipeline)), clock_(clock), per_second_(per_second), burst_(burst), tokens_(burst) {}

void ComponentLog::operator()(Level level, const std::string& line) {
  uint64_t skipped = 0;
  {
    std::lock_guard lock(mu_);
    const int64_t now = clock_->NowMs();
    if (last_ms_ >= 0 && now > last_ms_) {
      tokens_ = std::min(burst_, tokens_ + static_cast<double>(now - last_ms_) * per_second_ / 1000.0);
    }
    if (now > last_ms_) last_ms_ = now;
    if (tokens_ < 1.0) {
      ++suppressed_;
      ++suppressed_since_;
      return;
    }
    tokens_ -= 1.0;
    skipped = suppressed_since_;
    suppressed_since_ = 0;
  }
  const spdlog::level::level_enum l = level == Level::kDebug  ? spdlog::level::debug
                                      : level == Level::kInfo ? spdlog::level::info
                                      : level == Level::kWarn ? spdlog::level::warn
                                                              : spdlog::level::err;
  if (skipped > 0) {
    spdlog::log(l, "pipeline {}: {} ({} lines suppressed by the rate limit)", pipeline_, line, skipped);
  } else {
    spdlog::log(l, "pipeline {}: {}", pipeline_, line);
  }
}

uint64_t ComponentLog::suppressed() const {
  std::lock_guard lock(mu_);
  return suppressed_;
}

std::string FileCheckpoints::PathOf(const std::string& key) const {
  // Keys are arbitrary text (a path): hex-encode them into a file name.
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name;
  for (unsigned char c : key) {
    name += kHex[c >> 4];
    name += kHex[c & 15];
  }
  if (name.size() > 200) name = name.substr(0, 100) + "-" + std::to_string(std::hash<std::string>{}(key));
  return dir_ + "/" + name;
}

std::optional<std::string> FileCheckpoints::Load(const std::string& key) {
  std::lock_guard lock(mu_);
  std::ifstream in(PathOf(key), std::ios::binary);
  if (!in) return std::nullopt;
  std::string value((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return value;
}

void FileCheckpoints::Save(const std::string& key, const std::string& value) {
  std::lock_guard lock(mu_);
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  const std::string path = PathOf(key);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << value;
    if (!out) return;
  }
  std::filesystem::rename(tmp, path, ec);
}

Result<std::string> ResolvePath(const std::string& field, const std::string& path, const Env& env,
                                FileAccess access) {
  namespace fs = std::filesystem;
  if (path.empty()) return Error::InvalidArgument(field + ": must not be empty");
  if (path.find('\0') != std::string::npos) {
    return Error::InvalidArgument(field + ": must not contain a NUL character");
  }
  fs::path normal = fs::path(path).lexically_normal();
  if (normal.filename().empty() || normal.filename() == "." || normal.filename() == "..") {
    return Error::InvalidArgument(field + ": \"" + path + "\" does not name a file");
  }
  if (env.files) {
    auto resolved = env.files->Resolve(path, access);
    if (!resolved.ok()) return Error{resolved.error().code, field + ": " + resolved.error().message};
    return *resolved;
  }
  if (normal.is_absolute()) return normal.string();
  if (*normal.begin() == "..") {
    return Error::InvalidArgument(field + ": \"" + path + "\" leaves the data directory ('..')");
  }
  if (env.data_dir.empty()) return normal.string();
  return (fs::path(env.data_dir) / normal).string();
}

}  // namespace cairn::edge::runtime
