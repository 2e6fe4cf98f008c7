// Compiled once per Highway target (foreach_target re-includes this file).
#include <cstring>
#include <string>
#include <vector>

#include "numeric/half.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "codecs/simd_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

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

void EncodeF16(const float* x, uint16_t* out, int64_t n) { HWY_DYNAMIC_DISPATCH(EncodeF16Impl)(x, out, n); }
void DecodeF16(const uint16_t* in, float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(DecodeF16Impl)(in, y, n); }
void EncodeBF16(const float* x, uint16_t* out, int64_t n) { HWY_DYNAMIC_DISPATCH(EncodeBF16Impl)(x, out, n); }
void EncodeQ8_0(const float* x, uint8_t* out, int64_t n) { HWY_DYNAMIC_DISPATCH(EncodeQ8_0Impl)(x, out, n); }
void NearestLevelIndices(const float* x, float scale, const int8_t* levels16, uint8_t* idx, int n) {
  HWY_DYNAMIC_DISPATCH(NearestLevelIndicesImpl)(x, scale, levels16, idx, n);
}

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
