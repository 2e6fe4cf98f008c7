// Compiled once per Highway target (foreach_target re-includes this file).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "codecs/block_util.h"
#include "numeric/half.h"
#include "numeric/rounding.h"

// Also compile for AVX3_DL (AVX-512 with VNNI): its vpdpwssd multiplies
// int16 pairs and accumulates in one instruction.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/int_matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include "engine/int_matmul.h"

HWY_BEFORE_NAMESPACE();
namespace qforge::intmm::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Unpacking works on at most 16 int16 lanes: scales change every 16 (Q6_K)
// or 32 values, so a wider vector would straddle two of them.
using D16 = hn::CappedTag<int16_t, 16>;
using D8U = hn::Rebind<uint8_t, D16>;
using D8I = hn::Rebind<int8_t, D16>;
using D16U = hn::RebindToUnsigned<D16>;

// Lanes(D) bytes -> int16 in [0, 255].
template <class D = D16>
HWY_INLINE hn::Vec<D> LoadBytes(const uint8_t* p) {
  const D d16;
  const hn::RebindToUnsigned<D> du;
  const hn::Rebind<uint8_t, D> d8;
  return hn::BitCast(d16, hn::PromoteTo(du, hn::LoadU(d8, p)));
}

// Q4_K (144 bytes: d, dmin, 12 bytes of 6-bit scale/min pairs, 128 bytes of
// nibbles) and Q5_K (176 bytes: the same plus 32 bytes of fifth bits before
// the nibbles). Value 64c + l is the low nibble of qs[32c + l] (sub-block
// 2c), value 64c + 32 + l its high nibble (sub-block 2c + 1).
template <bool kFifthBit>
void UnpackQ45(const uint8_t* row, int64_t K, int16_t* q, float* d, float* dmin, int16_t* mins) {
  // Scales change every 32 values here, so up to 32 lanes.
  using D = hn::CappedTag<int16_t, 32>;
  const D d16;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d16));
  constexpr int kBytes = kFifthBit ? 176 : 144;
  constexpr int kQs = kFifthBit ? 48 : 16;
  const auto low = hn::Set(d16, 0x0F);
  const auto one = hn::Set(d16, 1);
  for (int64_t b = 0; b < K / 256; ++b, row += kBytes, q += 256, mins += kMinSlot) {
    d[b] = GetHalf(row);
    dmin[b] = GetHalf(row + 2);
    std::memset(mins, 0, sizeof(int16_t) * kMinSlot);
    for (int c = 0; c < 4; ++c) {
      uint8_t sc_lo, m_lo, sc_hi, m_hi;
      UnpackScaleMin6(2 * c, row + 4, &sc_lo, &m_lo);
      UnpackScaleMin6(2 * c + 1, row + 4, &sc_hi, &m_hi);
      mins[2 * c] = m_lo;
      mins[2 * c + 1] = m_hi;
      const auto s_lo = hn::Set(d16, sc_lo), s_hi = hn::Set(d16, sc_hi);
      for (int64_t l = 0; l < 32; l += L) {
        const auto v = LoadBytes<D>(row + kQs + 32 * c + l);
        auto lo = hn::And(v, low);
        auto hi = hn::ShiftRight<4>(v);
        if (kFifthBit) {
          const auto h = LoadBytes<D>(row + 16 + l);
          lo = hn::Or(lo, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(h, 2 * c), one)));
          hi = hn::Or(hi, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(h, 2 * c + 1), one)));
        }
        hn::StoreU(hn::Mul(lo, s_lo), d16, q + 64 * c + l);
        hn::StoreU(hn::Mul(hi, s_hi), d16, q + 64 * c + 32 + l);
      }
    }
  }
}

