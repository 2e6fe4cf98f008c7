// Compiled once per Highway target (foreach_target re-includes this file).
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "numeric/half.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "codecs/simd_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace qforge::simd::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// fp32 -> fp16 with the reference's arithmetic (see numeric/half.h).
void EncodeF16Impl(const float* x, uint16_t* out, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<uint16_t, decltype(df)> du16;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const auto to_inf = hn::Set(df, FloatFromBits(0x77800000));
  const auto to_zero = hn::Set(df, FloatFromBits(0x08800000));
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto f = hn::LoadU(df, x + i);
    auto base = hn::Mul(hn::Mul(hn::Abs(f), to_inf), to_zero);
    const auto w = hn::BitCast(du, f);
    const auto shl1 = hn::ShiftLeft<1>(w);
    const auto sign = hn::And(w, hn::Set(du, 0x80000000u));
    auto bias = hn::And(shl1, hn::Set(du, 0xFF000000u));
    bias = hn::Max(bias, hn::Set(du, 0x71000000u));
    base = hn::Add(hn::BitCast(df, hn::Add(hn::ShiftRight<1>(bias), hn::Set(du, 0x07800000u))), base);
    const auto bits = hn::BitCast(du, base);
    const auto exp_bits = hn::And(hn::ShiftRight<13>(bits), hn::Set(du, 0x00007C00u));
    const auto mant_bits = hn::And(bits, hn::Set(du, 0x00000FFFu));
    const auto nonsign = hn::Add(exp_bits, mant_bits);
    const auto is_nan = hn::Gt(shl1, hn::Set(du, 0xFF000000u));
    const auto r = hn::Or(hn::ShiftRight<16>(sign), hn::IfThenElse(is_nan, hn::Set(du, 0x7E00u), nonsign));
    hn::StoreU(hn::DemoteTo(du16, hn::BitCast(di, r)), du16, out + i);
  }
  for (; i < n; ++i) out[i] = FloatToHalf(x[i]);
}

void DecodeF16Impl(const uint16_t* in, float* y, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::Rebind<uint16_t, decltype(df)> du16;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto w = hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(du16, in + i)));
    const auto sign = hn::And(w, hn::Set(du, 0x80000000u));
    const auto two_w = hn::Add(w, w);
    const auto normalized = hn::Mul(hn::BitCast(df, hn::Add(hn::ShiftRight<4>(two_w), hn::Set(du, 0xE0u << 23))),
                                    hn::Set(df, FloatFromBits(0x07800000u)));
    const auto denormalized =
        hn::Sub(hn::BitCast(df, hn::Or(hn::ShiftRight<17>(two_w), hn::Set(du, 126u << 23))), hn::Set(df, 0.5f));
    const auto small = hn::Lt(two_w, hn::Set(du, 1u << 27));
    const auto r = hn::Or(sign, hn::IfThenElse(small, hn::BitCast(du, denormalized), hn::BitCast(du, normalized)));
    hn::StoreU(hn::BitCast(df, r), df, y + i);
  }
  for (; i < n; ++i) y[i] = HalfToFloat(in[i]);
}

void EncodeBF16Impl(const float* x, uint16_t* out, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<uint16_t, decltype(df)> du16;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto u = hn::BitCast(du, hn::LoadU(df, x + i));
    const auto is_nan = hn::Gt(hn::And(u, hn::Set(du, 0x7FFFFFFFu)), hn::Set(du, 0x7F800000u));
    const auto nan_bits = hn::Or(hn::ShiftRight<16>(u), hn::Set(du, 0x40u));
    const auto odd = hn::And(hn::ShiftRight<16>(u), hn::Set(du, 1u));
    const auto rounded = hn::ShiftRight<16>(hn::Add(hn::Add(u, hn::Set(du, 0x7FFFu)), odd));
    const auto r = hn::IfThenElse(is_nan, nan_bits, rounded);
    hn::StoreU(hn::DemoteTo(du16, hn::BitCast(di, r)), du16, out + i);
  }
  for (; i < n; ++i) out[i] = FloatToBf16(x[i]);
}

