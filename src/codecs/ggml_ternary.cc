#include "codecs/ggml_ternary.h"

#include <algorithm>
#include <cmath>

#include "codecs/block_util.h"

namespace qforge {
namespace {

constexpr int QK = 256;

float AbsMax(const float* x, int n) {
  float amax = 0.0f;
  for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  return amax;
}

inline int Trit(float v, float id) { return static_cast<int>(std::lroundf(v * id)) + 1; }

// Base-3 digits, first element most significant, scaled to a byte so that
// digit k can be read back with a multiply and a shift.
inline uint8_t PackTrits(int v) { return static_cast<uint8_t>((v * 256 + 242) / 243); }

inline int DigitOf(uint8_t b, int k) {
  static constexpr int kPow3[5] = {1, 3, 9, 27, 81};
  const uint8_t shifted = static_cast<uint8_t>(b * kPow3[k]);
  return (static_cast<uint16_t>(shifted) * 3) >> 8;
}

}  // namespace

void EncodeRowTQ1_0(const float* x, const float*, void* out, int64_t n) {
  auto* o = static_cast<uint8_t*>(out);
  for (int64_t b = 0; b < n / QK; ++b, x += QK, o += 54) {
    const float d = AbsMax(x, QK);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int m = 0; m < 32; ++m) {
      int v = 0;
      for (int k = 0; k < 5; ++k) v = v * 3 + Trit(x[m + 32 * k], id);
      o[m] = PackTrits(v);
    }
    for (int m = 0; m < 16; ++m) {
      int v = 0;
      for (int k = 0; k < 5; ++k) v = v * 3 + Trit(x[160 + m + 16 * k], id);
      o[32 + m] = PackTrits(v);
    }
    for (int j = 0; j < 4; ++j) {
      int v = 0;
      for (int k = 0; k < 4; ++k) v = v * 3 + Trit(x[240 + j + 4 * k], id);
      o[48 + j] = PackTrits(v * 3);
    }
    PutHalf(o + 52, d);
  }
}

void DecodeRowTQ1_0(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t b = 0; b < n / QK; ++b, p += 54, y += QK) {
    const float d = GetHalf(p + 52);
    for (int m = 0; m < 32; ++m)
      for (int k = 0; k < 5; ++k) y[m + 32 * k] = static_cast<float>(DigitOf(p[m], k) - 1) * d;
    for (int m = 0; m < 16; ++m)
      for (int k = 0; k < 5; ++k) y[160 + m + 16 * k] = static_cast<float>(DigitOf(p[32 + m], k) - 1) * d;
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 4; ++k) y[240 + j + 4 * k] = static_cast<float>(DigitOf(p[48 + j], k) - 1) * d;
  }
}

void EncodeRowTQ2_0(const float* x, const float*, void* out, int64_t n) {
  auto* o = static_cast<uint8_t*>(out);
  for (int64_t b = 0; b < n / QK; ++b, x += QK, o += 66) {
    const float d = AbsMax(x, QK);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int g = 0; g < 2; ++g) {
      for (int m = 0; m < 32; ++m) {
        int q = 0;
        for (int k = 0; k < 4; ++k) q |= (Trit(x[128 * g + 32 * k + m], id) & 3) << (2 * k);
        o[32 * g + m] = static_cast<uint8_t>(q);
      }
    }
    PutHalf(o + 64, d);
  }
}

void DecodeRowTQ2_0(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t b = 0; b < n / QK; ++b, p += 66, y += QK) {
    const float d = GetHalf(p + 64);
    for (int g = 0; g < 2; ++g)
      for (int k = 0; k < 4; ++k)
        for (int m = 0; m < 32; ++m)
          y[128 * g + 32 * k + m] = static_cast<float>(((p[32 * g + m] >> (2 * k)) & 3) - 1) * d;
  }
}

}  // namespace qforge