// Q6_K (210 bytes: 128 bytes of low nibbles, 64 of high bit pairs, 16 int8
// scales, d). Per half h of 128 values and l < 32: value l from ql[l] low,
// l + 32 from ql[l + 32] low, l + 64 from ql[l] high, l + 96 from ql[l + 32]
// high; the high bits are qh[l] bits 0-1, 2-3, 4-5, 6-7; levels are -32..31.
void UnpackQ6_K(const uint8_t* row, int64_t K, int16_t* q, float* d) {
  const D16 d16;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d16));
  const auto low = hn::Set(d16, 0x0F), three = hn::Set(d16, 3), bias = hn::Set(d16, 32);
  for (int64_t b = 0; b < K / 256; ++b, row += 210, q += 256) {
    d[b] = GetHalf(row + 208);
    const auto* sc = reinterpret_cast<const int8_t*>(row + 192);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = row + 64 * h;
      const uint8_t* qh = row + 128 + 32 * h;
      int16_t* o = q + 128 * h;
      for (int64_t l = 0; l < 32; l += L) {
        const auto a = LoadBytes(ql + l), c = LoadBytes(ql + 32 + l), hb = LoadBytes(qh + l);
        const auto q1 = hn::Or(hn::And(a, low), hn::ShiftLeft<4>(hn::And(hb, three)));
        const auto q2 = hn::Or(hn::And(c, low), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(hb), three)));
        const auto q3 = hn::Or(hn::ShiftRight<4>(a), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(hb), three)));
        const auto q4 = hn::Or(hn::ShiftRight<4>(c), hn::ShiftLeft<4>(hn::ShiftRight<6>(hb)));
        // Lanes never straddle a 16-value scale run (L <= 16, l a multiple of L).
        const int s = static_cast<int>((128 * h + l) / 16);
        hn::StoreU(hn::Mul(hn::Sub(q1, bias), hn::Set(d16, sc[s])), d16, o + l);
        hn::StoreU(hn::Mul(hn::Sub(q2, bias), hn::Set(d16, sc[s + 2])), d16, o + 32 + l);
        hn::StoreU(hn::Mul(hn::Sub(q3, bias), hn::Set(d16, sc[s + 4])), d16, o + 64 + l);
        hn::StoreU(hn::Mul(hn::Sub(q4, bias), hn::Set(d16, sc[s + 6])), d16, o + 96 + l);
      }
    }
  }
}

// Q8_0 (34 bytes: d, 32 int8 levels).
void UnpackQ8_0(const uint8_t* row, int64_t K, int16_t* q, float* d) {
  const D16 d16;
  const D8I d8;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d16));
  for (int64_t b = 0; b < K / 32; ++b, row += 34, q += 32) {
    d[b] = GetHalf(row);
    const auto* qs = reinterpret_cast<const int8_t*>(row + 2);
    for (int64_t l = 0; l < 32; l += L) hn::StoreU(hn::PromoteTo(d16, hn::LoadU(d8, qs + l)), d16, q + l);
  }
}

// Q4_0 (18 bytes: d, 16 bytes: value l the low nibble of qs[l], l + 16 the
// high one, levels minus 8) and Q5_0 (22 bytes: d, 4 bytes of fifth bits
// (bit l for value l), 16 bytes of nibbles, levels minus 16).
template <bool kFifthBit>
void UnpackQ4Q5_0(const uint8_t* row, int64_t K, int16_t* q, float* d) {
  const D16 d16;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d16));
  constexpr int kBytes = kFifthBit ? 22 : 18;
  const auto low = hn::Set(d16, 0x0F), bias = hn::Set(d16, kFifthBit ? 16 : 8);
  for (int64_t b = 0; b < K / 32; ++b, row += kBytes, q += 32) {
    d[b] = GetHalf(row);
    const uint8_t* qs = row + (kFifthBit ? 6 : 2);
    for (int64_t l = 0; l < 16; l += L) {
      const auto v = LoadBytes(qs + l);
      hn::StoreU(hn::Sub(hn::And(v, low), bias), d16, q + l);
      hn::StoreU(hn::Sub(hn::ShiftRight<4>(v), bias), d16, q + 16 + l);
    }
    if (kFifthBit) {
      uint32_t qh;
      std::memcpy(&qh, row + 2, 4);
      for (int l = 0; l < 32; ++l) q[l] = static_cast<int16_t>(q[l] + (((qh >> l) & 1u) << 4));
    }
  }
}

void UnpackRowsImpl(GgmlType t, const uint8_t* rows, size_t row_bytes, int64_t R, int64_t K, int16_t* qw, float* dw,
                    float* dm, int16_t* mw) {
  for (int64_t r = 0; r < R; ++r) {
    const uint8_t* row = rows + static_cast<size_t>(r) * row_bytes;
    int16_t* q = qw + r * K;
    switch (t) {
      case GgmlType::Q4_K: UnpackQ45<false>(row, K, q, dw + r * (K / 256), dm + r * (K / 256), mw + r * (K / 256) * kMinSlot); break;
      case GgmlType::Q5_K: UnpackQ45<true>(row, K, q, dw + r * (K / 256), dm + r * (K / 256), mw + r * (K / 256) * kMinSlot); break;
      case GgmlType::Q6_K: UnpackQ6_K(row, K, q, dw + r * (K / 256)); break;
      case GgmlType::Q8_0: UnpackQ8_0(row, K, q, dw + r * (K / 32)); break;
      case GgmlType::Q4_0: UnpackQ4Q5_0<false>(row, K, q, dw + r * (K / 32)); break;
      case GgmlType::Q5_0: UnpackQ4Q5_0<true>(row, K, q, dw + r * (K / 32)); break;
      default: break;  // IntegerFormatOf admits only the types above
    }
  }
}

