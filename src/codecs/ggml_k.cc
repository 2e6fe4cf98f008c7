#include "codecs/ggml_k.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "codecs/block_grid.h"
#include "codecs/block_util.h"
#include "codecs/scale_search.h"
#include "codecs/simd_kernels.h"

namespace qforge {
namespace {

constexpr int QK = 256;

// 2-bit packing of Q2_K and the low bits of Q3_K: element 128h+32k+l sits in
// bits 2k..2k+1 of byte 32h+l.
void Pack2Bits(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < QK; j += 128) {
    for (int l = 0; l < 32; ++l) {
      qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                            (L[j + l + 96] << 6));
    }
  }
}

int Unpack2Bits(const uint8_t* qs, int e) {
  const int h = e / 128, k = (e % 128) / 32, l = e % 32;
  return (qs[32 * h + l] >> (2 * k)) & 3;
}

// 6-bit scale/min pairs of Q4_K and Q5_K in 12 bytes.
void PackScaleMin6(int j, uint8_t ls, uint8_t lm, uint8_t* scales) {
  if (j < 4) {
    scales[j] = ls;
    scales[j + 4] = lm;
  } else {
    scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
    scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
    scales[j] |= static_cast<uint8_t>((lm >> 4) << 6);
  }
}


// 6-bit Q3_K scales (offset +32) in 12 bytes.
void PackQ3Scale(int j, int l, uint8_t* scales) {
  if (j < 8) scales[j] = static_cast<uint8_t>(l & 0xF);
  else scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
  l >>= 4;
  scales[j % 4 + 8] |= static_cast<uint8_t>(l << (2 * (j / 4)));
}

int UnpackQ3Scale(int j, const uint8_t* scales) {
  const int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
  return low | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4);
}

// The asymmetric scale search for all sub-blocks of a super-block at once
// (one SIMD lane per sub-block; identical results to MakeQkxQuants each).
void QkxSearch(int nsub, int n, int nmax, const float* x, const float* w, uint8_t* L, float* scales, float* mins,
               float rmin, float rdelta, int nstep, bool use_mad, bool qkx3) {
  float xt[QK], wt[QK];
  uint8_t lt[QK];
  for (int k = 0; k < nsub; ++k) {
    for (int i = 0; i < n; ++i) {
      xt[i * nsub + k] = x[k * n + i];
      wt[i * nsub + k] = w[k * n + i];
    }
  }
  simd::MakeQkxBatch(nsub, n, nmax, xt, wt, lt, scales, mins, rmin, rdelta, nstep, use_mad, qkx3);
  for (int k = 0; k < nsub; ++k) {
    for (int i = 0; i < n; ++i) L[k * n + i] = lt[i * nsub + k];
  }
}

// The symmetric search (rmse_type 1) for all sub-blocks at once.
void QxSearch(int nsub, int n, int nmax, const float* x, const float* w, int8_t* L, float* scales) {
  float xt[QK], wt[QK];
  int8_t lt[QK];
  for (int k = 0; k < nsub; ++k) {
    for (int i = 0; i < n; ++i) {
      xt[i * nsub + k] = x[k * n + i];
      if (w) wt[i * nsub + k] = w[k * n + i];
    }
  }
  simd::MakeQxBatch(nsub, n, nmax, xt, w ? wt : nullptr, lt, scales);
  for (int k = 0; k < nsub; ++k) {
    for (int i = 0; i < n; ++i) L[k * n + i] = lt[i * nsub + k];
  }
}

// Imatrix weights qw * sqrt(sigma2 + x^2) per value and their sum per sub-block.
void ImatrixWeights(const float* x, const float* qw, float sigma2, int nsub, int n, float* w, float* sw) {
  for (int j = 0; j < nsub; ++j) {
    float sumw = 0.0f;
    for (int l = 0; l < n; ++l) {
      w[n * j + l] = qw[n * j + l] * std::sqrt(sigma2 + x[n * j + l] * x[n * j + l]);
      sumw += w[n * j + l];
    }
    sw[j] = sumw;
  }
}

