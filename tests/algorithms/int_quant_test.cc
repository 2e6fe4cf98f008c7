// The integer grid, GPTQ's solver and AWQ's scale rules on small matrices.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "algorithms/awq.h"
#include "algorithms/gptq.h"
#include "codecs/int_group.h"
#include "numeric/gemm.h"
#include "test_util.h"

namespace qforge {
namespace {

std::vector<float> Random(int64_t n, uint32_t seed, float scale = 1.0f) {
  test::XorShift32 rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = (rng.U01() * 2.0f - 1.0f) * scale;
  return v;
}

TEST(FindGroupParams, SymmetricScaleIsAbsmaxOverHalfTheRange) {
  IntQuantSpec s;
  s.scale_dtype = ScaleDtype::kF32;
  const float w[4] = {-0.3f, 0.75f, 0.1f, 0.0f};
  GroupParams p = FindGroupParams(w, 4, 1, s);
  EXPECT_FLOAT_EQ(p.scale, 0.75f / 7.5f);
  EXPECT_EQ(p.zero, 8);
  EXPECT_EQ(QuantizeCode(0.75f, p, 15), 15);   // +7.5 rounds to 8, clamps to 7 (+8)
  EXPECT_EQ(QuantizeCode(-0.75f, p, 15), 0);   // -7.5 rounds to -8
  s.bits = 8;
  p = FindGroupParams(w, 4, 1, s);
  EXPECT_FLOAT_EQ(p.scale, 0.75f / 127.5f);
  EXPECT_EQ(p.zero, 128);
}

TEST(FindGroupParams, AsymmetricKeepsZeroOnTheGrid) {
  IntQuantSpec s;
  s.symmetric = false;
  s.scale_dtype = ScaleDtype::kF32;
  const float w[3] = {-0.2f, 1.3f, 0.4f};
  GroupParams p = FindGroupParams(w, 3, 1, s);
  EXPECT_FLOAT_EQ(p.scale, 1.5f / 15.0f);
  EXPECT_EQ(p.zero, 2);  // RNE(0.2 / 0.1)
  EXPECT_FLOAT_EQ(DequantizeCode(QuantizeCode(0.0f, p, 15), p), 0.0f);
  // All non-negative: zero 0, unless the layout needs zeros >= 1 (GPTQ v1).
  const float pos[2] = {0.1f, 1.4f};
  EXPECT_EQ(FindGroupParams(pos, 2, 1, s).zero, 0);
  s.zero_at_least_one = true;
  p = FindGroupParams(pos, 2, 1, s);
  EXPECT_EQ(p.zero, 1);
  EXPECT_FLOAT_EQ(DequantizeCode(QuantizeCode(1.4f, p, 15), p), 1.4f);
}

TEST(FindGroupParams, ScalesAreRoundedToTheirStorageDtype) {
  IntQuantSpec s;
  s.scale_dtype = ScaleDtype::kBF16;
  const float w[2] = {0.123456f, -0.0001f};
  const GroupParams p = FindGroupParams(w, 2, 1, s);
  EXPECT_EQ(p.scale, RoundToScaleDtype(p.scale, ScaleDtype::kBF16));
  EXPECT_NE(p.scale, 0.123456f / 7.5f);
}

// With exact (F32) scales; a scale rounded to BF16 can clip the extremes a
// little more.
TEST(QuantizeRtn, ErrorWithinHalfAStep) {
  IntQuantSpec s;
  s.group_size = 32;
  s.symmetric = false;
  s.scale_dtype = ScaleDtype::kF32;
  const auto w = Random(16 * 128, 3);
  const IntQuantized q = QuantizeRtn(w.data(), 16, 128, s);
  std::vector<float> d(w.size());
  q.DequantizeRows(0, 16, d.data());
  for (int64_t r = 0; r < 16; ++r)
    for (int64_t k = 0; k < 128; ++k) {
      const float step = q.Params(r, k / 32).scale;
      ASSERT_LE(std::fabs(d[static_cast<size_t>(r * 128 + k)] - w[static_cast<size_t>(r * 128 + k)]), 0.5f * step * 1.0001f);
    }
  EXPECT_TRUE(q.MonotonicGroups());
}

// Inputs with strongly correlated channels: where GPTQ's error feedback pays.
std::vector<float> CorrelatedInputs(int64_t n, int64_t k, uint32_t seed) {
  const auto base = Random(n * 8, seed);
  const auto mix = Random(8 * k, seed + 1);
  const auto noise = Random(n * k, seed + 2, 0.1f);
  std::vector<float> x(static_cast<size_t>(n * k));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) {
      float v = noise[static_cast<size_t>(i * k + j)];
      for (int64_t f = 0; f < 8; ++f) v += base[static_cast<size_t>(i * 8 + f)] * mix[static_cast<size_t>(f * k + j)];
      x[static_cast<size_t>(i * k + j)] = v * (1.0f + static_cast<float>(j % 7));
    }
  return x;
}

double OutputError(const std::vector<float>& x, int64_t n, int64_t k, const std::vector<float>& w, const IntQuantized& q) {
  const int64_t rows = q.rows;
  std::vector<float> d(w.size()), y0(static_cast<size_t>(n * rows)), y1(y0.size());
  q.DequantizeRows(0, rows, d.data());
  GemmNT(x.data(), n, k, w.data(), rows, y0.data(), 1);
  GemmNT(x.data(), n, k, d.data(), rows, y1.data(), 1);
  double e = 0;
  for (size_t i = 0; i < y0.size(); ++i) e += (y0[i] - y1[i]) * static_cast<double>(y0[i] - y1[i]);
  return e;
}

TEST(InverseCholesky, UpperFactorOfTheInverse) {
  const int64_t k = 24;
  const auto x = CorrelatedInputs(200, k, 5);
  Hessian h(k);
  h.Add(x.data(), 120);
  h.Add(x.data() + 120 * k, 80);  // batching must not matter: running average
  std::vector<float> m = h.Matrix();
  for (int64_t i = 0; i < k; ++i) m[static_cast<size_t>(i * k + i)] += 0.01f;
  std::vector<float> u;
  ASSERT_TRUE(InverseCholeskyUpper(m, k, &u));
  // (U^T U) H = I
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) {
      double v = 0;
      for (int64_t a = 0; a < k; ++a) {
        double inv = 0;
        for (int64_t b = 0; b < k; ++b) inv += static_cast<double>(u[static_cast<size_t>(b * k + i)]) * u[static_cast<size_t>(b * k + a)];
        v += inv * m[static_cast<size_t>(a * k + j)];
      }
      ASSERT_NEAR(v, i == j ? 1.0 : 0.0, 2e-2) << i << "," << j;
    }
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < i; ++j) ASSERT_EQ(u[static_cast<size_t>(i * k + j)], 0.0f);
  // Same matrix from one batch: the running average is batching-independent.
  Hessian h1(k);
  h1.Add(x.data(), 200);
  const auto m1 = h1.Matrix();
  const auto m0 = h.Matrix();
  for (size_t i = 0; i < m0.size(); ++i) ASSERT_NEAR(m0[i], m1[i], 1e-3 * (std::fabs(m1[i]) + 1));
  std::vector<float> not_pd(static_cast<size_t>(k * k), 0.0f);
  EXPECT_FALSE(InverseCholeskyUpper(not_pd, k, &u));
}