// Q8_0 with roundf's half-away-from-zero: trunc plus one step when the
// fraction reaches one half (exact for |v| < 2^23).
void EncodeQ8_0Impl(const float* x, uint8_t* out, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const size_t N = hn::Lanes(df);
  int32_t q[32];
  for (int64_t b = 0; b < n / 32; ++b, x += 32, out += 34) {
    auto vmax = hn::Zero(df);
    for (size_t j = 0; j < 32; j += N) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, x + j)));
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t dh = FloatToHalf(d);
    std::memcpy(out, &dh, 2);
    const auto vid = hn::Set(df, id);
    for (size_t j = 0; j < 32; j += N) {
      const auto v = hn::Mul(hn::LoadU(df, x + j), vid);
      const auto t = hn::Trunc(v);
      const auto frac = hn::Abs(hn::Sub(v, t));
      const auto step = hn::CopySign(hn::Set(df, 1.0f), v);
      const auto r = hn::IfThenElse(hn::Ge(frac, hn::Set(df, 0.5f)), hn::Add(t, step), t);
      hn::StoreU(hn::ConvertTo(di, r), di, q + j);
    }
    for (int j = 0; j < 32; ++j) out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(q[j]));
  }
}

// Nearest-level search without branches: the bracket [lo, hi] is found by
// counting levels <= v (exact comparisons), then the reference's float
// comparison of the two distances picks the side.
void NearestLevelIndicesImpl(const float* x, float scale, const int8_t* levels, uint8_t* idx, int n) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const int N = static_cast<int>(hn::Lanes(df));
  int32_t tmp[64];
  float lv[16];
  for (int k = 0; k < 16; ++k) lv[k] = static_cast<float>(levels[k]);
  const auto vscale = hn::Set(df, scale);
  int j = 0;
  for (; j + N <= n; j += N) {
    const auto v = hn::Mul(vscale, hn::LoadU(df, x + j));
    auto count = hn::Zero(di);
    auto tlo = hn::Set(df, lv[0]);
    auto thi = hn::Set(df, lv[15]);
    for (int k = 0; k < 16; ++k) {
      const auto t = hn::Set(df, lv[k]);
      const auto le = hn::Le(t, v);
      count = hn::Add(count, hn::IfThenElseZero(hn::RebindMask(di, le), hn::Set(di, 1)));
      tlo = hn::IfThenElse(le, t, tlo);
    }
    for (int k = 15; k >= 0; --k) {
      const auto t = hn::Set(df, lv[k]);
      thi = hn::IfThenElse(hn::Gt(t, v), t, thi);
    }
    const auto hi = count;
    const auto lo = hn::Sub(count, hn::Set(di, 1));
    const auto pick_lo = hn::Lt(hn::Sub(v, tlo), hn::Sub(thi, v));
    auto r = hn::IfThenElse(hn::RebindMask(di, pick_lo), lo, hi);
    // Outside the table: the end indices.
    r = hn::IfThenElse(hn::RebindMask(di, hn::Le(v, hn::Set(df, lv[0]))), hn::Zero(di), r);
    r = hn::IfThenElse(hn::RebindMask(di, hn::Ge(v, hn::Set(df, lv[15]))), hn::Set(di, 15), r);
    hn::StoreU(r, di, tmp);
    for (int l = 0; l < N; ++l) idx[j + l] = static_cast<uint8_t>(tmp[l]);
  }
  for (; j < n; ++j) {
    const float v = scale * x[j];
    int r;
    if (v <= lv[0]) {
      r = 0;
    } else if (v >= lv[15]) {
      r = 15;
    } else {
      int lo = 0, hi = 15;
      while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (v < lv[mid]) hi = mid;
        else lo = mid;
      }
      r = v - lv[hi - 1] < lv[hi] - v ? hi - 1 : hi;
    }
    idx[j] = static_cast<uint8_t>(r);
  }
}


