// ggml's 32-element "legacy" block formats. Q8_0 now; Q4_0, Q4_1, Q5_0 and
// Q5_1 join it here.
#pragma once

#include <cstdint>

namespace qforge {

// Q8_0: 34 bytes per 32 values: fp16 scale d = max|x|/127, then 32 int8
// codes round(x/d) (half away from zero). Importance is ignored by the format.
void EncodeRowQ8_0(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowQ8_0(const void* in, float* y, int64_t n);

}  // namespace qforge
