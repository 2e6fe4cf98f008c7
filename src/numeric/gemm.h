// Matrix products through BLAS, parallelised by qforge's own threads.
// OpenBLAS is kept single-threaded: its idle worker threads spin in
// sched_yield and, beside qforge's threads on a small machine, took a quarter
// of the CPU. Splitting the output columns keeps each element's sum in the
// same order whatever the thread count.
#pragma once

#include <cstdint>

namespace qforge {

// Makes BLAS single-threaded for the process (idempotent).
void UseSingleThreadedBlas();

// y (T x N) = alpha * x (T x K) * w^T (w is N x K, row-major) + beta * y.
void GemmNT(const float* x, int64_t T, int64_t K, const float* w, int64_t N, float* y, int threads, float alpha = 1.0f,
            float beta = 0.0f);

}  // namespace qforge
