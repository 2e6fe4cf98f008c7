#include "codecs/ggml_types.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

#include "codecs/block_grid.h"
#include "codecs/fp4.h"
#include "codecs/ggml_float.h"
#include "codecs/ggml_iq.h"
#include "codecs/ggml_k.h"
#include "codecs/ggml_legacy.h"
#include "codecs/ggml_ternary.h"
#include "numeric/half.h"

namespace qforge {
namespace {

constexpr GgmlTypeTraits kInvalid{GgmlType::kCount, nullptr, 0, 0, false, nullptr, nullptr};

struct Table {
  std::array<GgmlTypeTraits, static_cast<size_t>(GgmlType::kCount)> rows;
  Table() {
    rows.fill(kInvalid);
    auto add = [&](GgmlTypeTraits t) { rows[static_cast<size_t>(t.type)] = t; };
    using T = GgmlType;
    add({T::F32, "f32", 1, 4, false, EncodeRowF32, DecodeRowF32});
    add({T::F16, "f16", 1, 2, false, EncodeRowF16, DecodeRowF16});
    add({T::BF16, "bf16", 1, 2, false, EncodeRowBF16, DecodeRowBF16});
    add({T::F64, "f64", 1, 8, false, nullptr, DecodeRowF64});
    add({T::I8, "i8", 1, 1, false, nullptr, nullptr});
    add({T::I16, "i16", 1, 2, false, nullptr, nullptr});
    add({T::I32, "i32", 1, 4, false, nullptr, nullptr});
    add({T::I64, "i64", 1, 8, false, nullptr, nullptr});
    add({T::Q4_0, "q4_0", 32, 18, true, EncodeRowQ4_0, DecodeRowQ4_0});
    add({T::Q4_1, "q4_1", 32, 20, true, EncodeRowQ4_1, DecodeRowQ4_1});
    add({T::Q5_0, "q5_0", 32, 22, true, EncodeRowQ5_0, DecodeRowQ5_0});
    add({T::Q5_1, "q5_1", 32, 24, true, EncodeRowQ5_1, DecodeRowQ5_1});
    add({T::Q8_0, "q8_0", 32, 34, true, EncodeRowQ8_0, DecodeRowQ8_0});
    add({T::Q8_1, "q8_1", 32, 36, true, nullptr, nullptr});
    add({T::Q2_K, "q2_K", 256, 84, true, EncodeRowQ2_K, DecodeRowQ2_K});
    add({T::Q3_K, "q3_K", 256, 110, true, EncodeRowQ3_K, DecodeRowQ3_K});
    add({T::Q4_K, "q4_K", 256, 144, true, EncodeRowQ4_K, DecodeRowQ4_K});
    add({T::Q5_K, "q5_K", 256, 176, true, EncodeRowQ5_K, DecodeRowQ5_K});
    add({T::Q6_K, "q6_K", 256, 210, true, EncodeRowQ6_K, DecodeRowQ6_K});
    add({T::Q8_K, "q8_K", 256, 292, true, nullptr, nullptr});
    add({T::IQ2_XXS, "iq2_xxs", 256, 66, true, nullptr, nullptr});
    add({T::IQ2_XS, "iq2_xs", 256, 74, true, nullptr, nullptr});
    add({T::IQ3_XXS, "iq3_xxs", 256, 98, true, nullptr, nullptr});
    add({T::IQ1_S, "iq1_s", 256, 50, true, nullptr, nullptr});
    add({T::IQ4_NL, "iq4_nl", 32, 18, true, EncodeRowIQ4_NL, DecodeRowIQ4_NL});
    add({T::IQ3_S, "iq3_s", 256, 110, true, nullptr, nullptr});
    add({T::IQ2_S, "iq2_s", 256, 82, true, nullptr, nullptr});
    add({T::IQ4_XS, "iq4_xs", 256, 136, true, EncodeRowIQ4_XS, DecodeRowIQ4_XS});
    add({T::IQ1_M, "iq1_m", 256, 56, true, nullptr, nullptr});
    add({T::TQ1_0, "tq1_0", 256, 54, true, EncodeRowTQ1_0, DecodeRowTQ1_0});
    add({T::TQ2_0, "tq2_0", 256, 66, true, EncodeRowTQ2_0, DecodeRowTQ2_0});
    add({T::MXFP4, "mxfp4", 32, 17, true, EncodeRowMXFP4, DecodeRowMXFP4});
    add({T::NVFP4, "nvfp4", 64, 36, true, nullptr, nullptr});
    add({T::Q1_0, "q1_0", 128, 18, true, nullptr, nullptr});
    add({T::Q2_0, "q2_0", 64, 18, true, nullptr, nullptr});
  }
};

const Table& TheTable() {
  static const Table t;
  return t;
}

}  // namespace

const GgmlTypeTraits* TraitsOf(int32_t id) {
  if (id < 0 || id >= static_cast<int32_t>(GgmlType::kCount)) return nullptr;
  const GgmlTypeTraits& t = TheTable().rows[static_cast<size_t>(id)];
  return t.block_elems == 0 ? nullptr : &t;
}

const BlockGrid* BlockGridOf(GgmlType t) {
  switch (t) {
    case GgmlType::Q8_0: return &kGridQ8_0;
    case GgmlType::Q4_K: return &kGridQ4_K;
    case GgmlType::Q5_K: return &kGridQ5_K;
    case GgmlType::Q6_K: return &kGridQ6_K;
    default: return nullptr;
  }
}

const GgmlTypeTraits& TraitsOf(GgmlType t) {
  return TheTable().rows[static_cast<size_t>(t)];
}

std::optional<GgmlType> GgmlTypeFromName(std::string_view name) {
  for (const auto& row : TheTable().rows) {
    if (row.block_elems == 0) continue;
    std::string_view n(row.name);
    if (n.size() != name.size()) continue;
    bool same = std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
      return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
    });
    if (same) return row.type;
  }
  return std::nullopt;
}

