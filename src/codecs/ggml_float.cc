#include "codecs/ggml_float.h"

#include <cstring>

#include "codecs/simd_kernels.h"
#include "numeric/half.h"

namespace qforge {
namespace {

// Scalar paths for rows that are not 2-byte aligned; F16 and BF16 differ
// only in the scalar conversion.
template <uint16_t (*kToBits)(float)>
void Encode16(const float* x, void* out, int64_t n) {
  auto* o = static_cast<uint8_t*>(out);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = kToBits(x[i]);
    std::memcpy(o + 2 * i, &h, 2);
  }
}

template <float (*kFromBits)(uint16_t)>
void Decode16(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    y[i] = kFromBits(h);
  }
}

bool Aligned2(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 1) == 0; }

}  // namespace

void EncodeRowF32(const float* x, const float*, void* out, int64_t n) {
  std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float));
}

void DecodeRowF32(const void* in, float* y, int64_t n) {
  std::memcpy(y, in, static_cast<size_t>(n) * sizeof(float));
}

void EncodeRowF16(const float* x, const float*, void* out, int64_t n) {
  if (Aligned2(out)) simd::EncodeF16(x, static_cast<uint16_t*>(out), n);
  else Encode16<FloatToHalf>(x, out, n);
}

void DecodeRowF16(const void* in, float* y, int64_t n) {
  if (Aligned2(in)) simd::DecodeF16(static_cast<const uint16_t*>(in), y, n);
  else Decode16<HalfToFloat>(in, y, n);
}

void EncodeRowBF16(const float* x, const float*, void* out, int64_t n) {
  if (Aligned2(out)) simd::EncodeBF16(x, static_cast<uint16_t*>(out), n);
  else Encode16<FloatToBf16>(x, out, n);
}

void DecodeRowBF16(const void* in, float* y, int64_t n) { Decode16<Bf16ToFloat>(in, y, n); }

void DecodeRowF64(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t i = 0; i < n; ++i) {
    double d;
    std::memcpy(&d, p + 8 * i, 8);
    y[i] = static_cast<float>(d);
  }
}

}  // namespace qforge