// ------------------------------------------------------------------- Q2_K
// Layout: scales[16] | qs[64] | d | dmin.

void RequantQ2(const float* x, const uint8_t* o, uint8_t* L) {
  const float d = GetHalf(o + 80), dmin = GetHalf(o + 82);
  for (int j = 0; j < 16; ++j) {
    const float dd = d * static_cast<float>(o[j] & 0xF);
    if (dd == 0.0f) continue;
    const float dm = dmin * static_cast<float>(o[j] >> 4);
    for (int ii = 0; ii < 16; ++ii) {
      const int l = NearestInt((x[16 * j + ii] + dm) / dd);
      L[16 * j + ii] = static_cast<uint8_t>(std::clamp(l, 0, 3));
    }
  }
}

void EncodeQ2Ref(const float* x, uint8_t* o) {
  uint8_t L[QK];
  float weights[QK], mins[16], scales[16];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int i = 0; i < QK; ++i) weights[i] = std::fabs(x[i]);
  QkxSearch(16, 16, 3, x, weights, L, scales, mins, -0.5f, 0.1f, 15, true, false);
  for (int j = 0; j < 16; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  if (max_scale > 0.0f) {
    const float iscale = 15.0f / max_scale;
    for (int j = 0; j < 16; ++j) o[j] = static_cast<uint8_t>(NearestInt(iscale * scales[j]));
    PutHalf(o + 80, max_scale / 15.0f);
  } else {
    for (int j = 0; j < 16; ++j) o[j] = 0;
    PutHalf(o + 80, 0.0f);
  }
  if (max_min > 0.0f) {
    const float iscale = 15.0f / max_min;
    for (int j = 0; j < 16; ++j) o[j] |= static_cast<uint8_t>(NearestInt(iscale * mins[j]) << 4);
    PutHalf(o + 82, max_min / 15.0f);
  } else {
    PutHalf(o + 82, 0.0f);
  }
  RequantQ2(x, o, L);
  Pack2Bits(L, o + 16);
}

