#include "codecs/block_quantizer.h"

#include <algorithm>

#include "base/parallel.h"
#include "numeric/rounding.h"

namespace qforge {

GgmlBlockQuantizer::GgmlBlockQuantizer(GgmlType type, int64_t rows, int64_t cols, std::vector<float> importance,
                                       int threads)
    : type_(type),
      traits_(TraitsOf(type)),
      grid_(*BlockGridOf(type)),
      rows_(rows),
      cols_(cols),
      block_(traits_.block_elems),
      subs_per_row_(cols / grid_.sub_elems),
      row_bytes_(RowBytes(type, cols)),
      importance_(std::move(importance)),
      threads_(threads),
      bytes_(static_cast<size_t>(rows) * row_bytes_),
      scale_(static_cast<size_t>(rows * subs_per_row_)),
      offset_(scale_.size()),
      codes_(static_cast<size_t>(rows * cols)) {}

void GgmlBlockQuantizer::FitGroup(int64_t group, const float* cols, int64_t n_cols) {
  const int64_t N = rows_, B = block_;
  const int64_t subs = B / grid_.sub_elems;
  const float* imp = importance_.empty() ? nullptr : importance_.data() + group * B;
  ParallelFor(N, N * n_cols >= (1 << 16) ? threads_ : 1, [&](int64_t b, int64_t e) {
    std::vector<float> x(static_cast<size_t>(B));
    for (int64_t n = b; n < e; ++n) {
      for (int64_t j = 0; j < B; ++j) x[static_cast<size_t>(j)] = cols[j * N + n];
      uint8_t* blk = bytes_.data() + static_cast<size_t>(n) * row_bytes_ + static_cast<size_t>(group) * traits_.block_bytes;
      traits_.encode(x.data(), imp, blk, B);
      const size_t s0 = static_cast<size_t>(n * subs_per_row_ + group * subs);
      grid_.read(blk, scale_.data() + s0, offset_.data() + s0);
    }
  });
}

void GgmlBlockQuantizer::QuantizeColumn(int64_t col, int64_t /*group*/, const float* x, float* q) {
  const int64_t sub = col / grid_.sub_elems;
  const float lo = static_cast<float>(grid_.code_min), hi = static_cast<float>(grid_.code_max);
  for (int64_t n = 0; n < rows_; ++n) {
    const size_t s = static_cast<size_t>(n * subs_per_row_ + sub);
    const float scale = scale_[s], offset = offset_[s];
    int code = 0;
    if (scale != 0.0f) {
      // Clamped before rounding so NearestInt stays in its valid range.
      code = NearestInt(std::clamp((x[n] - offset) / scale, lo, hi));
    } else {
      code = std::clamp(0, grid_.code_min, grid_.code_max);
    }
    codes_[static_cast<size_t>(n * cols_ + col)] = static_cast<int8_t>(code);
    q[n] = scale * static_cast<float>(code) + offset;
  }
}

std::vector<uint8_t> GgmlBlockQuantizer::Take() {
  const int64_t blocks = cols_ / block_;
  ParallelFor(rows_, threads_, [&](int64_t b, int64_t e) {
    std::vector<int32_t> c(static_cast<size_t>(block_));
    for (int64_t n = b; n < e; ++n) {
      for (int64_t k = 0; k < blocks; ++k) {
        const int8_t* src = codes_.data() + n * cols_ + k * block_;
        std::copy(src, src + block_, c.begin());
        grid_.write_codes(c.data(), bytes_.data() + static_cast<size_t>(n) * row_bytes_ + static_cast<size_t>(k) * traits_.block_bytes);
      }
    }
  });
  codes_.clear();
  scale_.clear();
  offset_.clear();
  return std::move(bytes_);
}

}  // namespace qforge
