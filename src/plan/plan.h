// The Plan: what will happen to each tensor (output name, shape, type),
// decided before any byte is written so it can be printed on its own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "codecs/ggml_types.h"
#include "io/gguf.h"
#include "io/model.h"
#include "qforge/status.h"

namespace qforge {

// A llama-quantize file type ("preset"): its llama_ftype value and the ggml
// type most tensors get.
struct Preset {
  const char* name;
  uint32_t ftype;
  GgmlType default_type;
  const char* description;
};
const Preset* FindPreset(const std::string& name);  // case-insensitive
const std::vector<Preset>& AllPresets();

struct TensorPlan {
  const ModelTensor* source = nullptr;
  std::string name;
  std::vector<int64_t> ne;
  GgmlType type = GgmlType::F32;
  uint64_t nbytes = 0;
  bool copy_bytes = false;  // source bytes go out unchanged
};

struct PlanOptions {
  bool allow_requantize = false;
};

struct Plan {
  std::string preset;
  GgufMetadata metadata;
  std::vector<TensorPlan> tensors;
  std::vector<std::string> warnings;
  uint64_t tensor_bytes() const;
  int64_t n_elements() const;
  double bits_per_weight() const;
};

Result<Plan> BuildPlan(const Model& model, const Preset& preset, const PlanOptions& opts);

}  // namespace qforge
