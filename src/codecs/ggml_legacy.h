// ggml's 32-element "legacy" block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.
// Each encoder takes one whole row: with importance weights (an imatrix row,
// one value per column) the 4/5-bit types run the weighted scale search,
// whose sigma^2 is a mean over the entire row.
#pragma once

#include <cstdint>

namespace qforge {

void EncodeRowQ4_0(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowQ4_0(const void* in, float* y, int64_t n);
void EncodeRowQ4_1(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowQ4_1(const void* in, float* y, int64_t n);
void EncodeRowQ5_0(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowQ5_0(const void* in, float* y, int64_t n);
void EncodeRowQ5_1(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowQ5_1(const void* in, float* y, int64_t n);
// Q8_0: fp16 scale d = max|x|/127, 32 int8 codes round(x/d) (half away from
// zero). The format ignores importance.
void EncodeRowQ8_0(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowQ8_0(const void* in, float* y, int64_t n);
// The plain scalar Q8_0 encoder: the reference the SIMD one is tested against.
void EncodeRowQ8_0Scalar(const float* x, void* out, int64_t n);

}  // namespace qforge
