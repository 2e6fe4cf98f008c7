// The engine's products against stored weights (engine/matmul.h): the
// integer kernels against a double-precision product of the decoded rows and
// the activations rounded as llama.cpp rounds them, on every SIMD target;
// results independent of the thread count and of the row offset.
#include "engine/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "codecs/ggml_types.h"
#include "codecs/simd_kernels.h"
#include "engine/int_matmul.h"
#include "numeric/half.h"

namespace qforge {
namespace {

struct Encoded {
  std::vector<uint8_t> bytes;
  ModelTensor t;
};

// N rows of K values, normal with a few outliers, encoded as type.
Encoded MakeWeight(GgmlType type, int64_t N, int64_t K, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(N * K));
  for (float& v : w) v = normal(rng) * 0.05f;
  for (size_t i = 0; i < w.size(); i += 97) w[i] *= 8.0f;
  Encoded e;
  const size_t rb = RowBytes(type, K);
  e.bytes.resize(rb * static_cast<size_t>(N));
  for (int64_t r = 0; r < N; ++r) TraitsOf(type).encode(w.data() + r * K, nullptr, e.bytes.data() + r * rb, K);
  e.t.name = "blk.0.test.weight";
  e.t.ne = {K, N};
  e.t.type = type;
  e.t.data = e.bytes.data();
  e.t.nbytes = e.bytes.size();
  return e;
}

std::vector<float> MakeActivations(int64_t T, int64_t K, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(T * K));
  for (float& v : x) v = normal(rng);
  for (size_t i = 5; i < x.size(); i += 131) x[i] *= 10.0f;
  return x;
}

// The product in double of the decoded rows and the rounded activations.
std::vector<double> Reference(const ModelTensor& t, const std::vector<float>& x, int64_t T, int64_t K, int64_t N) {
  std::vector<float> w(static_cast<size_t>(N * K)), xr = x;
  EXPECT_TRUE(ReadRowsF32(t, 0, N, w.data()).ok());
  RoundActivationsLikeLlamaCpp(t.type, xr.data(), T, K);
  std::vector<double> y(static_cast<size_t>(T * N));
  for (int64_t i = 0; i < T; ++i)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0.0;
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(xr[i * K + k]) * w[n * K + k];
      y[static_cast<size_t>(i * N + n)] = s;
    }
  return y;
}

// |y - ref| against the scale of the terms: each product's magnitude summed.
void ExpectClose(const std::vector<float>& y, const std::vector<double>& ref, const ModelTensor& t,
                 const std::vector<float>& x, int64_t T, int64_t K, int64_t N, const std::string& what) {
  std::vector<float> w(static_cast<size_t>(N * K));
  ASSERT_TRUE(ReadRowsF32(t, 0, N, w.data()).ok());
  for (int64_t i = 0; i < T; ++i)
    for (int64_t n = 0; n < N; ++n) {
      double mag = 0.0;
      for (int64_t k = 0; k < K; ++k) mag += std::fabs(static_cast<double>(x[i * K + k]) * w[n * K + k]);
      const size_t j = static_cast<size_t>(i * N + n);
      ASSERT_NEAR(y[j], ref[j], 2e-6 * mag + 1e-6) << what << " token " << i << " row " << n;
    }
}

struct Case {
  GgmlType type;
  int64_t K;
};

class IntegerProductTest : public ::testing::TestWithParam<Case> {};

TEST_P(IntegerProductTest, MatchesTheDecodedProductOnEveryTarget) {
  const auto [type, K] = GetParam();
  const int64_t N = 37, T = 7;  // a partial tile of rows, a token group of 4 and a remainder
  Encoded e = MakeWeight(type, N, K, 11);
  ASSERT_TRUE(HasIntegerProduct(e.t));
  const std::vector<float> x = MakeActivations(T, K, 12);
  const std::vector<double> ref = Reference(e.t, x, T, K, N);
  struct Ctx {
    Encoded* e;
    const std::vector<float>* x;
    const std::vector<double>* ref;
    int64_t T, K, N;
    int targets = 0;
  } ctx{&e, &x, &ref, T, K, N};
  simd::ForEachSupportedTarget(
      [](const char* target, void* p) {
        auto& c = *static_cast<Ctx*>(p);
        std::vector<float> y(static_cast<size_t>(c.T * c.N), -1.0f);
        ASSERT_TRUE(MultiplyRows(c.e->t, 0, c.N, c.x->data(), c.T, c.K, y.data(), 2, true).ok());
        ExpectClose(y, *c.ref, c.e->t, *c.x, c.T, c.K, c.N, target);
        ++c.targets;
      },
      &ctx);
  EXPECT_GE(ctx.targets, 1);
  // And the target dispatch picks by default (it may be one the list above
  // leaves out, such as AVX3_DL with VNNI).
  std::vector<float> y(static_cast<size_t>(T * N), -1.0f);
  ASSERT_TRUE(MultiplyRows(e.t, 0, N, x.data(), T, K, y.data(), 2, true).ok());
  ExpectClose(y, ref, e.t, x, T, K, N, "default");
}