// MakeQkxQuants (scale_search.h) for nsub sub-blocks at once, one per lane:
// every lane runs the scalar algorithm's exact operation sequence on its own
// sub-block, so sequential sums stay sequential and results are identical.
// Data are transposed: xt[i * nsub + k] is element i of sub-block k.
void MakeQkxBatchImpl(int nsub, int n, int nmax, const float* xt, const float* wt, uint8_t* Lt, float* scales,
                      float* the_mins, float rmin, float rdelta, int nstep, bool use_mad, bool qkx3) {
  const hn::CappedTag<float, 8> df;
  const hn::RebindToSigned<decltype(df)> di;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto zero = hn::Zero(df);
  const auto fnmax = hn::Set(df, static_cast<float>(nmax));
  const auto magic = hn::Set(df, 12582912.0f);
  auto nearest_clamped = [&](decltype(zero) v) {
    const auto bits = hn::BitCast(di, hn::Add(v, magic));
    auto l = hn::Sub(hn::And(bits, hn::Set(di, 0x007fffff)), hn::Set(di, 0x00400000));
    l = hn::Min(hn::Max(l, hn::Zero(di)), hn::Set(di, nmax));
    return hn::ConvertTo(df, l);
  };
  auto error_term = [&](decltype(zero) diff) { return use_mad ? hn::Abs(diff) : hn::Mul(diff, diff); };
  float laux[64 * 8];
  for (int g = 0; g < nsub; g += N) {
    auto x_at = [&](int i) { return hn::LoadU(df, xt + i * nsub + g); };
    auto w_at = [&](int i) { return hn::LoadU(df, wt + i * nsub + g); };
    auto min = x_at(0), max = x_at(0);
    auto sum_w = w_at(0);
    auto sum_x = hn::Mul(sum_w, x_at(0));
    for (int i = 1; i < n; ++i) {
      const auto x = x_at(i), w = w_at(i);
      min = hn::IfThenElse(hn::Lt(x, min), x, min);
      max = hn::IfThenElse(hn::Gt(x, max), x, max);
      sum_w = hn::Add(sum_w, w);
      sum_x = hn::Add(sum_x, hn::Mul(w, x));
    }
    min = hn::IfThenElse(hn::Gt(min, zero), zero, min);
    const auto degenerate = qkx3 ? hn::Le(max, min) : hn::Eq(max, min);
    const auto range = hn::Sub(max, min);
    auto iscale = hn::Div(fnmax, range);
    auto scale = hn::Div(hn::Set(df, 1.0f), iscale);
    auto best_error = zero;
    float lbest[64 * 8];
    for (int i = 0; i < n; ++i) {
      const auto x = x_at(i);
      const auto l = nearest_clamped(hn::Mul(iscale, hn::Sub(x, min)));
      hn::StoreU(l, df, lbest + i * N);
      const auto diff = hn::Sub(hn::Add(hn::Mul(scale, l), min), x);
      best_error = hn::Add(best_error, hn::Mul(w_at(i), error_term(diff)));
    }
    for (int is = 0; is <= nstep && nstep >= 1; ++is) {
      const float numerator = rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax);
      // min (and so the range) moves when a step wins, as in the scalar code.
      iscale = hn::Div(hn::Set(df, numerator), hn::Sub(max, min));
      auto sum_l = zero, sum_l2 = zero, sum_xl = zero;
      for (int i = 0; i < n; ++i) {
        const auto x = x_at(i), w = w_at(i);
        const auto l = nearest_clamped(hn::Mul(iscale, hn::Sub(x, min)));
        hn::StoreU(l, df, laux + i * N);
        const auto wl = hn::Mul(w, l);
        sum_l = hn::Add(sum_l, wl);
        sum_l2 = hn::Add(sum_l2, hn::Mul(wl, l));
        sum_xl = hn::Add(sum_xl, hn::Mul(wl, x));
      }
      const auto D = hn::Sub(hn::Mul(sum_w, sum_l2), hn::Mul(sum_l, sum_l));
      auto this_scale = hn::Div(hn::Sub(hn::Mul(sum_w, sum_xl), hn::Mul(sum_x, sum_l)), D);
      auto this_min = hn::Div(hn::Sub(hn::Mul(sum_l2, sum_x), hn::Mul(sum_l, sum_xl)), D);
      const auto positive_min = hn::Gt(this_min, zero);
      this_min = hn::IfThenElse(positive_min, zero, this_min);
      this_scale = hn::IfThenElse(positive_min, hn::Div(sum_xl, sum_l2), this_scale);
      auto cur_error = zero;
      for (int i = 0; i < n; ++i) {
        const auto l = hn::LoadU(df, laux + i * N);
        const auto diff = hn::Sub(hn::Add(hn::Mul(this_scale, l), this_min), x_at(i));
        cur_error = hn::Add(cur_error, hn::Mul(w_at(i), error_term(diff)));
      }
      const auto take = hn::AndNot(degenerate, hn::And(hn::Gt(D, zero), hn::Lt(cur_error, best_error)));
      if (hn::AllFalse(df, take)) continue;
      for (int i = 0; i < n; ++i) {
        const auto cur = hn::LoadU(df, lbest + i * N);
        hn::StoreU(hn::IfThenElse(take, hn::LoadU(df, laux + i * N), cur), df, lbest + i * N);
      }
      best_error = hn::IfThenElse(take, cur_error, best_error);
      scale = hn::IfThenElse(take, this_scale, scale);
      min = hn::IfThenElse(take, this_min, min);
    }
    scale = hn::IfThenElse(degenerate, zero, scale);
    hn::StoreU(scale, df, scales + g);
    hn::StoreU(hn::Neg(min), df, the_mins + g);
    alignas(64) float deg[8];
    hn::StoreU(hn::IfThenElse(degenerate, hn::Set(df, 1.0f), zero), df, deg);
    for (int i = 0; i < n; ++i) {
      for (int k = 0; k < N; ++k) {
        Lt[i * nsub + g + k] = deg[k] != 0.0f ? 0 : static_cast<uint8_t>(lbest[i * N + k]);
      }
    }
  }
}