void EncodeQ2Imatrix(const float* x, const float* qw, uint8_t* o) {
  uint8_t L[QK], Ls[16], Lm[16];
  float weight[QK], mins[16], scales[16], sw[16];
  const float sigma2 = SumSquares(x, QK) / static_cast<float>(QK);
  ImatrixWeights(x, qw, sigma2, 16, 16, weight, sw);
  QkxSearch(16, 16, 3, x, weight, L, scales, mins, -0.9f, 0.05f, 36, false, true);
  const float dm = MakeQpQuants(16, 15, scales, Ls, sw);
  const float mm = MakeQpQuants(16, 15, mins, Lm, sw);
  PutHalf(o + 80, dm);
  PutHalf(o + 82, mm);
  for (int j = 0; j < 16; ++j) o[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
  RequantQ2(x, o, L);
  Pack2Bits(L, o + 16);
}

// ------------------------------------------------------------------- Q3_K
// Layout: hmask[32] | qs[64] | scales[12] | d.

void FinishQ3(const float* x, uint8_t* o, int8_t* L) {
  const float d = GetHalf(o + 108);
  for (int j = 0; j < 16; ++j) {
    const float dd = d * static_cast<float>(UnpackQ3Scale(j, o + 96) - 32);
    if (dd == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      const int l = std::clamp(NearestInt(x[16 * j + ii] / dd), -4, 3);
      L[16 * j + ii] = static_cast<int8_t>(l + 4);
    }
  }
  std::memset(o, 0, 32);
  uint8_t low[QK];
  for (int e = 0; e < QK; ++e) {
    int l = L[e];
    if (l > 3) {
      o[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
      l -= 4;
    }
    low[e] = static_cast<uint8_t>(l);
  }
  Pack2Bits(low, o + 32);
}

void EncodeQ3Ref(const float* x, uint8_t* o) {
  int8_t L[QK];
  float scales[16];
  float amax = 0.0f, max_scale = 0.0f;
  for (int j = 0; j < 16; ++j) {
    scales[j] = MakeQ3Quants(16, 4, x + 16 * j, L + 16 * j, true);
    const float scale = std::fabs(scales[j]);
    if (scale > amax) {
      amax = scale;
      max_scale = scales[j];
    }
  }
  std::memset(o + 96, 0, 12);
  if (max_scale != 0.0f) {
    const float iscale = -32.0f / max_scale;
    for (int j = 0; j < 16; ++j) {
      int l = static_cast<int8_t>(NearestInt(iscale * scales[j]));
      l = std::clamp(l, -32, 31) + 32;
      PackQ3Scale(j, l, o + 96);
    }
    PutHalf(o + 108, 1.0f / iscale);
  } else {
    PutHalf(o + 108, 0.0f);
  }
  FinishQ3(x, o, L);
}

void EncodeQ3Imatrix(const float* x, const float* qw, uint8_t* o) {
  int8_t L[QK], Ls[16];
  float weight[QK], scales[16], sw[16];
  const float sigma2 = 2.0f * SumSquares(x, QK) / static_cast<float>(QK);
  ImatrixWeights(x, qw, sigma2, 16, 16, weight, sw);
  QxSearch(16, 16, 4, x, weight, L, scales);
  std::memset(o + 96, 0, 12);
  const float d_block = MakeQxQuants(16, 32, scales, Ls, 1, sw);
  for (int j = 0; j < 16; ++j) PackQ3Scale(j, Ls[j], o + 96);
  PutHalf(o + 108, d_block);
  FinishQ3(x, o, L);
}

// ------------------------------------------------------------- Q4_K / Q5_K
// Layout: d | dmin | scales[12] | (Q5_K: qh[32]) | qs[128].

template <int kMax>
void RequantQ45(const float* x, const uint8_t* o, uint8_t* L) {
  const float d = GetHalf(o), dmin = GetHalf(o + 2);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    UnpackScaleMin6(j, o + 4, &sc, &m);
    const float dd = d * static_cast<float>(sc);
    if (dd == 0.0f) continue;
    const float dm = dmin * static_cast<float>(m);
    for (int ii = 0; ii < 32; ++ii) {
      const int l = NearestInt((x[32 * j + ii] + dm) / dd);
      L[32 * j + ii] = static_cast<uint8_t>(std::clamp(l, 0, kMax));
    }
  }
}

template <int kMax>
void ScalesQ45Ref(const float* x, uint8_t* o, uint8_t* L, float rmin, float rdelta, int nstep) {
  float weights[QK], mins[8], scales[8];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    const float av_x = std::sqrt(SumSquares(x + 32 * j, 32) / 32.0f);
    for (int l = 0; l < 32; ++l) weights[32 * j + l] = av_x + std::fabs(x[32 * j + l]);
  }
  QkxSearch(8, 32, kMax, x, weights, L, scales, mins, rmin, rdelta, nstep, false, false);
  for (int j = 0; j < 8; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
  std::memset(o + 4, 0, 12);
  for (int j = 0; j < 8; ++j) {
    uint8_t ls = static_cast<uint8_t>(NearestInt(inv_scale * scales[j]));
    uint8_t lm = static_cast<uint8_t>(NearestInt(inv_min * mins[j]));
    ls = std::min<uint8_t>(63, ls);
    lm = std::min<uint8_t>(63, lm);
    PackScaleMin6(j, ls, lm, o + 4);
  }
  PutHalf(o, max_scale / 63.0f);
  PutHalf(o + 2, max_min / 63.0f);
  RequantQ45<kMax>(x, o, L);
}

template <int kMax>
void ScalesQ45Imatrix(const float* x, const float* qw, uint8_t* o, uint8_t* L) {
  uint8_t Ls[8], Lm[8];
  float weights[QK], mins[8], scales[8], sw[8];
  const float sigma2 = 2.0f * SumSquares(x, QK) / static_cast<float>(QK);
  ImatrixWeights(x, qw, sigma2, 8, 32, weights, sw);
  QkxSearch(8, 32, kMax, x, weights, L, scales, mins, -0.9f, 0.05f, 36, false, true);
  const float d_block = MakeQpQuants(8, 63, scales, Ls, sw);
  const float m_block = MakeQpQuants(8, 63, mins, Lm, sw);
  std::memset(o + 4, 0, 12);
  for (int j = 0; j < 8; ++j) {
    PackScaleMin6(j, std::min<uint8_t>(63, Ls[j]), std::min<uint8_t>(63, Lm[j]), o + 4);
  }
  PutHalf(o, d_block);
  PutHalf(o + 2, m_block);
  RequantQ45<kMax>(x, o, L);
}

// Nibbles per 64-element chunk: element 64c+l low, 64c+32+l high, of byte 32c+l.
void PackQ4Nibbles(const uint8_t* L, uint8_t* q) {
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) q[32 * c + l] = static_cast<uint8_t>((L[64 * c + l] & 0xF) | ((L[64 * c + 32 + l] & 0xF) << 4));
  }
}

