// Fitting a format's group (or block) parameters, separate from quantizing
// values with them, so an algorithm that changes the values between the two
// (GPTQ's error feedback) can drive any format: the integer grid of the GPU
// layouts, ggml's blocks, and the formats to come.
#pragma once

#include <cstdint>

namespace qforge {

// Quantizes a weight W [rows x cols] (rows: output channels) column by
// column. Values are handed over as columns of W^T: a column is `rows`
// floats, one per output channel. Implementations are not thread-safe across
// calls but may use threads inside one.
class GroupQuantizer {
 public:
  virtual ~GroupQuantizer() = default;
  // Input columns per group: a group's parameters are fitted once, before
  // any of its columns is quantized.
  virtual int64_t group_len() const = 0;
  // Fits every row's parameters of group `group` from n_cols columns
  // (column j of the group at cols + j * rows).
  virtual void FitGroup(int64_t group, const float* cols, int64_t n_cols) = 0;
  // Quantizes input column `col` (x: rows values) with group `group`'s
  // fitted parameters, records the codes, and writes to q the values the
  // codes stand for (what a runtime will compute with).
  virtual void QuantizeColumn(int64_t col, int64_t group, const float* x, float* q) = 0;
  // True when group g is always columns [g * group_len, (g + 1) * group_len)
  // (a block format); false when any set of columns may form a group (the
  // integer grid, whose g_idx records the membership).
  virtual bool positional_groups() const { return false; }
};

}  // namespace qforge
