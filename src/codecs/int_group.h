// Integer weight quantization of a linear layer's [N, K] matrix in groups
// along K: the grid every GPU int4/int8 layout (compressed-tensors, GPTQ,
// AWQ) stores. One result type serves RTN, GPTQ and AWQ, and every sink
// packs it; codes are unsigned (0 .. 2^bits-1) with an unsigned zero point.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "codecs/group_quantizer.h"
#include "qforge/status.h"

namespace qforge {

// The dtype a layout stores scales in. Codes are chosen against the scale
// after rounding to it, so dequantizing on load gives the values the
// quantizer chose.
enum class ScaleDtype { kF32, kF16, kBF16 };
float RoundToScaleDtype(float v, ScaleDtype d);
const char* ScaleDtypeName(ScaleDtype d);

struct IntQuantSpec {
  int bits = 4;
  int64_t group_size = 128;  // -1: one group per row (per channel)
  bool symmetric = true;
  ScaleDtype scale_dtype = ScaleDtype::kBF16;
  // GPTQ's v1 layout stores zero - 1, so an asymmetric zero of 0 cannot be
  // written; such groups get a slightly larger scale and zero 1 instead.
  bool zero_at_least_one = false;

  int maxq() const { return (1 << bits) - 1; }
  int64_t GroupLen(int64_t cols) const { return group_size > 0 ? group_size : cols; }
  int64_t Groups(int64_t cols) const { return (cols + GroupLen(cols) - 1) / GroupLen(cols); }
  // Whether cols input columns can be quantized with this spec; the error
  // says why not (bits 2, 3, 4 or 8; group size -1 or a divisor of cols).
  Status Check(int64_t cols) const;
};

struct GroupParams {
  float scale = 1.0f;  // already rounded to the scale dtype
  int zero = 0;        // unsigned zero point
};

// Scale and zero point of one group of values (min/max observer; zero is
// always representable). The n values are read with the given stride.
GroupParams FindGroupParams(const float* w, int64_t n, int64_t stride, const IntQuantSpec& spec);

inline int QuantizeCode(float w, const GroupParams& p, int maxq);
inline float DequantizeCode(int q, const GroupParams& p) { return p.scale * static_cast<float>(q - p.zero); }

struct IntQuantized {
  IntQuantSpec spec;
  int64_t rows = 0, cols = 0, n_groups = 0;
  std::vector<uint8_t> codes;   // rows x cols, unsigned codes
  std::vector<float> scales;    // rows x n_groups
  std::vector<int32_t> zeros;   // rows x n_groups, unsigned zero points
  std::vector<int32_t> g_idx;   // cols: the group of each input column

  // Sized for rows x cols under spec, groups in column order (g_idx = k / group).
  static IntQuantized Allocate(const IntQuantSpec& spec, int64_t rows, int64_t cols);

  GroupParams Params(int64_t row, int64_t group) const {
    const size_t i = static_cast<size_t>(row * n_groups + group);
    return {scales[i], zeros[i]};
  }
  // True when g_idx is column / group length (no act-order permutation).
  bool MonotonicGroups() const;
  void DequantizeRows(int64_t row0, int64_t n, float* out) const;
  // Reorders rows: new row i is old row from[i].
  void PermuteRows(const std::vector<int64_t>& from);
};

// The integer grid as a GroupQuantizer: groups of spec.group_size input
// columns (the whole row when -1), min/max parameters fitted per row.
// Columns may be quantized in any order (act-order): g_idx records each
// column's group.
class IntGroupQuantizer : public GroupQuantizer {
 public:
  IntGroupQuantizer(const IntQuantSpec& spec, int64_t rows, int64_t cols, int threads)
      : q_(IntQuantized::Allocate(spec, rows, cols)), threads_(threads) {}
  int64_t group_len() const override { return q_.spec.GroupLen(q_.cols); }
  void FitGroup(int64_t group, const float* cols, int64_t n_cols) override;
  void QuantizeColumn(int64_t col, int64_t group, const float* x, float* q) override;
  // The result; the quantizer is empty afterwards.
  IntQuantized Take() { return std::move(q_); }

 private:
  IntQuantized q_;
  int threads_;
};

// Round-to-nearest quantization of w [rows x cols], groups along cols.
IntQuantized QuantizeRtn(const float* w, int64_t rows, int64_t cols, const IntQuantSpec& spec);

int QuantizeCode(float w, const GroupParams& p, int maxq) {
  const float t = w / p.scale;
  // nearbyint rounds half to even under the default rounding mode.
  const float q = static_cast<float>(__builtin_nearbyintf(t)) + static_cast<float>(p.zero);
  return q < 0.0f ? 0 : q > static_cast<float>(maxq) ? maxq : static_cast<int>(q);
}

}  // namespace qforge
