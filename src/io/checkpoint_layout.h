// One object per GPU checkpoint layout (compressed-tensors pack-quantized,
// GPTQ, AWQ GEMM; spec: safetensors-quant-formats.md §3.4, §4, §5), owning
// every fact of its layout: the tensors a quantized linear becomes, their
// packing, reading them back in place, and the quantization_config that
// describes them in config.json. Adding a layout is one file in io/layouts/.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "codecs/int_group.h"
#include "io/int_layouts.h"
#include "io/safetensors.h"
#include "qforge/status.h"

namespace qforge {

// What a checkpoint's config.json says about its packed linears.
struct PackedFormat {
  IntLayout layout = IntLayout::kCompressedTensors;
  IntQuantSpec spec;
  bool zeros_minus_one = true;             // GPTQ v1 stores zero - 1
  std::string main_suffix;                 // the tensor that names a quantized module
  std::vector<std::string> part_suffixes;  // every tensor that belongs to one
};

// What a written checkpoint's quantization_config records.
struct ConfigFacts {
  IntQuantSpec spec;
  bool act_order = false, static_groups = false, true_sequential = true;
  float damp = 0.01f;
  std::vector<std::string> ignored_modules;  // linears kept float
  bool quantize_lm_head = false;
};

class CheckpointLayout {
 public:
  virtual ~CheckpointLayout() = default;
  virtual IntLayout id() const = 0;
  virtual const char* name() const = 0;  // as --layout spells it
  virtual const char* quant_method() const = 0;  // config.json's quantization_config.quant_method
  // The dtype scales are stored in, for a model whose floats are model_dtype.
  virtual ScaleDtype scale_dtype(StDtype model_dtype) const = 0;
  // Whether a [rows x cols] weight with this spec and these groups fits
  // (spec.Check is done by the caller).
  virtual Status Supports(int64_t rows, int64_t cols, const IntQuantSpec& spec, bool act_order_groups) const = 0;
  // The tensors "<prefix>.weight" becomes (bias excluded), in writing order.
  virtual std::vector<StTensorSpec> Tensors(const std::string& prefix, int64_t rows, int64_t cols, const IntQuantSpec& spec,
                                            bool act_order_groups, StDtype scale_dtype) const = 0;
  // Fills those tensors from q (rows in the checkpoint's order).
  virtual std::vector<StWriteTensor> Pack(const IntQuantized& q, std::vector<StTensorSpec> specs, bool act_order_groups) const = 0;

  // Reading back. The format from quantization_config (q: that object).
  virtual Result<PackedFormat> ParseConfig(const nlohmann::json& q, const std::string& where) const = 0;
  // [rows, cols] of a packed module from its tensors.
  virtual Result<std::pair<int64_t, int64_t>> ShapeOf(const SafetensorsModel& st, const std::string& module,
                                                      const PackedFormat& f, const std::string& what) const = 0;
  // Each present tensor's dtype and shape (g_idx entries are checked by the caller).
  virtual Status Validate(const PackedLinear& p, const std::string& what) const = 0;
  virtual const char* g_idx_suffix() const = 0;
  virtual uint32_t Code(const PackedLinear& p, int64_t row, int64_t col) const = 0;
  virtual int32_t Zero(const PackedLinear& p, int64_t row, int64_t group) const = 0;
  virtual float Scale(const PackedLinear& p, int64_t row, int64_t group) const = 0;

  // quantization_config for config.json, and whether the layout also
  // writes it as quantize_config.json (AutoGPTQ's convention).
  virtual nlohmann::ordered_json Config(const ConfigFacts& f) const = 0;
  virtual bool writes_quantize_config() const { return false; }
};

const CheckpointLayout& LayoutOf(IntLayout l);
// The layout of a quantization_config.quant_method, or null.
const CheckpointLayout* LayoutOfQuantMethod(const std::string& quant_method);

// Typed reads of quantization_config keys; where names the object in errors.
struct ConfigReader {
  std::string where;
  // The first of keys present and not null, as an integer; def when none is.
  Result<int64_t> Int(const nlohmann::json& o, std::initializer_list<const char*> keys, int64_t def) const;
  Result<bool> Bool(const nlohmann::json& o, const char* k, bool def) const;
};

}  // namespace qforge
