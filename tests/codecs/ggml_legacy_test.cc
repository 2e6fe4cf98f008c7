// Q8_0 and the float codecs against the spec's unit vectors (section 2.12,
// produced by ggml's reference library) and round-trip error bounds.
#include "codecs/ggml_legacy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/sha256.h"
#include "codecs/ggml_float.h"
#include "codecs/ggml_types.h"
#include "test_util.h"

namespace qforge {
namespace {

// decode(encode(x)) of Q8_0 is within half a step (d/2) of x per element,
// where d = max|x|/127 of the block, plus the fp16 rounding of d.
void ExpectQ8_0Bound(const std::vector<float>& x) {
  std::vector<uint8_t> q(RowBytes(GgmlType::Q8_0, static_cast<int64_t>(x.size())));
  std::vector<float> y(x.size());
  EncodeRowQ8_0(x.data(), nullptr, q.data(), static_cast<int64_t>(x.size()));
  DecodeRowQ8_0(q.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t b = 0; b < x.size(); b += 32) {
    float amax = 0;
    for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b + j]));
    const float d = amax / 127.0f;
    for (size_t j = 0; j < 32; ++j) {
      EXPECT_LE(std::fabs(x[b + j] - y[b + j]), 0.5f * d + amax * 1e-3f + 1e-30f) << "at " << b + j;
    }
  }
}

TEST(Q8_0, RoundTripBoundGaussian) {
  std::mt19937 rng(1);
  std::normal_distribution<float> n(0.0f, 0.02f);
  std::vector<float> x(4096);
  for (auto& v : x) v = n(rng);
  ExpectQ8_0Bound(x);
}

TEST(Q8_0, RoundTripBoundHeavyTailed) {
  std::mt19937 rng(2);
  std::student_t_distribution<float> t(1.5f);
  std::vector<float> x(4096);
  for (auto& v : x) v = t(rng);
  ExpectQ8_0Bound(x);
}

TEST(Q8_0, AllZeroRowDecodesToZero) {
  std::vector<float> x(256, 0.0f), y(256, 1.0f);
  std::vector<uint8_t> q(RowBytes(GgmlType::Q8_0, 256));
  EncodeRowQ8_0(x.data(), nullptr, q.data(), 256);
  DecodeRowQ8_0(q.data(), y.data(), 256);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace qforge
