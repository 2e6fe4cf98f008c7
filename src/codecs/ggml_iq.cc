#include "codecs/ggml_iq.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "codecs/block_util.h"
#include "codecs/scale_search.h"
#include "codecs/simd_kernels.h"

namespace qforge {
namespace {

constexpr int8_t kValuesIQ4NL[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
constexpr int kTries = 7;  // llama-quantize's search width

// Scale of one 32-value sub-block: the best of 15 trial inverse scales
// around max/127, judged by the weighted least-squares fit.
float SubBlockScale(const float* x, const float* w) {
  float amax = 0.0f;
  const float max = SignedAbsMax(x, 32, &amax);
  if (amax < kGroupMaxEps) return 0.0f;
  float d = -max / static_cast<float>(kValuesIQ4NL[0]);
  float id = 1.0f / d;
  float sumqx = 0.0f, sumq2 = 0.0f;
  uint8_t idx[32];
  simd::NearestLevelIndices(x, id, kValuesIQ4NL, idx, 32);
  for (int j = 0; j < 32; ++j) {
    const float q = kValuesIQ4NL[idx[j]];
    sumqx += w[j] * q * x[j];
    sumq2 += w[j] * q * q;
  }
  d = sumq2 > 0.0f ? sumqx / sumq2 : 0.0f;
  float best = d * sumqx;
  for (int itry = -kTries; itry <= kTries; ++itry) {
    id = static_cast<float>(itry + kValuesIQ4NL[0]) / max;
    sumqx = sumq2 = 0.0f;
    simd::NearestLevelIndices(x, id, kValuesIQ4NL, idx, 32);
    for (int j = 0; j < 32; ++j) {
      const float q = kValuesIQ4NL[idx[j]];
      sumqx += w[j] * q * x[j];
      sumq2 += w[j] * q * q;
    }
    if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

void SubBlockWeights(const float* x, const float* qw, float sigma2, float* w) {
  for (int j = 0; j < 32; ++j) w[j] = qw ? qw[j] * std::sqrt(sigma2 + x[j] * x[j]) : x[j] * x[j];
}

void PackIndices(const float* x, float inv, uint8_t* qs) {
  uint8_t L[32];
  simd::NearestLevelIndices(x, inv, kValuesIQ4NL, L, 32);
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
}

void DecodeNibbles(const uint8_t* qs, float dl, float* y) {
  for (int j = 0; j < 16; ++j) {
    y[j] = dl * static_cast<float>(kValuesIQ4NL[qs[j] & 0xF]);
    y[j + 16] = dl * static_cast<float>(kValuesIQ4NL[qs[j] >> 4]);
  }
}

}  // namespace

void EncodeRowIQ4_NL(const float* x, const float* qw, void* out, int64_t n) {
  auto* o = static_cast<uint8_t*>(out);
  for (int64_t b = 0; b < n / 32; ++b, x += 32, o += 18) {
    const float sigma2 = 2.0f * SumSquares(x, 32) / 32.0f;
    float w[32];
    SubBlockWeights(x, qw ? qw + b * 32 : nullptr, sigma2, w);
    const float d = SubBlockScale(x, w);
    PutHalf(o, d);
    PackIndices(x, d != 0.0f ? 1.0f / d : 0.0f, o + 2);
  }
}

void DecodeRowIQ4_NL(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t b = 0; b < n / 32; ++b, p += 18, y += 32) DecodeNibbles(p + 2, GetHalf(p), y);
}

void EncodeRowIQ4_XS(const float* x, const float* qw, void* out, int64_t n) {
  auto* o = static_cast<uint8_t*>(out);
  for (int64_t b = 0; b < n / 256; ++b, x += 256, o += 136) {
    const float sigma2 = 2.0f * SumSquares(x, 256) / 256.0f;
    float scales[8], amax = 0.0f, max_scale = 0.0f;
    for (int ib = 0; ib < 8; ++ib) {
      float w[32];
      SubBlockWeights(x + 32 * ib, qw ? qw + b * 256 + 32 * ib : nullptr, sigma2, w);
      scales[ib] = SubBlockScale(x + 32 * ib, w);
      if (std::fabs(scales[ib]) > amax) {
        amax = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    const float d = -max_scale / 32.0f;
    PutHalf(o, d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint16_t scales_h = 0;
    std::memset(o + 4, 0, 4);
    for (int ib = 0; ib < 8; ++ib) {
      int l = std::clamp(NearestInt(id * scales[ib]), -32, 31);
      const float dl = d * static_cast<float>(l);
      PackIndices(x + 32 * ib, dl != 0.0f ? 1.0f / dl : 0.0f, o + 8 + 16 * ib);
      l += 32;
      o[4 + ib / 2] |= static_cast<uint8_t>((l & 0xF) << (4 * (ib % 2)));
      scales_h |= static_cast<uint16_t>((l >> 4) << (2 * ib));
    }
    std::memcpy(o + 2, &scales_h, 2);
  }
}

void DecodeRowIQ4_XS(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t b = 0; b < n / 256; ++b, p += 136, y += 256) {
    const float d = GetHalf(p);
    uint16_t scales_h;
    std::memcpy(&scales_h, p + 2, 2);
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((p[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scales_h >> (2 * ib)) & 3) << 4);
      DecodeNibbles(p + 8 + 16 * ib, d * static_cast<float>(ls - 32), y + 32 * ib);
    }
  }
}

}  // namespace qforge