void PackQ5(const uint8_t* L, uint8_t* o) {
  uint8_t* qh = o + 16;
  std::memset(qh, 0, 32);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      if (L[64 * c + l] > 15) qh[l] |= static_cast<uint8_t>(1 << (2 * c));
      if (L[64 * c + 32 + l] > 15) qh[l] |= static_cast<uint8_t>(2 << (2 * c));
    }
  }
  PackQ4Nibbles(L, o + 48);
}

// Q4_K and Q5_K decode alike; Q5_K adds a fifth bit from qh.
template <bool kFifthBit>
void DecodeQ45(const void* in, float* y, int64_t n) {
  constexpr int kBytes = kFifthBit ? 176 : 144;
  constexpr int kQs = kFifthBit ? 48 : 16;
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t b = 0; b < n / QK; ++b, p += kBytes, y += QK) {
    const float d = GetHalf(p), dmin = GetHalf(p + 2);
    for (int c = 0; c < 4; ++c) {
      for (int half = 0; half < 2; ++half) {
        uint8_t sc, m;
        UnpackScaleMin6(2 * c + half, p + 4, &sc, &m);
        const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
        for (int l = 0; l < 32; ++l) {
          int q = half ? p[kQs + 32 * c + l] >> 4 : p[kQs + 32 * c + l] & 0xF;
          if (kFifthBit) q += 16 * ((p[16 + l] >> (2 * c + half)) & 1);
          y[64 * c + 32 * half + l] = d1 * static_cast<float>(q) - m1;
        }
      }
    }
  }
}

// ------------------------------------------------------------------- Q6_K
// Layout: ql[128] | qh[64] | scales[16] (int8) | d.

// Levels 0..63 into ql (low nibbles) and qh (high two bits), per 128 values.
template <typename Level>
void PackQ6(const Level* L, uint8_t* o) {
  uint8_t* ql = o;
  uint8_t* qh = o + 128;
  for (int j = 0; j < QK; j += 128, ql += 64, qh += 32) {
    for (int l = 0; l < 32; ++l) {
      const int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
      ql[l] = static_cast<uint8_t>(q1 | (q3 << 4));
      ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
      qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                   ((L[j + l + 96] >> 4) << 6));
    }
  }
}

