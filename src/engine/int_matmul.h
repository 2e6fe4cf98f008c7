// Integer matrix products on quantized weights as stored, the way ggml's CPU
// backend computes them: the activations are quantized per row to the weight
// type's "vec_dot" partner (Q8_0 for the 32-element formats, Q8_K for the
// k-quants), each block's integer dot product is exact, and the block scales
// multiply it in F32. Weight rows are unpacked a tile at a time into int16
// levels (sub-block scales folded in, as the k-quant kernels fold them into
// their integer sums), so no F32 copy of a weight ever exists.
//
// The arithmetic follows ggml-cpu's ggml_vec_dot_<type>_q8_<0|K> (llama.cpp
// 34af94cd): for each block, d_w * d_a * sum_i(q_w[i] * q_a[i]), and for
// Q4_K/Q5_K minus dmin_w * d_a * sum_j(m_j * bsum_j) over the eight 32-element
// sub-blocks. Only the order of the F32 additions across blocks differs.
// Kernels are Highway SIMD with runtime dispatch (int16 multiply-add pairs).
#pragma once

#include <cstddef>
#include <cstdint>

#include "codecs/ggml_types.h"

namespace qforge::intmm {

// The partner type the activations are quantized to.
enum class ActType { kQ8_0, kQ8_K };

// How a weight type's rows unpack: groups of `group` values share one F32
// scale; k-quants with mins add a per-group dmin and eight 6-bit mins.
struct WeightFormat {
  int group = 0;       // 32 (Q8_0, Q4_0, Q5_0) or 256 (Q4_K, Q5_K, Q6_K)
  bool mins = false;   // Q4_K, Q5_K
  ActType act = ActType::kQ8_0;
};

// Mins (per weight group) and activation sums of 32 (per activation group)
// are stored in slots this many int16 wide, the first 8 used, the rest zero,
// so one SIMD multiply-add of any width up to 512 bits covers them.
constexpr int kMinSlot = 32;

// Whether rows of `t` multiply through the integer kernels; *f gets the layout.
bool IntegerFormatOf(GgmlType t, WeightFormat* f);

// Unpacks R rows (row_bytes apart, K values each; K a multiple of f.group)
// of type t: qw (R x K int16 levels), dw (R x K/group scales) and, for
// formats with mins, dm (R x K/256 dmin) and mw (R x K/256 x kMinSlot mins).
void UnpackRows(GgmlType t, const uint8_t* rows, size_t row_bytes, int64_t R, int64_t K, int16_t* qw, float* dw,
                float* dm, int16_t* mw);

// Quantizes T rows of K activations (K a multiple of the group: 32 for Q8_0,
// 256 for Q8_K) as ggml's quantize_row_q8_0 / quantize_row_q8_K round them:
// qa (T x K int16 levels in -127..127), da (T x K/group scales: the F16-
// rounded scale for Q8_0, the F32 one for Q8_K) and, for Q8_K, sa (T x K/256
// x kMinSlot sums of each 32 levels). sa may be null for Q8_0.
void QuantizeActivations(ActType a, const float* x, int64_t T, int64_t K, int16_t* qa, float* da, int16_t* sa);

// One tile of the product, accumulated: for rows r < R and tokens t < T,
//   y[t * ldy + r] += sum over groups g in [g0, g1) of
//       dw[r][g] * da[t][g] * (qw[r][g*G ...] . qa[t][g*G ...])
//     - dm[r][g'] * da[t][g'] * (mw[r][g'] . sa[t][g'])      (formats with mins)
// where G = f.group and rows of qw/qa are K apart (the unpacked layouts
// above). g0, g1 are group indices; with mins G is 256 so g' = g.
void DotTile(const WeightFormat& f, int64_t K, int64_t g0, int64_t g1, const int16_t* qw, const float* dw,
             const float* dm, const int16_t* mw, int64_t R, const int16_t* qa, const float* da, const int16_t* sa,
             int64_t T, float* y, int64_t ldy);

// The VNNI layout, used where HasVnni() (the dispatched target is AVX-512
// with VNNI): vpdpbusd multiplies 64 unsigned activation bytes (level + 128)
// by 64 signed weight levels, four products per int32 lane.
bool HasVnni();

// Unpacks R rows of type t (K a multiple of 64) into qw (R x K int8 levels,
// sub-block scales not folded), ws (R x K/4: the F32 scale of each lane of
// four values: d * sub-block scale, or the block's d), init (R x K/4: -128 *
// the lane's level sum, undoing the +128 of the activations) and, for
// formats with mins, mins (R x K/32: dmin * m of each 32-value sub-block).
void UnpackRowsI8(GgmlType t, const uint8_t* rows, size_t row_bytes, int64_t R, int64_t K, int8_t* qw, float* ws,
                  int32_t* init, float* mins);

// Activations for the VNNI layout, quantized as QuantizeActivations does:
// au (T x K, level + 128); as, the scale: per lane of four (T x K/4) for
// Q8_0, per 256 (T x K/256) for Q8_K; bs (Q8_K only, T x K/32): scale times
// each 32 levels' sum, for the mins.
void QuantizeActivationsU8(ActType a, const float* x, int64_t T, int64_t K, uint8_t* au, float* as, float* bs);

// DotTile for the VNNI layout over 64-value chunks [c0, c1) (aligned to the
// weight's groups): y[t * ldy + r] += the rows' and tokens' dot products.
void DotTileI8(const WeightFormat& f, int64_t K, int64_t c0, int64_t c1, const int8_t* qw, const float* ws,
               const int32_t* init, const float* mw, int64_t R, const uint8_t* au, const float* as, const float* bs,
               int64_t T, float* y, int64_t ldy);

}  // namespace qforge::intmm