// sum + pairwise products of a and b: lane k gains a[2k]b[2k] + a[2k+1]b[2k+1]
// on x86; elsewhere the products are split between sum and *odd, whose
// total is the same.
template <class D32, class V16, class V32>
HWY_INLINE V32 MulAddPairs(D32 d32, V16 a, V16 b, V32 sum, V32& odd) {
#if HWY_TARGET == HWY_AVX3_DL
  // Highway 1.0.3 leaves avx512vnni out of this target's attributes (the
  // CPU has it: the target's runtime check requires VNNI), so the
  // instruction is written directly.
  (void)d32;
  (void)odd;
  auto acc = sum.raw;
  asm("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a.raw), "v"(b.raw));
  return V32{acc};
#else
  return hn::ReorderWidenMulAccumulate(d32, a, b, sum, odd);
#endif
}

// Tokens [t, t + kTok) against one unpacked row: groups [g0, g1), added to y.
template <int kTok>
HWY_INLINE void DotRow(int64_t G, bool mins, int64_t K, int64_t g0, int64_t g1, const int16_t* qw, const float* dw,
                       const float* dm, const int16_t* mw, const int16_t* qa, const float* da, const int16_t* sa,
                       float* y, int64_t ldy) {
  const hn::ScalableTag<int16_t> d16;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const hn::Repartition<float, decltype(d16)> df;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d16));
  const int64_t ng = K / G;
  const int16_t* a0 = qa;
  const int16_t* a1 = qa + (kTok > 1 ? K : 0);
  const int16_t* a2 = qa + (kTok > 2 ? 2 * K : 0);
  const int16_t* a3 = qa + (kTok > 3 ? 3 * K : 0);
  auto f0 = hn::Zero(df), f1 = hn::Zero(df), f2 = hn::Zero(df), f3 = hn::Zero(df);
  for (int64_t g = g0; g < g1; ++g) {
    auto s0 = hn::Zero(d32), s1 = hn::Zero(d32), s2 = hn::Zero(d32), s3 = hn::Zero(d32);
    auto o0 = hn::Zero(d32), o1 = hn::Zero(d32), o2 = hn::Zero(d32), o3 = hn::Zero(d32);
    const int64_t base = g * G;
    for (int64_t i = base; i < base + G; i += L) {
      const auto w = hn::LoadU(d16, qw + i);
      s0 = MulAddPairs(d32, w, hn::LoadU(d16, a0 + i), s0, o0);
      if (kTok > 1) s1 = MulAddPairs(d32, w, hn::LoadU(d16, a1 + i), s1, o1);
      if (kTok > 2) s2 = MulAddPairs(d32, w, hn::LoadU(d16, a2 + i), s2, o2);
      if (kTok > 3) s3 = MulAddPairs(d32, w, hn::LoadU(d16, a3 + i), s3, o3);
    }
    const float wd = dw[g];
    f0 = hn::MulAdd(hn::ConvertTo(df, hn::Add(s0, o0)), hn::Set(df, wd * da[g]), f0);
    if (kTok > 1) f1 = hn::MulAdd(hn::ConvertTo(df, hn::Add(s1, o1)), hn::Set(df, wd * da[ng + g]), f1);
    if (kTok > 2) f2 = hn::MulAdd(hn::ConvertTo(df, hn::Add(s2, o2)), hn::Set(df, wd * da[2 * ng + g]), f2);
    if (kTok > 3) f3 = hn::MulAdd(hn::ConvertTo(df, hn::Add(s3, o3)), hn::Set(df, wd * da[3 * ng + g]), f3);
    if (mins) {
      // G is 256 here, so group g is also the activation's group.
      s0 = s1 = s2 = s3 = o0 = o1 = o2 = o3 = hn::Zero(d32);
      const int16_t* m = mw + g * kMinSlot;
      const int16_t* b0 = sa + g * kMinSlot;
      const int64_t sstride = ng * kMinSlot;
      for (int64_t i = 0; i < 8; i += L) {
        const auto w = hn::LoadU(d16, m + i);
        s0 = MulAddPairs(d32, w, hn::LoadU(d16, b0 + i), s0, o0);
        if (kTok > 1) s1 = MulAddPairs(d32, w, hn::LoadU(d16, b0 + sstride + i), s1, o1);
        if (kTok > 2) s2 = MulAddPairs(d32, w, hn::LoadU(d16, b0 + 2 * sstride + i), s2, o2);
        if (kTok > 3) s3 = MulAddPairs(d32, w, hn::LoadU(d16, b0 + 3 * sstride + i), s3, o3);
      }
      const float md = dm[g];
      f0 = hn::NegMulAdd(hn::ConvertTo(df, hn::Add(s0, o0)), hn::Set(df, md * da[g]), f0);
      if (kTok > 1) f1 = hn::NegMulAdd(hn::ConvertTo(df, hn::Add(s1, o1)), hn::Set(df, md * da[ng + g]), f1);
      if (kTok > 2) f2 = hn::NegMulAdd(hn::ConvertTo(df, hn::Add(s2, o2)), hn::Set(df, md * da[2 * ng + g]), f2);
      if (kTok > 3) f3 = hn::NegMulAdd(hn::ConvertTo(df, hn::Add(s3, o3)), hn::Set(df, md * da[3 * ng + g]), f3);
    }
  }
  y[0] += hn::GetLane(hn::SumOfLanes(df, f0));
  if (kTok > 1) y[ldy] += hn::GetLane(hn::SumOfLanes(df, f1));
  if (kTok > 2) y[2 * ldy] += hn::GetLane(hn::SumOfLanes(df, f2));
  if (kTok > 3) y[3 * ldy] += hn::GetLane(hn::SumOfLanes(df, f3));
}

