// Unquantized ggml element types as row codecs: F32, F16, BF16 (and F64 decode).
#pragma once

#include <cstdint>

namespace qforge {

void EncodeRowF32(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowF32(const void* in, float* y, int64_t n);
void EncodeRowF16(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowF16(const void* in, float* y, int64_t n);
void EncodeRowBF16(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowBF16(const void* in, float* y, int64_t n);
void DecodeRowF64(const void* in, float* y, int64_t n);

}  // namespace qforge
