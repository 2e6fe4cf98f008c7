#include "codecs/ggml_legacy.h"

#include <cmath>
#include <cstring>

#include "numeric/half.h"

namespace qforge {
namespace {
constexpr int kBlock = 32;
}

void EncodeRowQ8_0(const float* x, const float*, void* out, int64_t n) {
  auto* o = static_cast<uint8_t*>(out);
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock, o += 34) {
    float amax = 0.0f;
    for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    // The reciprocal is taken from the unrounded scale, as the reference does.
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t dh = FloatToHalf(d);
    std::memcpy(o, &dh, 2);
    for (int j = 0; j < kBlock; ++j) {
      o[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::roundf(x[j] * id)));
    }
  }
}

void DecodeRowQ8_0(const void* in, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(in);
  for (int64_t b = 0; b < n / kBlock; ++b, p += 34, y += kBlock) {
    uint16_t dh;
    std::memcpy(&dh, p, 2);
    const float d = HalfToFloat(dh);
    for (int j = 0; j < kBlock; ++j) y[j] = static_cast<float>(static_cast<int8_t>(p[2 + j])) * d;
  }
}

}  // namespace qforge
