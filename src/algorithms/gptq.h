// GPTQ (Frantar et al.): quantizes a linear layer's weight column by column,
// spreading each column's rounding error over the columns not yet quantized
// through the inverse Hessian of the layer's inputs, so the layer's output
// on the calibration data moves as little as possible.
#pragma once

#include <cstdint>
#include <vector>

#include "codecs/group_quantizer.h"
#include "codecs/int_group.h"
#include "qforge/status.h"

namespace qforge {

// H = (2/n) sum x x^T over the n calibration rows seen so far, kept as a
// running average so it never depends on how the rows were batched.
class Hessian {
 public:
  explicit Hessian(int64_t k) : k_(k), h_(static_cast<size_t>(k * k), 0.0f) {}
  // x: rows x k, row-major.
  void Add(const float* x, int64_t rows);
  int64_t dim() const { return k_; }
  int64_t samples() const { return n_; }
  // The full symmetric matrix (k x k).
  std::vector<float> Matrix() const;
  // The same, built in place and moved out; the Hessian is empty after.
  std::vector<float> TakeMatrix();

 private:
  int64_t k_;
  int64_t n_ = 0;
  std::vector<float> h_;  // upper triangle valid
};

struct GptqOptions {
  float damp = 0.01f;          // of the mean diagonal, added before the Cholesky
  int64_t block_size = 128;    // lazy batch of columns
  bool act_order = false;      // columns by decreasing Hessian diagonal
  bool static_groups = false;  // with act_order: group parameters from the original column ranges
};

struct GptqStats {
  float damp_used = 0.0f;  // the damping that made H positive definite
  int64_t dead_columns = 0;
  bool fell_back_to_rtn = false;
};

// GPTQ against any format: quantizes w [rows x cols] (row-major) column by
// column through `quantizer`, fitting each group when its first column is
// reached (or all groups up front with static groups, and for positional
// blocks under act-order), spreading each column's rounding error over the
// columns after it with the inverse Hessian h (k x k, consumed). False when
// h stays non-positive-definite after ten damping steps; the caller then
// falls back to round-to-nearest.
bool GptqSolve(const float* w, int64_t rows, int64_t cols, std::vector<float> h, const GptqOptions& opts,
               GroupQuantizer* quantizer, int threads, GptqStats* stats);

// Quantizes w [rows x cols] (row-major) given the Hessian of its input.
// h is consumed (k x k, symmetric). stats, if given, says what the solve
// needed (damping, dead columns, RTN fallback).
IntQuantized GptqQuantize(const float* w, int64_t rows, int64_t cols, std::vector<float> h, const IntQuantSpec& spec,
                          const GptqOptions& opts, int threads, GptqStats* stats);

// Cholesky of the inverse: for symmetric positive definite h (k x k), sets
// *upper to U with U^T U = h^-1 (row-major, zeros below the diagonal).
// False if h is not positive definite.
bool InverseCholeskyUpper(std::vector<float> h, int64_t k, std::vector<float>* upper);

}  // namespace qforge
