// 4-bit floating point blocks. MXFP4 (OCP microscaling: 32 E2M1 values with
// one E8M0 exponent, 17 bytes, ggml's nibble order). NVFP4 joins it later.
#pragma once

#include <cstdint>

namespace qforge {

void EncodeRowMXFP4(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowMXFP4(const void* in, float* y, int64_t n);

}  // namespace qforge