// MakeQxQuants with rmse_type 1 (weights wt, or x^2 when wt is null) for
// nsub sub-blocks at once, one per lane, transposed like MakeQkxBatchImpl.
void MakeQxBatchImpl(int nsub, int n, int nmax, const float* xt, const float* wt, int8_t* Lt, float* scales) {
  const hn::CappedTag<float, 8> df;
  const hn::RebindToSigned<decltype(df)> di;
  const int N = static_cast<int>(hn::Lanes(df));
  using V = hn::Vec<decltype(df)>;
  const V zero = hn::Zero(df);
  const auto magic = hn::Set(df, 12582912.0f);
  auto nearest_clamped = [&](V v) {
    const auto bits = hn::BitCast(di, hn::Add(v, magic));
    auto l = hn::Sub(hn::And(bits, hn::Set(di, 0x007fffff)), hn::Set(di, 0x00400000));
    l = hn::Min(hn::Max(l, hn::Set(di, -nmax)), hn::Set(di, nmax - 1));
    return hn::ConvertTo(df, l);
  };
  float lbest[64 * 8], ltry[64 * 8];
  for (int g = 0; g < nsub; g += N) {
    auto x_at = [&](int i) { return hn::LoadU(df, xt + i * nsub + g); };
    auto w_at = [&](int i) {
      if (wt) return hn::LoadU(df, wt + i * nsub + g);
      const auto x = x_at(i);
      return hn::Mul(x, x);
    };
    auto amax = zero, max = zero;
    for (int i = 0; i < n; ++i) {
      const auto x = x_at(i);
      const auto ax = hn::Abs(x);
      const auto gt = hn::Gt(ax, amax);
      amax = hn::IfThenElse(gt, ax, amax);
      max = hn::IfThenElse(gt, x, max);
    }
    const auto tiny = hn::Lt(amax, hn::Set(df, 1e-15f));
    auto pass = [&](V iscale, float* lout, V* sumlx, V* suml2) {
      *sumlx = zero;
      *suml2 = zero;
      for (int i = 0; i < n; ++i) {
        const auto x = x_at(i), w = w_at(i);
        const auto l = nearest_clamped(hn::Mul(iscale, x));
        hn::StoreU(l, df, lout + i * N);
        *sumlx = hn::Add(*sumlx, hn::Mul(hn::Mul(w, x), l));
        *suml2 = hn::Add(*suml2, hn::Mul(hn::Mul(w, l), l));
      }
    };
    V sumlx = zero, suml2 = zero;
    pass(hn::Div(hn::Set(df, static_cast<float>(-nmax)), max), lbest, &sumlx, &suml2);
    auto scale = hn::IfThenElse(hn::Ne(suml2, zero), hn::Div(sumlx, suml2), zero);
    auto best = hn::Mul(scale, sumlx);
    for (int is = -9; is <= 9; ++is) {
      if (is == 0) continue;
      const float numerator = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is));
      pass(hn::Div(hn::Set(df, numerator), max), ltry, &sumlx, &suml2);
      const auto take = hn::AndNot(
          tiny, hn::And(hn::Gt(suml2, zero), hn::Gt(hn::Mul(sumlx, sumlx), hn::Mul(best, suml2))));
      if (hn::AllFalse(df, take)) continue;
      for (int i = 0; i < n; ++i) {
        hn::StoreU(hn::IfThenElse(take, hn::LoadU(df, ltry + i * N), hn::LoadU(df, lbest + i * N)), df,
                   lbest + i * N);
      }
      scale = hn::IfThenElse(take, hn::Div(sumlx, suml2), scale);
      best = hn::IfThenElse(take, hn::Mul(scale, sumlx), best);
    }
    hn::StoreU(hn::IfThenElse(tiny, zero, scale), df, scales + g);
    alignas(64) float tiny_lane[8];
    hn::StoreU(hn::IfThenElse(tiny, hn::Set(df, 1.0f), zero), df, tiny_lane);
    for (int i = 0; i < n; ++i) {
      for (int k = 0; k < N; ++k) {
        Lt[i * nsub + g + k] =
            tiny_lane[k] != 0.0f ? 0 : static_cast<int8_t>(static_cast<int>(lbest[i * N + k]) + nmax);
      }
    }
  }
}

