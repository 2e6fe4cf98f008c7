// How an integer-quantized linear layer is stored by the GPU runtimes'
// checkpoint layouts (spec: safetensors-quant-formats.md §3.4, §4, §5):
// tensor names, dtypes, shapes and bit packing, and the inverse of each
// packing so readers and tests get back the exact integer grid.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "codecs/int_group.h"
#include "io/safetensors.h"
#include "qforge/status.h"

namespace qforge {

enum class IntLayout { kCompressedTensors, kGptq, kAwq };
const char* IntLayoutName(IntLayout l);
std::optional<IntLayout> IntLayoutFromName(const std::string& s);  // "compressed-tensors", "gptq", "awq"

// The dtype each layout keeps scales in: compressed-tensors the model's
// float dtype, GPTQ and AWQ F16.
ScaleDtype LayoutScaleDtype(IntLayout l, StDtype model_dtype);

// Whether the layout can store a [rows x cols] weight with this spec and
// these groups; the error says why not.
Status LayoutSupports(IntLayout l, int64_t rows, int64_t cols, const IntQuantSpec& spec, bool act_order_groups);

struct StTensorSpec {
  std::string name;
  StDtype dtype;
  std::vector<int64_t> shape;
  uint64_t nbytes() const;
};

// The tensors a quantized linear "<prefix>.weight" becomes (bias excluded).
// act_order_groups: g_idx is not column / group (compressed-tensors then
// stores weight_g_idx; GPTQ always does).
std::vector<StTensorSpec> LayoutTensors(IntLayout l, const std::string& prefix, int64_t rows, int64_t cols,
                                        const IntQuantSpec& spec, bool act_order_groups, StDtype model_dtype);

// Packs q (rows in the checkpoint's order) into those tensors; act_order_groups
// as given to LayoutTensors (the g_idx tensor is written when it says so, even
// if q's groups happen to be in column order).
std::vector<StWriteTensor> PackLayout(IntLayout l, const std::string& prefix, const IntQuantized& q, bool act_order_groups,
                                      StDtype model_dtype);
// The same, with act_order_groups from q's g_idx.
std::vector<StWriteTensor> PackLayout(IntLayout l, const std::string& prefix, const IntQuantized& q, StDtype model_dtype);

// A linear layer stored in one of the layouts, read in place from the
// checkpoint's mapped tensors: element access for
// tests and tools, and row decoding to float for the engine.
struct PackedLinear {
  IntLayout layout = IntLayout::kCompressedTensors;
  IntQuantSpec spec;
  int64_t rows = 0, cols = 0;
  // Copies of the checkpoint's tensor entries (they keep the mapping
  // alive); a part without data is absent.
  StTensor packed;  // weight_packed / qweight
  StTensor scales;
  StTensor zeros;   // absent for symmetric compressed-tensors
  StTensor g_idx;   // absent: column / group
  bool zeros_minus_one = true;       // GPTQ v1 stores zero - 1; v2 the zero itself

  // Checks every tensor's dtype and shape and every g_idx entry; what names
  // the layer in messages.
  Status Validate(const std::string& what) const;
  uint32_t Code(int64_t row, int64_t col) const;
  int32_t Zero(int64_t row, int64_t group) const;
  float Scale(int64_t row, int64_t group) const;
  int32_t Group(int64_t col) const;
  Status DecodeRows(int64_t row0, int64_t n, float* out) const;
  IntQuantized Unpack() const;  // after Validate
};

// Dense little-endian bitstream: value i at bits [bits*i, bits*i + bits).
std::vector<uint32_t> PackBits(const std::vector<uint32_t>& values, int bits);
uint32_t UnpackBits(const uint32_t* words, int64_t index, int bits);

}  // namespace qforge
