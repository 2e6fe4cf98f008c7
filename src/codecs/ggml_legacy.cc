#include "codecs/ggml_legacy.h"

#include <cfloat>
#include <cmath>
#include <cstring>

#include "codecs/block_util.h"
#include "codecs/scale_search.h"
#include "codecs/simd_kernels.h"

namespace qforge {
namespace {

constexpr int kBlock = 32;

// Mean square over the row: the sigma^2 of the weighted searches.
float RowSigma2(const float* x, int64_t n) { return SumSquares(x, n) / static_cast<float>(n); }

void BlockWeights(const float* x, const float* qw, float sigma2, float* w) {
  for (int j = 0; j < kBlock; ++j) w[j] = qw[j] * std::sqrt(sigma2 + x[j] * x[j]);
}

// The signed value of largest magnitude (first one on ties).
float SignedAbsMax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void MinMax(const float* x, int n, float* min, float* max) {
  *min = FLT_MAX;
  *max = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    if (x[j] < *min) *min = x[j];
    if (x[j] > *max) *max = x[j];
  }
}

// Nibble layout shared by every 4/5-bit legacy type: byte j holds element j
// (low nibble) and element j+16 (high nibble).
void PackNibbles(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
}

uint32_t HighBits(const uint8_t* L) {
  uint32_t qh = 0;
  for (int j = 0; j < kBlock; ++j) qh |= static_cast<uint32_t>((L[j] >> 4) & 1) << j;
  return qh;
}

void UnpackNibbles(const uint8_t* qs, uint32_t qh, int* q) {
  for (int j = 0; j < 16; ++j) {
    q[j] = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1) << 4);
    q[j + 16] = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
  }
}

}  // namespace

// ------------------------------------------------------------------- Q4_0

void EncodeRowQ4_0(const float* x, const float* qw, void* out, int64_t n) {
  auto* o = static_cast<uint8_t*>(out);
  const float sigma2 = qw ? RowSigma2(x, n) : 0.0f;
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock, o += 18) {
    uint8_t L[kBlock];
    if (qw == nullptr) {
      const float d = SignedAbsMax(x, kBlock) / -8.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      PutHalf(o, d);
      for (int j = 0; j < kBlock; ++j) {
        const int v = static_cast<int8_t>(x[j] * id + 8.5f);
        L[j] = static_cast<uint8_t>(v < 15 ? v : 15);
      }
    } else {
      float w[kBlock];
      int8_t l8[kBlock];
      BlockWeights(x, qw + b * kBlock, sigma2, w);
      PutHalf(o, MakeQxQuants(kBlock, 8, x, l8, 1, w));
      for (int j = 0; j < kBlock; ++j) L[j] = static_cast<uint8_t>(l8[j]);
    }
    PackNibbles(L, o + 2);
  }
}

void DecodeRowQ4_0(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t b = 0; b < n / kBlock; ++b, p += 18, y += kBlock) {
    const float d = GetHalf(p);
    int q[kBlock];
    UnpackNibbles(p + 2, 0, q);
    for (int j = 0; j < kBlock; ++j) y[j] = static_cast<float>(q[j] - 8) * d;
  }
}

// ------------------------------------------------------------------- Q4_1

void EncodeRowQ4_1(const float* x, const float* qw, void* out, int64_t n) {
  auto* o = static_cast<uint8_t*>(out);
  const float sigma2 = qw ? RowSigma2(x, n) : 0.0f;
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock, o += 20) {
    uint8_t L[kBlock];
    if (qw == nullptr) {
      float min, max;
      MinMax(x, kBlock, &min, &max);
      const float d = (max - min) / 15.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      PutHalf(o, d);
      PutHalf(o + 2, min);
      for (int j = 0; j < kBlock; ++j) {
        const int v = static_cast<int8_t>((x[j] - min) * id + 0.5f);
        L[j] = static_cast<uint8_t>(v < 15 ? v : 15);
      }
    } else {
      float w[kBlock], the_min;
      uint8_t aux[kBlock];
      BlockWeights(x, qw + b * kBlock, sigma2, w);
      const float d = MakeQkxQuants(kBlock, 15, x, w, L, &the_min, aux, -0.9f, 0.05f, 36, false, true);
      PutHalf(o, d);
      PutHalf(o + 2, -the_min);
    }
    PackNibbles(L, o + 4);
  }
}

void DecodeRowQ4_1(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t b = 0; b < n / kBlock; ++b, p += 20, y += kBlock) {
    const float d = GetHalf(p), m = GetHalf(p + 2);
    int q[kBlock];
    UnpackNibbles(p + 4, 0, q);
    for (int j = 0; j < kBlock; ++j) y[j] = static_cast<float>(q[j]) * d + m;
  }
}

