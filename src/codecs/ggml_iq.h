// ggml's non-linear i-quants. IQ4_NL (18 bytes per 32) and IQ4_XS (136 bytes
// per 256) share the 16-entry level table and one scale search. The grid
// types (IQ1/IQ2/IQ3) join this file later.
#pragma once

#include <cstdint>

namespace qforge {

void EncodeRowIQ4_NL(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowIQ4_NL(const void* in, float* y, int64_t n);
void EncodeRowIQ4_XS(const float* x, const float* importance, void* out, int64_t n);
void DecodeRowIQ4_XS(const void* in, float* y, int64_t n);

}  // namespace qforge