class GptqVsRtn : public ::testing::TestWithParam<std::tuple<bool, bool, int64_t>> {};

TEST_P(GptqVsRtn, SmallerOutputError) {
  const auto [act_order, static_groups, group] = GetParam();
  const int64_t n = 1024, k = 256, rows = 48;
  const auto x = CorrelatedInputs(n, k, 11);
  const auto w = Random(rows * k, 12, 0.05f);
  Hessian h(k);
  h.Add(x.data(), n);
  IntQuantSpec s;
  s.group_size = group;
  s.symmetric = false;
  GptqOptions o;
  o.act_order = act_order;
  o.static_groups = static_groups;
  o.block_size = 64;  // several lazy blocks
  GptqStats st;
  const IntQuantized g = GptqQuantize(w.data(), rows, k, h.Matrix(), s, o, 2, &st);
  const IntQuantized r = QuantizeRtn(w.data(), rows, k, s);
  const double eg = OutputError(x, n, k, w, g), er = OutputError(x, n, k, w, r);
  EXPECT_FALSE(st.fell_back_to_rtn);
  EXPECT_LT(eg, 0.7 * er) << "GPTQ " << eg << " RTN " << er;
  // Every group holds exactly its share of columns, whatever the order.
  std::vector<int> count(static_cast<size_t>(g.n_groups), 0);
  for (int32_t gi : g.g_idx) ++count[static_cast<size_t>(gi)];
  for (int c : count) EXPECT_EQ(c, s.GroupLen(k));
  EXPECT_EQ(g.MonotonicGroups(), !act_order || static_groups || group < 0);
}

INSTANTIATE_TEST_SUITE_P(Orders, GptqVsRtn,
                         ::testing::Values(std::make_tuple(false, false, int64_t{64}), std::make_tuple(true, false, int64_t{64}),
                                           std::make_tuple(true, true, int64_t{64}), std::make_tuple(false, false, int64_t{-1}),
                                           std::make_tuple(false, false, int64_t{32})));

