// The engine's matrix product against a weight tensor as the model stores
// it: y (T x N) = x (T x K) times rows [row0, row0 + N) of the tensor, each
// row K values. Quantized GGUF weights of the types engine/int_matmul.h
// covers multiply as ggml's integer kernels do, a tile of rows unpacked at a
// time; every other type (F16, BF16, F32, the other block formats, Hugging
// Face tensors) decodes a tile of rows to F32 and multiplies through BLAS.
// Either way no F32 copy of the whole weight is made, the work is spread
// over `threads` (tiles handed out as threads free up), and the result is
// bit-identical for every thread count: each output comes from one fixed
// tile computation.
#pragma once

#include <cstdint>

#include "codecs/ggml_types.h"
#include "model/model.h"
#include "qforge/status.h"

namespace qforge {

// llama.cpp multiplies a weight of type `weight` by activations rounded to
// its vec_dot partner (Q8_0 / Q8_K blocks, or F16 / BF16 for those weights).
// Rounds x (rows x cols, in place) the same way, so an F32 product equals
// the one ggml computes up to the order of additions.
void RoundActivationsLikeLlamaCpp(GgmlType weight, float* x, int64_t rows, int64_t cols);

// Whether rows of t multiply through the integer kernels (a quantized GGUF
// type they cover, stored as is, K a multiple of its block).
bool HasIntegerProduct(const ModelTensor& t);

// y (T x N, row-major) = x (T x K) times rows [row0, row0 + N) of t.
// llama_arithmetic: round activations as llama.cpp's kernels would for t's
// type (GGUF sources); otherwise x multiplies the decoded F32 rows as it is.
// Errors: t's rows are not K wide or fewer than row0 + N; a row fails to
// decode (the reader's message).
Status MultiplyRows(const ModelTensor& t, int64_t row0, int64_t N, const float* x, int64_t T, int64_t K, float* y,
                    int threads, bool llama_arithmetic);

}  // namespace qforge