// x[i] = exp(x[i] - max) for i < n; returns the sum. For softmax in the
// engine (not a codec: no bit-exactness contract).
float ExpShiftedImpl(float* x, int64_t n, float max) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const auto vmax = hn::Set(df, max);
  auto vsum = hn::Zero(df);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto e = hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), vmax));
    hn::StoreU(e, df, x + i);
    vsum = hn::Add(vsum, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, vsum));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  return sum;
}

const char* TargetNameImpl() { return hwy::TargetName(HWY_TARGET); }

}  // namespace qforge::simd::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "codecs/simd_kernels.h"

namespace qforge::simd {

HWY_EXPORT(EncodeF16Impl);
HWY_EXPORT(DecodeF16Impl);
HWY_EXPORT(EncodeBF16Impl);
HWY_EXPORT(EncodeQ8_0Impl);
HWY_EXPORT(NearestLevelIndicesImpl);
HWY_EXPORT(TargetNameImpl);
HWY_EXPORT(MakeQkxBatchImpl);
HWY_EXPORT(MakeQxBatchImpl);
HWY_EXPORT(ExpShiftedImpl);

void EncodeF16(const float* x, uint16_t* out, int64_t n) { HWY_DYNAMIC_DISPATCH(EncodeF16Impl)(x, out, n); }
void DecodeF16(const uint16_t* in, float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(DecodeF16Impl)(in, y, n); }
void EncodeBF16(const float* x, uint16_t* out, int64_t n) { HWY_DYNAMIC_DISPATCH(EncodeBF16Impl)(x, out, n); }
void EncodeQ8_0(const float* x, uint8_t* out, int64_t n) { HWY_DYNAMIC_DISPATCH(EncodeQ8_0Impl)(x, out, n); }
void NearestLevelIndices(const float* x, float scale, const int8_t* levels16, uint8_t* idx, int n) {
  HWY_DYNAMIC_DISPATCH(NearestLevelIndicesImpl)(x, scale, levels16, idx, n);
}

void MakeQkxBatch(int nsub, int n, int nmax, const float* xt, const float* wt, uint8_t* Lt, float* scales,
                  float* the_mins, float rmin, float rdelta, int nstep, bool use_mad, bool qkx3) {
  HWY_DYNAMIC_DISPATCH(MakeQkxBatchImpl)(nsub, n, nmax, xt, wt, Lt, scales, the_mins, rmin, rdelta, nstep, use_mad,
                                         qkx3);
}

void MakeQxBatch(int nsub, int n, int nmax, const float* xt, const float* wt, int8_t* Lt, float* scales) {
  HWY_DYNAMIC_DISPATCH(MakeQxBatchImpl)(nsub, n, nmax, xt, wt, Lt, scales);
}

float ExpShifted(float* x, int64_t n, float max) { return HWY_DYNAMIC_DISPATCH(ExpShiftedImpl)(x, n, max); }

std::vector<std::string> CompiledTargets() {
  std::vector<std::string> out;
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) out.emplace_back(hwy::TargetName(t));
  return out;
}

void ForEachSupportedTarget(void (*fn)(const char*, void*), void* ctx) {
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(t);
    fn(HWY_DYNAMIC_DISPATCH(TargetNameImpl)(), ctx);
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace qforge::simd
#endif  // HWY_ONCE
