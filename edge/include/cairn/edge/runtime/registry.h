// The component registry: which kind of the schema (a field of the `kind`
// oneof of v1::Input, v1::Processor or v1::Output) is built by which
// factory. Filled explicitly at start by RegisterBuiltinComponents; a kind
// without a factory is an error, never a default.
//
// Adding a kind: its message and oneof field in schemas/cairn/v1/pipeline.proto
// (plus its rule, if any, in common/src/pipeline_spec.cc), its file in
// edge/src/runtime/, and one line in RegisterBuiltinComponents.
//
// Thread-safety: fill before use; afterwards const methods are thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "cairn/common/result.h"
#include "cairn/edge/runtime/component.h"
#include "cairn/v1/pipeline.pb.h"

namespace cairn::edge::runtime {

// A factory gets the kind's own message (e.g. v1::FilterProcessor) and the
// path of the kind in the spec for its messages ("processors[0].filter").
template <typename T>
using Factory = std::function<Result<std::unique_ptr<T>>(
    const google::protobuf::Message& config, const std::string& path, const Env& env)>;

class ComponentRegistry {
 public:
  // `kind` is the oneof field's name ("generate", "filter", "mqtt"). Adding
  // a kind twice or one the schema does not have is an error.
  Status AddInput(const std::string& kind, Factory<Input> factory);
  Status AddProcessor(const std::string& kind, Factory<Processor> factory);
  Status AddOutput(const std::string& kind, Factory<Output> factory);

  Result<std::unique_ptr<Input>> MakeInput(const v1::Input& config, const Env& env) const;
  Result<std::unique_ptr<Processor>> MakeProcessor(const v1::Processor& config,
                                                   const std::string& path, const Env& env) const;
  Result<std::unique_ptr<Output>> MakeOutput(const v1::Output& config, const Env& env) const;

 private:
  std::map<std::string, Factory<Input>> inputs_;
  std::map<std::string, Factory<Processor>> processors_;
  std::map<std::string, Factory<Output>> outputs_;
};

// Registers every kind this node knows.
void RegisterBuiltinComponents(ComponentRegistry* registry);

// A registry filled with the built-in kinds, built once.
const ComponentRegistry& BuiltinRegistry();

}  // namespace cairn::edge::runtime
