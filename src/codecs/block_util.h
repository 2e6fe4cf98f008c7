// Small helpers every block codec uses: fp16 fields and row sigma^2.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "numeric/half.h"

namespace qforge {

inline void PutHalf(uint8_t* p, float v) {
  const uint16_t h = FloatToHalf(v);
  std::memcpy(p, &h, 2);
}

inline float GetHalf(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return HalfToFloat(h);
}

// Scale and min of sub-block j (0..7) from the 12 bytes of 6-bit pairs that
// Q4_K and Q5_K carry (ggml's get_scale_min_k4).
inline void UnpackScaleMin6(int j, const uint8_t* q, uint8_t* s, uint8_t* m) {
  if (j < 4) {
    *s = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *s = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Sum of squares in index order (the reference sums sequentially).
inline float SumSquares(const float* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += x[i] * x[i];
  return sum;
}

// The signed value of largest magnitude (the first one on ties), and that
// magnitude: the anchor of every symmetric scale search.
inline float SignedAbsMax(const float* x, int n, float* amax_out = nullptr) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    const float ax = std::fabs(x[j]);
    if (ax > amax) {
      amax = ax;
      max = x[j];
    }
  }
  if (amax_out) *amax_out = amax;
  return max;
}

}  // namespace qforge