TEST_P(IntegerProductTest, SameBitsForAnyThreadCountAndRowOffset) {
  const auto [type, K] = GetParam();
  const int64_t N = 40, T = 5;
  Encoded e = MakeWeight(type, N, K, 21);
  const std::vector<float> x = MakeActivations(T, K, 22);
  std::vector<float> y1(static_cast<size_t>(T * N)), y2(y1.size());
  ASSERT_TRUE(MultiplyRows(e.t, 0, N, x.data(), T, K, y1.data(), 1, true).ok());
  ASSERT_TRUE(MultiplyRows(e.t, 0, N, x.data(), T, K, y2.data(), 2, true).ok());
  EXPECT_EQ(y1, y2);
  // Rows [16, 40) alone (an expert's slice of a stacked tensor) give the
  // same values as in the whole product.
  std::vector<float> part(static_cast<size_t>(T * 24));
  ASSERT_TRUE(MultiplyRows(e.t, 16, 24, x.data(), T, K, part.data(), 2, true).ok());
  for (int64_t i = 0; i < T; ++i)
    for (int64_t n = 0; n < 24; ++n) EXPECT_EQ(part[static_cast<size_t>(i * 24 + n)], y1[static_cast<size_t>(i * N + 16 + n)]);
}

INSTANTIATE_TEST_SUITE_P(Types, IntegerProductTest,
                         // K a multiple of 64 takes the VNNI kernels where the CPU
                         // has them; 608 and 544 take the int16 ones everywhere.
                         ::testing::Values(Case{GgmlType::Q4_K, 768}, Case{GgmlType::Q5_K, 512},
                                           Case{GgmlType::Q6_K, 768}, Case{GgmlType::Q8_0, 608},
                                           Case{GgmlType::Q8_0, 640}, Case{GgmlType::Q4_0, 544},
                                           Case{GgmlType::Q4_0, 576}, Case{GgmlType::Q5_0, 512}),
                         [](const auto& info) {
                           return GgmlTypeName(info.param.type) + "_K" + std::to_string(info.param.K);
                         });

TEST(MatMul, OtherTypesDecodeTilesAndMatchTheDecodedProduct) {
  for (GgmlType type : {GgmlType::BF16, GgmlType::F16, GgmlType::IQ4_XS, GgmlType::Q3_K}) {
    const int64_t K = 512, N = 300, T = 3;  // more rows than one 256-row tile
    Encoded e = MakeWeight(type, N, K, 31);
    EXPECT_FALSE(HasIntegerProduct(e.t)) << GgmlTypeName(type);
    const std::vector<float> x = MakeActivations(T, K, 32);
    std::vector<float> y(static_cast<size_t>(T * N));
    ASSERT_TRUE(MultiplyRows(e.t, 0, N, x.data(), T, K, y.data(), 2, true).ok());
    ExpectClose(y, Reference(e.t, x, T, K, N), e.t, x, T, K, N, GgmlTypeName(type));
  }
}

TEST(MatMul, ActivationsAsLlamaCppQuantizesThem) {
  // Q8_K: the signed extreme maps to -127 and the scale is its inverse.
  std::vector<float> x(256, 0.0f);
  x[0] = -127.0f;  // scale 1
  x[1] = 63.5f;    // ties round to even
  x[2] = 0.5f;
  x[3] = 1.5f;
  std::vector<int16_t> q(256), s(intmm::kMinSlot);
  std::vector<float> d(1);
  intmm::QuantizeActivations(intmm::ActType::kQ8_K, x.data(), 1, 256, q.data(), d.data(), s.data());
  EXPECT_EQ(q[0], -127);
  EXPECT_EQ(q[1], 64);
  EXPECT_EQ(q[2], 0);
  EXPECT_EQ(q[3], 2);
  EXPECT_EQ(d[0], 1.0f);
  EXPECT_EQ(s[0], -127 + 64 + 2);
  for (int j = 1; j < intmm::kMinSlot; ++j) EXPECT_EQ(s[static_cast<size_t>(j)], 0) << j;
  // Q8_0: scale amax / 127 stored as F16; an all-zero block is zero.
  std::vector<float> y(64, 0.0f);
  y[3] = 1.0f;
  std::vector<int16_t> q0(64);
  std::vector<float> d0(2);
  intmm::QuantizeActivations(intmm::ActType::kQ8_0, y.data(), 1, 64, q0.data(), d0.data(), nullptr);
  EXPECT_EQ(q0[3], 127);
  EXPECT_EQ(d0[0], HalfToFloat(FloatToHalf(1.0f / 127.0f)));
  EXPECT_EQ(d0[1], 0.0f);
}

TEST(MatMul, RowsOutsideTheTensorAreAnErrorNamingIt) {
  Encoded e = MakeWeight(GgmlType::Q8_0, 4, 64, 41);
  std::vector<float> x(64), y(8);
  Status s = MultiplyRows(e.t, 2, 4, x.data(), 1, 64, y.data(), 1, true);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("blk.0.test.weight"), std::string::npos) << s.message();
  s = MultiplyRows(e.t, 0, 4, x.data(), 1, 32, y.data(), 1, true);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("64"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace qforge
