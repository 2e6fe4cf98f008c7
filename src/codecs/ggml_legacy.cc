#include "codecs/ggml_legacy.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "codecs/block_grid.h"
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

// The weighted (imatrix) scale search of up to eight consecutive blocks at
// once, one SIMD lane per block (identical to eight scalar searches).
// Symmetric types use MakeQxQuants' rule, asymmetric ones MakeQkxQuants'.
void WeightedSearch8(const float* x, const float* qw, float sigma2, int nb, int nmax, bool asymmetric, float* scales,
                     float* the_mins, uint8_t* L) {
  float xt[8 * kBlock] = {}, wt[8 * kBlock] = {};
  for (int k = 0; k < nb; ++k) {
    float w[kBlock];
    BlockWeights(x + k * kBlock, qw + k * kBlock, sigma2, w);
    for (int i = 0; i < kBlock; ++i) {
      xt[i * 8 + k] = x[k * kBlock + i];
      wt[i * 8 + k] = w[i];
    }
  }
  if (asymmetric) {
    uint8_t lt[8 * kBlock];
    simd::MakeQkxBatch(8, kBlock, nmax, xt, wt, lt, scales, the_mins, -0.9f, 0.05f, 36, false, true);
    for (int k = 0; k < nb; ++k)
      for (int i = 0; i < kBlock; ++i) L[k * kBlock + i] = lt[i * 8 + k];
  } else {
    int8_t lt[8 * kBlock];
    simd::MakeQxBatch(8, kBlock, nmax, xt, wt, lt, scales);
    for (int k = 0; k < nb; ++k)
      for (int i = 0; i < kBlock; ++i) L[k * kBlock + i] = static_cast<uint8_t>(lt[i * 8 + k]);
  }
}

// One template serves the four 4/5-bit legacy formats. Layout: d (fp16),
// [m (fp16) for the asymmetric kinds], [qh (u32) for 5 bits], qs[16].
template <int kBits, bool kAsym>
struct Legacy {
  static constexpr int kMaxQ = (1 << kBits) - 1;
  static constexpr int kHalf = 1 << (kBits - 1);  // symmetric offset: 8 or 16
  static constexpr int kQhOffset = kAsym ? 4 : 2;
  static constexpr int kQsOffset = kQhOffset + (kBits == 5 ? 4 : 0);
  static constexpr int kBytes = kQsOffset + 16;

  static void Store(uint8_t* o, float d, const float* m, const uint8_t* L) {
    PutHalf(o, d);
    if (kAsym) PutHalf(o + 2, *m);
    if (kBits == 5) {
      const uint32_t qh = HighBits(L);
      std::memcpy(o + kQhOffset, &qh, 4);
    }
    PackNibbles(L, o + kQsOffset);
  }

  // The reference path (no importance weights).
  static void EncodeBlockRef(const float* x, uint8_t* o) {
    uint8_t L[kBlock];
    if (kAsym) {
      float min, max;
      MinMax(x, kBlock, &min, &max);
      const float d = (max - min) / static_cast<float>(kMaxQ);
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      for (int j = 0; j < kBlock; ++j) {
        const float v = (x[j] - min) * id + 0.5f;
        // Q4_1 clamps through int8; Q5_1 relies on (x-min)*id <= 31 and does not.
        L[j] = kBits == 4 ? static_cast<uint8_t>(std::min(kMaxQ, static_cast<int>(static_cast<int8_t>(v))))
                          : static_cast<uint8_t>(v);
      }
      Store(o, d, &min, L);
    } else {
      const float d = SignedAbsMax(x, kBlock) / static_cast<float>(-kHalf);
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      for (int j = 0; j < kBlock; ++j) {
        const int v = static_cast<int8_t>(x[j] * id + (static_cast<float>(kHalf) + 0.5f));
        L[j] = static_cast<uint8_t>(std::min(kMaxQ, v));
      }
      Store(o, d, nullptr, L);
    }
  }

  static void Encode(const float* x, const float* qw, void* out, int64_t n) {
    auto* o = static_cast<uint8_t*>(out);
    const int64_t nblocks = n / kBlock;
    if (qw == nullptr) {
      for (int64_t b = 0; b < nblocks; ++b) EncodeBlockRef(x + b * kBlock, o + b * kBytes);
      return;
    }
    const float sigma2 = RowSigma2(x, n);
    for (int64_t b0 = 0; b0 < nblocks; b0 += 8) {
      const int nb = static_cast<int>(std::min<int64_t>(8, nblocks - b0));
      float scales[8], mins[8];
      uint8_t Ls[8 * kBlock];
      WeightedSearch8(x + b0 * kBlock, qw + b0 * kBlock, sigma2, nb, kAsym ? kMaxQ : kHalf, kAsym, scales, mins, Ls);
      for (int k = 0; k < nb; ++k) {
        const float m = -mins[k];
        Store(o + (b0 + k) * kBytes, scales[k], &m, Ls + k * kBlock);
      }
    }
  }

  static void Decode(const void* in, float* y, int64_t n) {
    const auto* p = static_cast<const uint8_t*>(in);
    for (int64_t b = 0; b < n / kBlock; ++b, p += kBytes, y += kBlock) {
      const float d = GetHalf(p);
      uint32_t qh = 0;
      if (kBits == 5) std::memcpy(&qh, p + kQhOffset, 4);
      int q[kBlock];
      UnpackNibbles(p + kQsOffset, qh, q);
      if (kAsym) {
        const float m = GetHalf(p + 2);
        for (int j = 0; j < kBlock; ++j) y[j] = static_cast<float>(q[j]) * d + m;
      } else {
        for (int j = 0; j < kBlock; ++j) y[j] = static_cast<float>(q[j] - kHalf) * d;
      }
    }
  }
};

}  // namespace

void EncodeRowQ4_0(const float* x, const float* qw, void* out, int64_t n) { Legacy<4, false>::Encode(x, qw, out, n); }
void DecodeRowQ4_0(const void* in, float* y, int64_t n) { Legacy<4, false>::Decode(in, y, n); }
void EncodeRowQ4_1(const float* x, const float* qw, void* out, int64_t n) { Legacy<4, true>::Encode(x, qw, out, n); }
void DecodeRowQ4_1(const void* in, float* y, int64_t n) { Legacy<4, true>::Decode(in, y, n); }
void EncodeRowQ5_0(const float* x, const float* qw, void* out, int64_t n) { Legacy<5, false>::Encode(x, qw, out, n); }
void DecodeRowQ5_0(const void* in, float* y, int64_t n) { Legacy<5, false>::Decode(in, y, n); }
void EncodeRowQ5_1(const float* x, const float* qw, void* out, int64_t n) { Legacy<5, true>::Encode(x, qw, out, n); }
void DecodeRowQ5_1(const void* in, float* y, int64_t n) { Legacy<5, true>::Decode(in, y, n); }

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

namespace qforge {
namespace {

void ReadGridQ8_0(const uint8_t* block, float* scale, float* offset) {
  scale[0] = GetHalf(block);
  offset[0] = 0.0f;
}

void WriteCodesQ8_0(const int32_t* codes, uint8_t* block) {
  for (int j = 0; j < kBlock; ++j) block[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(codes[j]));
}

}  // namespace

// Q8_0: one scale d per 32 values, codes int8 (the encoder uses -127..127).
const BlockGrid kGridQ8_0 = {kBlock, -127, 127, ReadGridQ8_0, WriteCodesQ8_0};

}  // namespace qforge