namespace {

// Byte offsets of the fp16 fields in one block of a type (ggml's block
// structs); count 0 for types without them.
struct HalfFields {
  int count = 0;
  int offset[2] = {0, 0};
};

HalfFields HalfFieldsOf(GgmlType t) {
  using T = GgmlType;
  switch (t) {
    case T::F16: case T::BF16: case T::Q4_0: case T::Q5_0: case T::Q8_0: case T::IQ4_NL: case T::IQ4_XS:
    case T::IQ2_XXS: case T::IQ2_XS: case T::IQ2_S: case T::IQ3_XXS: case T::IQ3_S: case T::IQ1_S:
      return {1, {0, 0}};
    case T::Q4_1: case T::Q5_1: case T::Q4_K: case T::Q5_K: return {2, {0, 2}};
    case T::Q2_K: return {2, {80, 82}};      // scales[16] qs[64] d dmin
    case T::Q3_K: return {1, {108, 0}};      // hmask[32] qs[64] scales[12] d
    case T::Q6_K: return {1, {208, 0}};      // ql[128] qh[64] scales[16] d
    case T::TQ1_0: return {1, {52, 0}};      // qs[48] qh[4] d
    case T::TQ2_0: return {1, {64, 0}};      // qs[64] d
    default: return {};
  }
}

}  // namespace

int64_t FirstNonFiniteBlock(GgmlType t, const void* row, int64_t n) {
  const HalfFields f = HalfFieldsOf(t);
  if (f.count == 0) return -1;
  const GgmlTypeTraits& tr = TraitsOf(t);
  const bool bf16 = t == GgmlType::BF16;
  const auto* p = static_cast<const uint8_t*>(row);
  const int64_t blocks = n / tr.block_elems;
  for (int64_t b = 0; b < blocks; ++b) {
    for (int k = 0; k < f.count; ++k) {
      uint16_t h;
      std::memcpy(&h, p + b * tr.block_bytes + f.offset[k], 2);
      if (!(bf16 ? Bf16IsFinite(h) : HalfIsFinite(h))) return b * tr.block_elems;
    }
  }
  return -1;
}

std::string GgmlTypeName(GgmlType t) {
  const GgmlTypeTraits& tr = TraitsOf(t);
  if (tr.name == nullptr) return "type" + std::to_string(static_cast<int>(t));
  std::string s(tr.name);
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace qforge
