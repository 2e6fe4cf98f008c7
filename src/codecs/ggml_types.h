// One table row per ggml tensor type: id, name, block geometry and, where
// qforge implements it, the row codec. Adding a format touches one place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace qforge {

enum class GgmlType : int32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40, Q1_0 = 41, Q2_0 = 42,
  kCount = 43,
};

// Encodes n floats (n a multiple of the block size) into blocks. importance may
// be null; when given it has n entries (one per column of the row).
using EncodeRowFn = void (*)(const float* x, const float* importance, void* out, int64_t n);
using DecodeRowFn = void (*)(const void* in, float* y, int64_t n);

struct GgmlTypeTraits {
  GgmlType type;
  const char* name;   // ggml_type_name spelling, e.g. "q8_0"
  int block_elems;    // 0 for ids that no longer exist
  int block_bytes;
  bool quantized;
  EncodeRowFn encode;  // null where qforge has no encoder yet
  DecodeRowFn decode;  // null where qforge has no decoder yet
};

// Traits of a type id, or null for an id that is not a valid ggml type.
const GgmlTypeTraits* TraitsOf(int32_t id);
const GgmlTypeTraits& TraitsOf(GgmlType t);

// Case-insensitive lookup by ggml name ("Q8_0", "q8_0", "bf16").
std::optional<GgmlType> GgmlTypeFromName(std::string_view name);
std::string GgmlTypeName(GgmlType t);  // upper case, e.g. "Q8_0"

// Index of the first element of an encoded row whose block holds a
// non-finite 16-bit float: the fp16 scale and minimum fields of the block
// formats, or the element itself for F16 and BF16. -1 when every such field
// is finite. This is the check ggml applies to quantized data before it is
// written or loaded; a scale that overflowed to Inf makes every value of its
// block Inf or NaN at inference. n is the row's element count (a multiple of
// the block size); types without 16-bit fields always give -1.
int64_t FirstNonFiniteBlock(GgmlType t, const void* row, int64_t n);

// Bytes of a row of ne0 elements; ne0 must be a multiple of the block size.
inline size_t RowBytes(GgmlType t, int64_t ne0) {
  const GgmlTypeTraits& tr = TraitsOf(t);
  return static_cast<size_t>(ne0 / tr.block_elems) * static_cast<size_t>(tr.block_bytes);
}

}  // namespace qforge
