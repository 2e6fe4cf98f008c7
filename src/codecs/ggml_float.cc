#include "codecs/ggml_float.h"

#include <cstring>

#include "numeric/half.h"

namespace qforge {

void EncodeRowF32(const float* x, const float*, void* out, int64_t n) {
  std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float));
}

void DecodeRowF32(const void* in, float* y, int64_t n) {
  std::memcpy(y, in, static_cast<size_t>(n) * sizeof(float));
}

void EncodeRowF16(const float* x, const float*, void* out, int64_t n) {
  uint16_t h;
  auto* o = static_cast<uint8_t*>(out);
  for (int64_t i = 0; i < n; ++i) {
    h = FloatToHalf(x[i]);
    std::memcpy(o + 2 * i, &h, 2);
  }
}

void DecodeRowF16(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  uint16_t h;
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(&h, p + 2 * i, 2);
    y[i] = HalfToFloat(h);
  }
}

void EncodeRowBF16(const float* x, const float*, void* out, int64_t n) {
  uint16_t h;
  auto* o = static_cast<uint8_t*>(out);
  for (int64_t i = 0; i < n; ++i) {
    h = FloatToBf16(x[i]);
    std::memcpy(o + 2 * i, &h, 2);
  }
}

void DecodeRowBF16(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  uint16_t h;
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(&h, p + 2 * i, 2);
    y[i] = Bf16ToFloat(h);
  }
}

void DecodeRowF64(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  double d;
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(&d, p + 8 * i, 8);
    y[i] = static_cast<float>(d);
  }
}

}  // namespace qforge