void DotTileImpl(int G, bool mins, int64_t K, int64_t g0, int64_t g1, const int16_t* qw, const float* dw,
                 const float* dm, const int16_t* mw, int64_t R, const int16_t* qa, const float* da, const int16_t* sa,
                 int64_t T, float* y, int64_t ldy) {
  const int64_t ng = K / G;
  const int64_t nm = mins ? K / 256 : 0;
  int64_t t = 0;
  for (; t + 4 <= T; t += 4) {
    for (int64_t r = 0; r < R; ++r) {
      DotRow<4>(G, mins, K, g0, g1, qw + r * K, dw + r * ng, mins ? dm + r * nm : nullptr,
                mins ? mw + r * nm * kMinSlot : nullptr, qa + t * K, da + t * ng, mins ? sa + t * nm * kMinSlot : nullptr,
                y + t * ldy + r, ldy);
    }
  }
  for (; t < T; ++t) {
    for (int64_t r = 0; r < R; ++r) {
      DotRow<1>(G, mins, K, g0, g1, qw + r * K, dw + r * ng, mins ? dm + r * nm : nullptr,
                mins ? mw + r * nm * kMinSlot : nullptr, qa + t * K, da + t * ng, mins ? sa + t * nm * kMinSlot : nullptr,
                y + t * ldy + r, ldy);
    }
  }
}

// ---------------------------------------------------------------- VNNI
// On AVX-512 VNNI machines vpdpbusd multiplies 64 unsigned by 64 signed
// bytes and adds each four products to an int32 lane, so a lane covers four
// values and one instruction 64 products. Activations enter as q + 128
// (unsigned); each weight row carries per lane the correction -128 * (sum of
// its four levels) as the accumulator's start, and the lane's F32 scale.

bool HasVnniImpl() { return HWY_TARGET == HWY_AVX3_DL; }

#if HWY_TARGET == HWY_AVX3_DL
HWY_INLINE __m512i Dpbusd(__m512i acc, __m512i u8, __m512i s8) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
  return acc;
}

// 32 bytes of nibbles: the low ones to lo, the high ones to hi (0..15).
HWY_INLINE void SplitNibbles(const uint8_t* p, __m256i* lo, __m256i* hi) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i m = _mm256_set1_epi8(0x0F);
  *lo = _mm256_and_si256(v, m);
  *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
}

// Asks for the block kAhead bytes further on: the weights stream from
// memory once per product, and with few tokens there is too little work
// between blocks for the hardware prefetcher alone to keep up.
HWY_INLINE void Prefetch(const uint8_t* p, int block_bytes) {
  constexpr int kAhead = 2048;
  for (int o = 0; o < block_bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + kAhead + o), _MM_HINT_T0);
}

HWY_INLINE void Store32(int8_t* q, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), v); }

// 16 bytes of nibbles: values l (low) and l + 16 (high), minus bias.
HWY_INLINE __m256i Nibbles16(const uint8_t* p, int bias) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i m = _mm_set1_epi8(0x0F);
  const __m256i both = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
  return _mm256_sub_epi8(both, _mm256_set1_epi8(static_cast<char>(bias)));
}

