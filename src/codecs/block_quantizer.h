// ggml blocks as a GroupQuantizer: a group is one block (32 values for
// Q8_0, a 256-value super-block for the k-quants). Fitting a block runs the
// type's own encoder on the block's current values (with importance, when
// given), which fixes its scales; the codes are then chosen column by column
// on that grid and written back, so the output is a stock block of the type.
#pragma once

#include <cstdint>
#include <vector>

#include "codecs/block_grid.h"
#include "codecs/ggml_types.h"
#include "codecs/group_quantizer.h"

namespace qforge {

class GgmlBlockQuantizer : public GroupQuantizer {
 public:
  // type must have a BlockGrid (BlockGridOf); cols a multiple of its block.
  // importance: cols values (the imatrix or the Hessian's diagonal), or
  // empty for the encoder's unweighted search.
  GgmlBlockQuantizer(GgmlType type, int64_t rows, int64_t cols, std::vector<float> importance, int threads);
  int64_t group_len() const override { return block_; }
  void FitGroup(int64_t group, const float* cols, int64_t n_cols) override;
  void QuantizeColumn(int64_t col, int64_t group, const float* x, float* q) override;
  bool positional_groups() const override { return true; }
  // rows x RowBytes(type, cols) bytes with the chosen codes; the quantizer
  // is empty afterwards.
  std::vector<uint8_t> Take();

 private:
  GgmlType type_;
  const GgmlTypeTraits& traits_;
  const BlockGrid& grid_;
  int64_t rows_, cols_, block_, subs_per_row_;
  size_t row_bytes_;
  std::vector<float> importance_;
  int threads_;
  std::vector<uint8_t> bytes_;          // the encoded rows
  std::vector<float> scale_, offset_;   // rows x subs_per_row_
  std::vector<int8_t> codes_;           // rows x cols
};

}  // namespace qforge