void EncodeQ6(const float* x, const float* qw, uint8_t* o) {
  int8_t L[QK];
  float scales[16];
  float max_scale = 0.0f, max_abs_scale = 0.0f;
  QxSearch(16, 16, 32, x, qw, L, scales);
  for (int ib = 0; ib < 16; ++ib) {
    const float abs_scale = std::fabs(scales[ib]);
    if (abs_scale > max_abs_scale) {
      max_abs_scale = abs_scale;
      max_scale = scales[ib];
    }
  }
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(o, 0, 210);
    return;
  }
  const float iscale = -128.0f / max_scale;
  PutHalf(o + 208, 1.0f / iscale);
  auto* sc = reinterpret_cast<int8_t*>(o + 192);
  for (int ib = 0; ib < 16; ++ib) sc[ib] = static_cast<int8_t>(std::min(127, NearestInt(iscale * scales[ib])));
  const float d = GetHalf(o + 208);
  for (int j = 0; j < 16; ++j) {
    const float dd = d * static_cast<float>(sc[j]);
    if (dd == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      const int l = std::clamp(NearestInt(x[16 * j + ii] / dd), -32, 31);
      L[16 * j + ii] = static_cast<int8_t>(l + 32);
    }
  }
  PackQ6(L, o);
}

template <int kMax, int kBytes>
void EncodeQ45Ref(const float* x, uint8_t* o) {
  uint8_t L[QK];
  if (kMax == 15) ScalesQ45Ref<kMax>(x, o, L, -1.0f, 0.1f, 20);
  else ScalesQ45Ref<kMax>(x, o, L, -0.5f, 0.1f, 15);
  if (kMax == 15) PackQ4Nibbles(L, o + 16);
  else PackQ5(L, o);
}

template <int kMax, int kBytes>
void EncodeQ45Imatrix(const float* x, const float* qw, uint8_t* o) {
  uint8_t L[QK];
  ScalesQ45Imatrix<kMax>(x, qw, o, L);
  if (kMax == 15) PackQ4Nibbles(L, o + 16);
  else PackQ5(L, o);
}

void EncodeQ6Ref(const float* x, uint8_t* o) { EncodeQ6(x, nullptr, o); }

// Every k-quant row is a run of independent 256-value super-blocks.
template <int kBytes, void (*kRef)(const float*, uint8_t*), void (*kImatrix)(const float*, const float*, uint8_t*)>
void EncodeSuperBlocks(const float* x, const float* qw, void* out, int64_t n) {
  auto* o = static_cast<uint8_t*>(out);
  for (int64_t b = 0; b < n / QK; ++b) {
    if (qw) kImatrix(x + b * QK, qw + b * QK, o + b * kBytes);
    else kRef(x + b * QK, o + b * kBytes);
  }
}

}  // namespace

void EncodeRowQ2_K(const float* x, const float* qw, void* out, int64_t n) {
  EncodeSuperBlocks<84, EncodeQ2Ref, EncodeQ2Imatrix>(x, qw, out, n);
}
void EncodeRowQ3_K(const float* x, const float* qw, void* out, int64_t n) {
  EncodeSuperBlocks<110, EncodeQ3Ref, EncodeQ3Imatrix>(x, qw, out, n);
}
void EncodeRowQ4_K(const float* x, const float* qw, void* out, int64_t n) {
  EncodeSuperBlocks<144, EncodeQ45Ref<15, 144>, EncodeQ45Imatrix<15, 144>>(x, qw, out, n);
}
void EncodeRowQ5_K(const float* x, const float* qw, void* out, int64_t n) {
  EncodeSuperBlocks<176, EncodeQ45Ref<31, 176>, EncodeQ45Imatrix<31, 176>>(x, qw, out, n);
}
void EncodeRowQ6_K(const float* x, const float* qw, void* out, int64_t n) {
  EncodeSuperBlocks<210, EncodeQ6Ref, EncodeQ6>(x, qw, out, n);
}

void DecodeRowQ2_K(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t b = 0; b < n / QK; ++b, p += 84, y += QK) {
    const float d = GetHalf(p + 80), dmin = GetHalf(p + 82);
    for (int e = 0; e < QK; ++e) {
      const uint8_t sc = p[e / 16];
      const float dl = d * static_cast<float>(sc & 0xF), ml = dmin * static_cast<float>(sc >> 4);
      y[e] = dl * static_cast<float>(Unpack2Bits(p + 16, e)) - ml;
    }
  }
}