// One row's int8 levels into q and the F32 scale of each four values into s
// (and for Q4_K/Q5_K dmin * m of each 32 into m), by type.
void UnpackRowI8(GgmlType t, const uint8_t* p, int64_t K, int8_t* q, float* s, float* m) {
  switch (t) {
    case GgmlType::Q4_K: case GgmlType::Q5_K: {
      const bool five = t == GgmlType::Q5_K;
      const int bytes = five ? 176 : 144, qs_at = five ? 48 : 16;
      for (int64_t b = 0; b < K / 256; ++b, p += bytes, q += 256, s += 64, m += 8) {
        Prefetch(p, bytes);
        const float d = GetHalf(p), dmin = GetHalf(p + 2);
        for (int j = 0; j < 8; ++j) {
          uint8_t sc, mn;
          UnpackScaleMin6(j, p + 4, &sc, &mn);
          _mm256_storeu_ps(s + 8 * j, _mm256_set1_ps(d * static_cast<float>(sc)));
          m[j] = dmin * static_cast<float>(mn);
        }
        const __m256i qh = five ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16)) : _mm256_setzero_si256();
        for (int c = 0; c < 4; ++c) {
          __m256i lo, hi;
          SplitNibbles(p + qs_at + 32 * c, &lo, &hi);
          if (five) {  // bit 2c of qh[l] is value 64c + l's fifth, bit 2c + 1 value 64c + 32 + l's
            const __m256i sixteen = _mm256_set1_epi8(16);
            const __mmask32 bl = _mm256_test_epi8_mask(qh, _mm256_set1_epi8(static_cast<char>(1 << (2 * c))));
            const __mmask32 bh = _mm256_test_epi8_mask(qh, _mm256_set1_epi8(static_cast<char>(2 << (2 * c))));
            lo = _mm256_mask_add_epi8(lo, bl, lo, sixteen);
            hi = _mm256_mask_add_epi8(hi, bh, hi, sixteen);
          }
          Store32(q + 64 * c, lo);
          Store32(q + 64 * c + 32, hi);
        }
      }
      return;
    }
    case GgmlType::Q6_K:
      for (int64_t b = 0; b < K / 256; ++b, p += 210, q += 256, s += 64) {
        Prefetch(p, 210);
        const float d = GetHalf(p + 208);
        const auto* sc = reinterpret_cast<const int8_t*>(p + 192);
        for (int j = 0; j < 16; ++j) _mm_storeu_ps(s + 4 * j, _mm_set1_ps(d * static_cast<float>(sc[j])));
        const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3), bias = _mm256_set1_epi8(32);
        for (int h = 0; h < 2; ++h) {
          const uint8_t* ql = p + 64 * h;
          const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
          const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
          const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 128 + 32 * h));
          // (x >> k) & mask on bytes: 16-bit shifts, then the byte mask.
          auto hi2 = [&](int k) { return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, k), m2), 4); };
          int8_t* o = q + 128 * h;
          Store32(o, _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(a, m4), hi2(0)), bias));
          Store32(o + 32, _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(c, m4), hi2(2)), bias));
          Store32(o + 64, _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), m4), hi2(4)), bias));
          Store32(o + 96, _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), m4), hi2(6)), bias));
        }
      }
      return;
    case GgmlType::Q8_0:
      for (int64_t b = 0; b < K / 32; ++b, p += 34, q += 32, s += 8) {
        Prefetch(p, 34);
        _mm256_storeu_ps(s, _mm256_set1_ps(GetHalf(p)));
        Store32(q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2)));
      }
      return;
    case GgmlType::Q4_0:
      for (int64_t b = 0; b < K / 32; ++b, p += 18, q += 32, s += 8) {
        _mm256_storeu_ps(s, _mm256_set1_ps(GetHalf(p)));
        Store32(q, Nibbles16(p + 2, 8));
      }
      return;
    case GgmlType::Q5_0:
      for (int64_t b = 0; b < K / 32; ++b, p += 22, q += 32, s += 8) {
        _mm256_storeu_ps(s, _mm256_set1_ps(GetHalf(p)));
        uint32_t qh;
        std::memcpy(&qh, p + 2, 4);
        const __m256i v = Nibbles16(p + 6, 16);  // bit l of qh is value l's fifth
        Store32(q, _mm256_mask_add_epi8(v, static_cast<__mmask32>(qh), v, _mm256_set1_epi8(16)));
      }
      return;
    default:
      return;
  }
}
#endif

