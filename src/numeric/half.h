// IEEE binary16 and bfloat16 conversions, bit-exact with ggml's reference
// (round to nearest even; every NaN becomes a quiet NaN with the input's sign).
#pragma once

#include <bit>
#include <cstdint>

namespace qforge {

inline float FloatFromBits(uint32_t u) { return std::bit_cast<float>(u); }
inline uint32_t BitsOfFloat(float f) { return std::bit_cast<uint32_t>(f); }

// fp32 -> fp16. Two scalings push values that overflow fp16 to infinity and
// let a single float addition perform the rounding at the fp16 mantissa width.
inline uint16_t FloatToHalf(float f) {
  const float kScaleToInf = FloatFromBits(0x77800000);   // 2^112
  const float kScaleToZero = FloatFromBits(0x08800000);  // 2^-110
  float base = (f < 0 ? -f : f) * kScaleToInf * kScaleToZero;
  const uint32_t w = BitsOfFloat(f);
  const uint32_t shl1 = w << 1;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1 & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = FloatFromBits((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = BitsOfFloat(base);
  const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissa_bits = bits & 0x00000FFFu;
  const uint32_t nonsign = exp_bits + mantissa_bits;
  return static_cast<uint16_t>((sign >> 16) | (shl1 > 0xFF000000u ? 0x7E00u : nonsign));
}

inline float HalfToFloat(uint16_t h) {
  const uint32_t w = uint32_t(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const float normalized = FloatFromBits((two_w >> 4) + (0xE0u << 23)) * FloatFromBits(0x07800000u);
  const float denormalized = FloatFromBits((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t result =
      sign | (two_w < (1u << 27) ? BitsOfFloat(denormalized) : BitsOfFloat(normalized));
  return FloatFromBits(result);
}

inline uint16_t FloatToBf16(float f) {
  const uint32_t u = BitsOfFloat(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

inline float Bf16ToFloat(uint16_t b) { return FloatFromBits(uint32_t(b) << 16); }

// Whether a stored fp16 / bf16 value is finite (its exponent is not all ones).
inline bool HalfIsFinite(uint16_t h) { return (h & 0x7C00u) != 0x7C00u; }
inline bool Bf16IsFinite(uint16_t b) { return (b & 0x7F80u) != 0x7F80u; }

}  // namespace qforge
