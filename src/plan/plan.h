// The Plan: what will happen to each tensor (output name, shape, type,
// importance weights), decided before any byte is written so it can be
// printed on its own (`qforge plan`). Presets follow llama-quantize's file
// types and its per-tensor rules, so the same preset gives the same types.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "codecs/ggml_types.h"
#include "codecs/int_group.h"
#include "io/gguf.h"
#include "io/imatrix.h"
#include "io/int_layouts.h"
#include "plan/method.h"
#include "model/model.h"
#include "qforge/status.h"

namespace qforge {

// llama_ftype values (spec 1.9.6) of the presets qforge writes.
enum class Ftype : uint32_t {
  ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_Q4_0 = 2, MOSTLY_Q4_1 = 3, MOSTLY_Q8_0 = 7, MOSTLY_Q5_0 = 8,
  MOSTLY_Q5_1 = 9, MOSTLY_Q2_K = 10, MOSTLY_Q3_K_S = 11, MOSTLY_Q3_K_M = 12, MOSTLY_Q3_K_L = 13,
  MOSTLY_Q4_K_S = 14, MOSTLY_Q4_K_M = 15, MOSTLY_Q5_K_S = 16, MOSTLY_Q5_K_M = 17, MOSTLY_Q6_K = 18,
  MOSTLY_Q2_K_S = 21, MOSTLY_IQ4_NL = 25, MOSTLY_IQ4_XS = 30, MOSTLY_BF16 = 32, MOSTLY_TQ1_0 = 36,
  MOSTLY_TQ2_0 = 37, MOSTLY_MXFP4_MOE = 38,
};

struct Preset {
  const char* name;
  Ftype ftype;
  GgmlType default_type;
  const char* description;
};
const Preset* FindPreset(const std::string& name);  // case-insensitive; Q4_K = Q4_K_M etc.
const std::vector<Preset>& AllPresets();

struct TensorTypeOverride {
  std::string pattern;  // lower-cased regex, searched in the tensor name
  std::regex re;
  GgmlType type;
};
// Parses "PATTERN=TYPE" as llama-quantize's --tensor-type does.
Result<TensorTypeOverride> ParseTensorTypeOverride(const std::string& spec);

struct PlanOptions {
  bool allow_requantize = false;
  bool pure = false;
  bool leave_output_tensor = false;
  // Tensors in llama.cpp's loader order (blocks in number order) even where
  // the converter's order would apply: a layer-by-layer method produces them so.
  bool loader_order = false;
  // A Hugging Face source planned as llama-quantize run on its F32
  // conversion even for the converter's own types (F16, Q8_0, ...).
  bool like_llama_quantize = false;
  std::optional<GgmlType> output_tensor_type;
  std::optional<GgmlType> token_embedding_type;
  std::vector<TensorTypeOverride> tensor_types;
  const Imatrix* imatrix = nullptr;  // already filtered by include/exclude
  std::string imatrix_arg;           // the path as the user gave it (recorded in metadata)
};

// What will happen to one tensor: the recipe. The Plan is a list of these,
// the same for GGUF and for safetensors checkpoints.
struct TensorPlan {
  const ModelTensor* source = nullptr;
  std::string name;          // GGUF name (a checkpoint writes the source's name)
  std::vector<int64_t> ne;
  GgmlType type = GgmlType::F32;  // the ggml type; for a checkpoint tensor kept float, its F16/BF16
  // Set for a checkpoint linear quantized to the integer grid (type unused).
  std::optional<IntQuantSpec> int_scheme;
  Method method = Method::kConvert;
  uint64_t nbytes = 0;
  bool copy_bytes = false;  // source bytes go out unchanged
  std::shared_ptr<const std::vector<float>> importance;  // ne0 * ne2 values, or null
  std::string reason;       // why this target: "default", "rule", "manual", "fallback", "kept", "scheme", "--ignore ..."

  // Produced by the layer-by-layer run rather than encoded from the source.
  bool layerwise() const { return int_scheme.has_value() || method == Method::kGptq || method == Method::kAwq; }
  // "Q4_K", "BF16", or the integer scheme as "W4A16 g128" / "W4A16_ASYM g-1".
  std::string TargetName() const;
};

enum class PlanOutput { kGguf, kCheckpoint };

struct Plan {
  std::string preset;        // "Q4_K_M", or the scheme ("W4A16")
  PlanOutput output = PlanOutput::kGguf;
  IntLayout layout = IntLayout::kCompressedTensors;  // checkpoints only
  std::vector<std::string> ignored_modules;          // checkpoints: linears --ignore keeps float
  IntQuantSpec int_spec;                             // checkpoints: the quantized linears' grid
  GgmlType float_type = GgmlType::BF16;              // checkpoints: F16 or BF16 for float tensors
  // Checkpoints: the linears' groups may be permuted (GPTQ act-order without
  // static groups), so the layout stores g_idx for them.
  bool act_order_groups = false;
  GgufMetadata metadata;
  std::vector<TensorPlan> tensors;
  std::vector<std::string> warnings;
  uint64_t tensor_bytes() const;
  int64_t n_elements() const;
  double bits_per_weight() const;
  uint64_t FileBytes() const;  // GGUF: exact size of the file; checkpoint: bytes of the tensors
};

Result<Plan> BuildPlan(const Model& model, const Preset& preset, const PlanOptions& opts);

// GPTQ for a GGUF plan (-f TYPE --method gptq): every decoder-layer linear
// whose type GPTQ can fill (BlockGridOf) gets Method::kGptq; the types stay
// those of the plan. Returns how many recipes changed.
int UseGptqForLayerLinears(Plan* plan, const Model& model);

}  // namespace qforge
