// Matrix products through BLAS, parallelised by qforge's own threads.
// OpenBLAS is kept single-threaded: its idle worker threads spin in
// sched_yield and, beside qforge's threads on a small machine, took a quarter
// of the CPU. The output columns are cut into panels whose width depends on
// N alone, never on the thread count: OpenBLAS's kernels (the AVX-512 ones
// among them) sum an element in an order that depends on the width of the
// call, so only identical calls give 1 and 2 threads the same bits.
#pragma once

#include <cstdint>

namespace qforge {

// The width of GemmNT's panels: the columns of y one BLAS call computes.
// Products that decode their weights a panel at a time (engine/matmul.h)
// use the same width, so they give GemmNT's bits.
constexpr int64_t kGemmPanel = 256;

// Makes BLAS single-threaded for the process (idempotent).
void UseSingleThreadedBlas();

// y (T x N) = alpha * x (T x K) * w^T (w is N x K, row-major) + beta * y.
// Bit-identical for every `threads` >= 1.
void GemmNT(const float* x, int64_t T, int64_t K, const float* w, int64_t N, float* y, int threads, float alpha = 1.0f,
            float beta = 0.0f);

}  // namespace qforge