// ------------------------------------------------------------------- Q5_0

void EncodeRowQ5_0(const float* x, const float* qw, void* out, int64_t n) {
  auto* o = static_cast<uint8_t*>(out);
  const float sigma2 = qw ? RowSigma2(x, n) : 0.0f;
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock, o += 22) {
    uint8_t L[kBlock];
    if (qw == nullptr) {
      const float d = SignedAbsMax(x, kBlock) / -16.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      PutHalf(o, d);
      for (int j = 0; j < kBlock; ++j) {
        const int v = static_cast<int8_t>(x[j] * id + 16.5f);
        L[j] = static_cast<uint8_t>(v < 31 ? v : 31);
      }
    } else {
      float w[kBlock];
      int8_t l8[kBlock];
      BlockWeights(x, qw + b * kBlock, sigma2, w);
      PutHalf(o, MakeQxQuants(kBlock, 16, x, l8, 1, w));
      for (int j = 0; j < kBlock; ++j) L[j] = static_cast<uint8_t>(l8[j]);
    }
    const uint32_t qh = HighBits(L);
    std::memcpy(o + 2, &qh, 4);
    PackNibbles(L, o + 6);
  }
}

void DecodeRowQ5_0(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t b = 0; b < n / kBlock; ++b, p += 22, y += kBlock) {
    const float d = GetHalf(p);
    uint32_t qh;
    std::memcpy(&qh, p + 2, 4);
    int q[kBlock];
    UnpackNibbles(p + 6, qh, q);
    for (int j = 0; j < kBlock; ++j) y[j] = static_cast<float>(q[j] - 16) * d;
  }
}

// ------------------------------------------------------------------- Q5_1

void EncodeRowQ5_1(const float* x, const float* qw, void* out, int64_t n) {
  auto* o = static_cast<uint8_t*>(out);
  const float sigma2 = qw ? RowSigma2(x, n) : 0.0f;
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock, o += 24) {
    uint8_t L[kBlock];
    if (qw == nullptr) {
      float min, max;
      MinMax(x, kBlock, &min, &max);
      const float d = (max - min) / 31.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      PutHalf(o, d);
      PutHalf(o + 2, min);
      // No clamp here: the reference relies on (x-min)*id <= 31.
      for (int j = 0; j < kBlock; ++j) L[j] = static_cast<uint8_t>((x[j] - min) * id + 0.5f);
    } else {
      float w[kBlock], the_min;
      uint8_t aux[kBlock];
      BlockWeights(x, qw + b * kBlock, sigma2, w);
      const float d = MakeQkxQuants(kBlock, 31, x, w, L, &the_min, aux, -0.9f, 0.05f, 36, false, true);
      PutHalf(o, d);
      PutHalf(o + 2, -the_min);
    }
    const uint32_t qh = HighBits(L);
    std::memcpy(o + 4, &qh, 4);
    PackNibbles(L, o + 8);
  }
}

void DecodeRowQ5_1(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t b = 0; b < n / kBlock; ++b, p += 24, y += kBlock) {
    const float d = GetHalf(p), m = GetHalf(p + 2);
    uint32_t qh;
    std::memcpy(&qh, p + 4, 4);
    int q[kBlock];
    UnpackNibbles(p + 8, qh, q);
    for (int j = 0; j < kBlock; ++j) y[j] = static_cast<float>(q[j]) * d + m;
  }
}

// ------------------------------------------------------------------- Q8_0

void EncodeRowQ8_0(const float* x, const float*, void* out, int64_t n) {
  simd::EncodeQ8_0(x, static_cast<uint8_t*>(out), n);
}

void EncodeRowQ8_0Scalar(const float* x, void* out, int64_t n) {
  auto* o = static_cast<uint8_t*>(out);
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock, o += 34) {
    float amax = 0.0f;
    for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    // The reciprocal is taken from the unrounded scale, as the reference does.
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    PutHalf(o, d);
    for (int j = 0; j < kBlock; ++j) {
      o[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::roundf(x[j] * id)));
    }
  }
}

void DecodeRowQ8_0(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t b = 0; b < n / kBlock; ++b, p += 34, y += kBlock) {
    const float d = GetHalf(p);
    for (int j = 0; j < kBlock; ++j) y[j] = static_cast<float>(static_cast<int8_t>(p[2 + j])) * d;
  }
}

}  // namespace qforge