void DecodeRowQ3_K(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t b = 0; b < n / QK; ++b, p += 110, y += QK) {
    const float d = GetHalf(p + 108);
    for (int e = 0; e < QK; ++e) {
      const int high = (p[e % 32] >> (e / 32)) & 1;
      const int q = Unpack2Bits(p + 32, e) + 4 * high - 4;
      const float dl = d * static_cast<float>(UnpackQ3Scale(e / 16, p + 96) - 32);
      y[e] = dl * static_cast<float>(q);
    }
  }
}


void DecodeRowQ4_K(const void* in, float* y, int64_t n) { DecodeQ45<false>(in, y, n); }


void DecodeRowQ5_K(const void* in, float* y, int64_t n) { DecodeQ45<true>(in, y, n); }


void DecodeRowQ6_K(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t b = 0; b < n / QK; ++b, p += 210, y += QK) {
    const float d = GetHalf(p + 208);
    const auto* sc = reinterpret_cast<const int8_t*>(p + 192);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = p + 64 * h;
      const uint8_t* qh = p + 128 + 32 * h;
      for (int l = 0; l < 32; ++l) {
        const int q1 = (ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4);
        const int q2 = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
        const int q3 = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
        const int q4 = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
        const int base = 128 * h;
        y[base + l] = d * static_cast<float>(sc[(base + l) / 16]) * static_cast<float>(q1 - 32);
        y[base + l + 32] = d * static_cast<float>(sc[(base + l + 32) / 16]) * static_cast<float>(q2 - 32);
        y[base + l + 64] = d * static_cast<float>(sc[(base + l + 64) / 16]) * static_cast<float>(q3 - 32);
        y[base + l + 96] = d * static_cast<float>(sc[(base + l + 96) / 16]) * static_cast<float>(q4 - 32);
      }
    }
  }
}

namespace {

// Q4_K and Q5_K: eight sub-blocks of 32 with scale d*sc and offset -dmin*m.
void ReadGridQ45(const uint8_t* block, float* scale, float* offset) {
  const float d = GetHalf(block), dmin = GetHalf(block + 2);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    UnpackScaleMin6(j, block + 4, &sc, &m);
    scale[j] = d * static_cast<float>(sc);
    offset[j] = -(dmin * static_cast<float>(m));
  }
}

void WriteCodesQ4_K(const int32_t* codes, uint8_t* block) {
  uint8_t L[QK];
  for (int i = 0; i < QK; ++i) L[i] = static_cast<uint8_t>(codes[i]);
  PackQ4Nibbles(L, block + 16);
}

void WriteCodesQ5_K(const int32_t* codes, uint8_t* block) {
  uint8_t L[QK];
  for (int i = 0; i < QK; ++i) L[i] = static_cast<uint8_t>(codes[i]);
  PackQ5(L, block);
}

// Q6_K: sixteen sub-blocks of 16 with scale d*sc; codes are the signed
// levels -32..31 (stored +32), so scale * code is the decoder's product.
void ReadGridQ6_K(const uint8_t* block, float* scale, float* offset) {
  const float d = GetHalf(block + 208);
  const auto* sc = reinterpret_cast<const int8_t*>(block + 192);
  for (int j = 0; j < 16; ++j) {
    scale[j] = d * static_cast<float>(sc[j]);
    offset[j] = 0.0f;
  }
}

void WriteCodesQ6_K(const int32_t* codes, uint8_t* block) {
  uint8_t L[QK];
  for (int i = 0; i < QK; ++i) L[i] = static_cast<uint8_t>(codes[i] + 32);
  PackQ6(L, block);
}

}  // namespace

const BlockGrid kGridQ4_K = {32, 0, 15, ReadGridQ45, WriteCodesQ4_K};
const BlockGrid kGridQ5_K = {32, 0, 31, ReadGridQ45, WriteCodesQ5_K};
const BlockGrid kGridQ6_K = {16, -32, 31, ReadGridQ6_K, WriteCodesQ6_K};

}  // namespace qforge