void UnpackRowsI8Impl(GgmlType t, const uint8_t* rows, size_t row_bytes, int64_t R, int64_t K, int8_t* qw, float* ws,
                      int32_t* init, float* mins) {
#if HWY_TARGET == HWY_AVX3_DL
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t r = 0; r < R; ++r) {
    int8_t* q = qw + r * K;
    UnpackRowI8(t, rows + static_cast<size_t>(r) * row_bytes, K, q, ws + r * (K / 4),
                mins != nullptr ? mins + r * (K / 32) : nullptr);
    // Each lane's start: -128 * the sum of its four levels (1 * level, by
    // the same instruction the product uses).
    int32_t* in = init + r * (K / 4);
    for (int64_t c = 0; c < K / 64; ++c) {
      const __m512i sum4 = Dpbusd(_mm512_setzero_si512(), ones, _mm512_loadu_si512(q + 64 * c));
      _mm512_storeu_si512(in + 16 * c, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum4, 7)));
    }
  }
#else
  // Only dispatched where HasVnni() holds.
  (void)t, (void)rows, (void)row_bytes, (void)R, (void)K, (void)qw, (void)ws, (void)init, (void)mins;
#endif
}

#if HWY_TARGET == HWY_AVX3_DL

// Rows [r, r + kRows) (rows K apart in q, K/4 in ws and init, K/32 in
// mrow) against tokens [t, t + kTok) over 64-value chunks [c0, c1): each
// weight load serves kTok tokens and each activation load kRows rows.
// kQ8K: activations scaled per 256 values (whole groups of four chunks,
// each group's sum scaled once), else per lane (Q8_0).
template <int kRows, int kTok, bool kQ8K, bool kMins>
HWY_INLINE void DotI8(int64_t K, int64_t c0, int64_t c1, const int8_t* q, const float* ws, const int32_t* init,
                      const float* mrow, const uint8_t* au, const float* as, const float* bs, float* y, int64_t ldy) {
  const int64_t nas = kQ8K ? K / 256 : K / 4, nb = K / 32, nl = K / 4;
  __m512 acc[kRows][kTok];
  for (int i = 0; i < kRows; ++i)
    for (int j = 0; j < kTok; ++j) acc[i][j] = _mm512_setzero_ps();
  if (kQ8K) {
    for (int64_t g = c0 / 4; g < c1 / 4; ++g) {
      __m512 grp[kRows][kTok];
      for (int i = 0; i < kRows; ++i)
        for (int j = 0; j < kTok; ++j) grp[i][j] = _mm512_setzero_ps();
      for (int64_t c = 4 * g; c < 4 * g + 4; ++c) {
        __m512i w[kRows], start[kRows];
        __m512 sc[kRows];
        for (int i = 0; i < kRows; ++i) {
          w[i] = _mm512_loadu_si512(q + i * K + 64 * c);
          start[i] = _mm512_loadu_si512(init + i * nl + 16 * c);
          sc[i] = _mm512_loadu_ps(ws + i * nl + 16 * c);
        }
        for (int j = 0; j < kTok; ++j) {
          const __m512i a = _mm512_loadu_si512(au + j * K + 64 * c);
          for (int i = 0; i < kRows; ++i) {
            grp[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(Dpbusd(start[i], a, w[i])), sc[i], grp[i][j]);
          }
        }
      }
      for (int j = 0; j < kTok; ++j) {
        const __m512 da = _mm512_set1_ps(as[j * nas + g]);
        for (int i = 0; i < kRows; ++i) acc[i][j] = _mm512_fmadd_ps(grp[i][j], da, acc[i][j]);
      }
    }
  } else {
    for (int64_t c = c0; c < c1; ++c) {
      __m512i w[kRows], start[kRows];
      __m512 sc[kRows];
      for (int i = 0; i < kRows; ++i) {
        w[i] = _mm512_loadu_si512(q + i * K + 64 * c);
        start[i] = _mm512_loadu_si512(init + i * nl + 16 * c);
        sc[i] = _mm512_loadu_ps(ws + i * nl + 16 * c);
      }
      for (int j = 0; j < kTok; ++j) {
        const __m512i a = _mm512_loadu_si512(au + j * K + 64 * c);
        const __m512 da = _mm512_loadu_ps(as + j * nas + 16 * c);
        for (int i = 0; i < kRows; ++i) {
          acc[i][j] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(Dpbusd(start[i], a, w[i])), sc[i]), da,
                                      acc[i][j]);
        }
      }
    }
  }
  if (kMins) {  // minus sum over 32-value sub-blocks of (dmin * m) * (da * bsum)
    for (int64_t b = 2 * c0; b < 2 * c1; b += 16) {
      const __mmask16 k = b + 16 <= 2 * c1 ? static_cast<__mmask16>(0xFFFF)
                                           : static_cast<__mmask16>((1u << (2 * c1 - b)) - 1u);
      for (int i = 0; i < kRows; ++i) {
        const __m512 m = _mm512_maskz_loadu_ps(k, mrow + i * nb + b);
        for (int j = 0; j < kTok; ++j) {
          acc[i][j] = _mm512_fnmadd_ps(m, _mm512_maskz_loadu_ps(k, bs + j * nb + b), acc[i][j]);
        }
      }
    }
  }
  for (int i = 0; i < kRows; ++i)
    for (int j = 0; j < kTok; ++j) y[j * ldy + i] += _mm512_reduce_add_ps(acc[i][j]);
}