// A dead input (never non-zero in calibration) carries no information: its
// column is rounded to nearest with its group's parameters, not zeroed (the
// reference GPTQ zeroes it, which turned a layer calibration never reached
// into all-zero weights).
TEST(Gptq, DeadInputColumnsAreRoundedToNearest) {
  const int64_t n = 256, k = 64, rows = 8;
  auto x = CorrelatedInputs(n, k, 21);
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i * k + 5)] = 0.0f;  // channel 5 never fires
  const auto w = Random(rows * k, 22);
  Hessian h(k);
  h.Add(x.data(), n);
  IntQuantSpec s;
  s.group_size = 32;
  GptqStats st;
  const IntQuantized q = GptqQuantize(w.data(), rows, k, h.Matrix(), s, GptqOptions{}, 1, &st);
  EXPECT_EQ(st.dead_columns, 1);
  for (int64_t r = 0; r < rows; ++r) {
    const GroupParams p = q.Params(r, 0);
    EXPECT_EQ(q.codes[static_cast<size_t>(r * k + 5)], QuantizeCode(w[static_cast<size_t>(r * k + 5)], p, s.maxq())) << r;
  }
}

// An all-zero Hessian (a layer no calibration input reached) gives exactly
// round-to-nearest, and the stats say every input was dead.
TEST(Gptq, AllZeroHessianIsRoundToNearest) {
  const int64_t k = 64, rows = 8;
  const auto w = Random(rows * k, 23);
  IntQuantSpec s;
  s.group_size = 32;
  GptqStats st;
  const IntQuantized q = GptqQuantize(w.data(), rows, k, std::vector<float>(static_cast<size_t>(k * k), 0.0f), s, GptqOptions{}, 1, &st);
  EXPECT_EQ(st.dead_columns, k);
  const IntQuantized rtn = QuantizeRtn(w.data(), rows, k, s);
  EXPECT_EQ(q.codes, rtn.codes);
  EXPECT_EQ(q.scales, rtn.scales);
  EXPECT_EQ(q.zeros, rtn.zeros);
}

TEST(AwqScales, NormalisedToUnitGeometricMidpoint) {
  const std::vector<float> x_mean = {0.1f, 2.0f, 0.5f, 8.0f};
  const std::vector<float> w_mean = {0.5f, 0.2f, 0.9f, 0.4f};
  for (float r : {0.0f, 0.35f, 0.95f}) {
    const auto s = AwqScales(x_mean, w_mean, r, true);
    const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
    EXPECT_NEAR(*lo * *hi, 1.0f, 1e-5f);
  }
  // Ratio 0 of plain scaling: every channel alike.
  for (float v : AwqScales(x_mean, w_mean, 0.0f, false)) EXPECT_FLOAT_EQ(v, 1.0f);
  // Larger activations get larger scales as the ratio grows.
  const auto s = AwqScales(x_mean, w_mean, 0.9f, true);
  EXPECT_GT(s[3], s[0]);
}

// A dead input (never non-zero in calibration) would sit at the 1e-4 floor
// and pull the midpoint down by orders of magnitude; only live channels set it.
TEST(AwqScales, DeadChannelsDoNotSetTheMidpoint) {
  const std::vector<float> x_mean = {0.1f, 2.0f, 0.0f, 8.0f};
  const std::vector<float> w_mean = {0.5f, 0.2f, 0.9f, 0.4f};
  const auto s = AwqScales(x_mean, w_mean, 0.5f, true);
  EXPECT_NEAR(std::min({s[0], s[1], s[3]}) * std::max({s[0], s[1], s[3]}), 1.0f, 1e-5f);
  EXPECT_LT(s[2], s[0]);
}

TEST(AwqClip, NeverWorseThanNoClipping) {
  const int64_t n = 256, k = 128, rows = 16;
  const auto x = CorrelatedInputs(n, k, 31);
  auto w = Random(rows * k, 32, 0.05f);
  w[7] = 0.9f;  // an outlier that widens its group's grid
  IntQuantSpec s;
  s.symmetric = false;
  s.scale_dtype = ScaleDtype::kF32;
  auto clipped = w;
  AwqClip(clipped.data(), rows, k, x, n, s, 2);
  const double e_plain = OutputError(x, n, k, w, QuantizeRtn(w.data(), rows, k, s));
  const double e_clip = OutputError(x, n, k, w, QuantizeRtn(clipped.data(), rows, k, s));
  EXPECT_LE(e_clip, e_plain * 1.0001);
}

}  // namespace
}  // namespace qforge
