// ggml's k-quants: super-blocks of 256 with quantized sub-block scales.
// Q2_K (84 bytes), Q3_K (110), Q4_K (144), Q5_K (176), Q6_K (210). With
// importance weights each runs its imatrix search; without, the reference one.
#pragma once

#include <cstdint>

namespace qforge {

void EncodeRowQ2_K(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowQ2_K(const void* in, float* y, int64_t n);
void EncodeRowQ3_K(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowQ3_K(const void* in, float* y, int64_t n);
void EncodeRowQ4_K(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowQ4_K(const void* in, float* y, int64_t n);
void EncodeRowQ5_K(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowQ5_K(const void* in, float* y, int64_t n);
void EncodeRowQ6_K(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowQ6_K(const void* in, float* y, int64_t n);

}  // namespace qforge