template <bool kQ8K, bool kMins>
void DotTileI8Typed(int64_t K, int64_t c0, int64_t c1, const int8_t* qw, const float* ws, const int32_t* init,
                    const float* mw, int64_t R, const uint8_t* au, const float* as, const float* bs, int64_t T,
                    float* y, int64_t ldy) {
  const int64_t nas = kQ8K ? K / 256 : K / 4, nb = K / 32, nl = K / 4;
  auto rows = [&](auto rows_tag, auto tok_tag, int64_t r, int64_t t) {
    constexpr int kR = decltype(rows_tag)::value, kT = decltype(tok_tag)::value;
    DotI8<kR, kT, kQ8K, kMins>(K, c0, c1, qw + r * K, ws + r * nl, init + r * nl, kMins ? mw + r * nb : nullptr,
                               au + t * K, as + t * nas, kMins ? bs + t * nb : nullptr, y + t * ldy + r, ldy);
  };
  using One = std::integral_constant<int, 1>;
  using Two = std::integral_constant<int, 2>;
  using Four = std::integral_constant<int, 4>;
  int64_t t = 0;
  for (; t + 4 <= T; t += 4) {
    int64_t r = 0;
    for (; r + 2 <= R; r += 2) rows(Two{}, Four{}, r, t);
    for (; r < R; ++r) rows(One{}, Four{}, r, t);
  }
  for (; t < T; ++t) {
    int64_t r = 0;
    for (; r + 2 <= R; r += 2) rows(Two{}, One{}, r, t);
    for (; r < R; ++r) rows(One{}, One{}, r, t);
  }
}
#endif

void DotTileI8Impl(int G, bool mins, int64_t K, int64_t c0, int64_t c1, const int8_t* qw, const float* ws,
                   const int32_t* init, const float* mw, int64_t R, const uint8_t* au, const float* as,
                   const float* bs, int64_t T, float* y, int64_t ldy) {
#if HWY_TARGET == HWY_AVX3_DL
  if (G == 32) {
    DotTileI8Typed<false, false>(K, c0, c1, qw, ws, init, mw, R, au, as, bs, T, y, ldy);
  } else if (mins) {
    DotTileI8Typed<true, true>(K, c0, c1, qw, ws, init, mw, R, au, as, bs, T, y, ldy);
  } else {
    DotTileI8Typed<true, false>(K, c0, c1, qw, ws, init, mw, R, au, as, bs, T, y, ldy);
  }
#else
  // Only dispatched where HasVnni() holds.
  (void)G, (void)mins, (void)K, (void)c0, (void)c1, (void)qw, (void)ws, (void)init, (void)mw, (void)R, (void)au;
  (void)as, (void)bs, (void)T, (void)y, (void)ldy;
#endif
}

}  // namespace qforge::intmm::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace qforge::intmm {

HWY_EXPORT(UnpackRowsImpl);
HWY_EXPORT(DotTileImpl);
HWY_EXPORT(HasVnniImpl);
HWY_EXPORT(UnpackRowsI8Impl);
HWY_EXPORT(DotTileI8Impl);

bool IntegerFormatOf(GgmlType t, WeightFormat* f) {
  switch (t) {
    case GgmlType::Q4_K: case GgmlType::Q5_K:
      *f = {256, true, ActType::kQ8_K};
      return true;
    case GgmlType::Q6_K:
      *f = {256, false, ActType::kQ8_K};
      return true;
    case GgmlType::Q8_0: case GgmlType::Q4_0: case GgmlType::Q5_0:
      *f = {32, false, ActType::kQ8_0};
      return true;
    default:
      return false;
  }
}

void UnpackRows(GgmlType t, const uint8_t* rows, size_t row_bytes, int64_t R, int64_t K, int16_t* qw, float* dw,
                float* dm, int16_t* mw) {
  HWY_DYNAMIC_DISPATCH(UnpackRowsImpl)(t, rows, row_bytes, R, K, qw, dw, dm, mw);
}

