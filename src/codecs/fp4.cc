#include "codecs/fp4.h"

#include <algorithm>
#include <cmath>

#include "numeric/half.h"

namespace qforge {
namespace {

// E2M1 magnitudes doubled (ggml's table), index bit 3 is the sign.
constexpr int8_t kFp4Doubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// Half of the E8M0 scale 2^(e-127), matching the doubled table.
float E8m0Half(uint8_t e) {
  const uint32_t bits = e < 2 ? (0x00200000u << e) : (static_cast<uint32_t>(e - 1) << 23);
  return FloatFromBits(bits);
}

}  // namespace

void EncodeRowMXFP4(const float* x, const float*, void* out, int64_t n) {
  auto* o = static_cast<uint8_t*>(out);
  for (int64_t b = 0; b < n / 32; ++b, x += 32, o += 17) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    // log2f is correctly rounded in glibc for the inputs that matter here
    // (just below a power of two), as the reference relies on.
    const uint8_t e = amax > 0.0f ? static_cast<uint8_t>(std::floor(log2f(amax)) - 2.0f + 127.0f) : 0;
    o[0] = e;
    const float s = E8m0Half(e);
    uint8_t idx[32];
    for (int j = 0; j < 32; ++j) {
      int best = 0;
      float best_err = std::fabs(static_cast<float>(kFp4Doubled[0]) * s - x[j]);
      for (int i = 1; i < 16; ++i) {
        const float err = std::fabs(static_cast<float>(kFp4Doubled[i]) * s - x[j]);
        if (err < best_err) {
          best_err = err;
          best = i;
        }
      }
      idx[j] = static_cast<uint8_t>(best);
    }
    for (int j = 0; j < 16; ++j) o[1 + j] = static_cast<uint8_t>(idx[j] | (idx[j + 16] << 4));
  }
}

void DecodeRowMXFP4(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t b = 0; b < n / 32; ++b, p += 17, y += 32) {
    const float s = E8m0Half(p[0]);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(kFp4Doubled[p[1 + j] & 0xF]) * s;
      y[j + 16] = static_cast<float>(kFp4Doubled[p[1 + j] >> 4]) * s;
    }
  }
}

}  // namespace qforge
