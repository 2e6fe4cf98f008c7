// Ternary formats: every value becomes -1, 0 or +1 times one scale per 256.
// TQ1_0 packs five trits a byte (54 bytes), TQ2_0 two bits a value (66 bytes).
#pragma once

#include <cstdint>

namespace qforge {

void EncodeRowTQ1_0(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowTQ1_0(const void* in, float* y, int64_t n);
void EncodeRowTQ2_0(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowTQ2_0(const void* in, float* y, int64_t n);

}  // namespace qforge