void QuantizeActivations(ActType a, const float* x, int64_t T, int64_t K, int16_t* qa, float* da, int16_t* sa) {
  const int64_t G = a == ActType::kQ8_K ? 256 : 32;
  for (int64_t r = 0; r < T; ++r) {
    for (int64_t b = 0; b < K / G; ++b) {
      const float* v = x + r * K + b * G;
      int16_t* q = qa + r * K + b * G;
      float& d = da[r * (K / G) + b];
      float amax = 0.0f;
      const float max = SignedAbsMax(v, static_cast<int>(G), &amax);
      if (a == ActType::kQ8_K) {
        int16_t* s = sa + (r * (K / 256) + b) * kMinSlot;
        std::fill_n(s, kMinSlot, int16_t{0});
        if (amax == 0.0f) {
          d = 0.0f;
          std::fill_n(q, G, int16_t{0});
          continue;
        }
        // quantize_row_q8_K: the signed extreme maps to -127.
        const float iscale = -127.0f / max;
        for (int64_t j = 0; j < G; ++j) q[j] = static_cast<int16_t>(std::min(127, NearestInt(iscale * v[j])));
        for (int j = 0; j < 8; ++j) {
          int sum = 0;
          for (int i = 0; i < 32; ++i) sum += q[32 * j + i];
          s[j] = static_cast<int16_t>(sum);
        }
        d = 1.0f / iscale;
      } else {
        // quantize_row_q8_0: scale amax / 127, stored as F16.
        const float dd = amax / 127.0f;
        const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
        for (int64_t j = 0; j < G; ++j) q[j] = static_cast<int16_t>(NearestInt(v[j] * id));
        d = HalfToFloat(FloatToHalf(dd));
      }
    }
  }
}

void DotTile(const WeightFormat& f, int64_t K, int64_t g0, int64_t g1, const int16_t* qw, const float* dw,
             const float* dm, const int16_t* mw, int64_t R, const int16_t* qa, const float* da, const int16_t* sa,
             int64_t T, float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(DotTileImpl)(f.group, f.mins, K, g0, g1, qw, dw, dm, mw, R, qa, da, sa, T, y, ldy);
}

bool HasVnni() { return HWY_DYNAMIC_DISPATCH(HasVnniImpl)(); }

void UnpackRowsI8(GgmlType t, const uint8_t* rows, size_t row_bytes, int64_t R, int64_t K, int8_t* qw, float* ws,
                  int32_t* init, float* mins) {
  HWY_DYNAMIC_DISPATCH(UnpackRowsI8Impl)(t, rows, row_bytes, R, K, qw, ws, init, mins);
}

void QuantizeActivationsU8(ActType a, const float* x, int64_t T, int64_t K, uint8_t* au, float* as, float* bs) {
  const int64_t G = a == ActType::kQ8_K ? 256 : 32;
  std::vector<int16_t> q(static_cast<size_t>(K)), sums(static_cast<size_t>(K / 256 + 1) * kMinSlot);
  std::vector<float> d(static_cast<size_t>(K / G));
  for (int64_t r = 0; r < T; ++r) {
    QuantizeActivations(a, x + r * K, 1, K, q.data(), d.data(), sums.data());
    for (int64_t i = 0; i < K; ++i) au[r * K + i] = static_cast<uint8_t>(q[static_cast<size_t>(i)] + 128);
    if (a == ActType::kQ8_0) {
      for (int64_t l = 0; l < K / 4; ++l) as[r * (K / 4) + l] = d[static_cast<size_t>(l / 8)];
    } else {
      for (int64_t g = 0; g < K / 256; ++g) {
        as[r * (K / 256) + g] = d[static_cast<size_t>(g)];
        for (int j = 0; j < 8; ++j) {
          bs[r * (K / 32) + 8 * g + j] = d[static_cast<size_t>(g)] * static_cast<float>(sums[static_cast<size_t>(g * kMinSlot + j)]);
        }
      }
    }
  }
}

void DotTileI8(const WeightFormat& f, int64_t K, int64_t c0, int64_t c1, const int8_t* qw, const float* ws,
               const int32_t* init, const float* mw, int64_t R, const uint8_t* au, const float* as, const float* bs,
               int64_t T, float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(DotTileI8Impl)(f.group, f.mins, K, c0, c1, qw, ws, init, mw, R, au, as, bs, T, y, ldy);
}

}  // namespace qforge::intmm
#endif  // HWY_ONCE
