// GgmlBlockQuantizer: the values QuantizeColumn reports are exactly what the
// type's decoder reads back from the blocks Take() writes (so GPTQ's error
// feedback sees the runtime's numbers), the blocks keep the scales the
// encoder chose, and choosing the nearest code on the encoder's grid is no
// worse than the encoder itself.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "algorithms/gptq.h"
#include "codecs/block_quantizer.h"

namespace qforge {
namespace {

constexpr int64_t kRows = 8, kCols = 512;

std::vector<float> RandomWeights(uint32_t seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> dist(4.0f);
  std::vector<float> w(static_cast<size_t>(kRows * kCols));
  for (float& v : w) v = 0.02f * dist(rng);
  return w;
}

double SquaredError(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0.0;
  for (size_t i = 0; i < a.size(); ++i) e += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  return e;
}

// Sum over every step-th input row x (T x K) of |(W - Wq) x|^2, with Wq the
// decoded blocks: the layer's output error on those inputs.
double OutputError(GgmlType type, const std::vector<float>& w, const std::vector<uint8_t>& bytes, const std::vector<float>& x,
                   int64_t K, int64_t T, int64_t step) {
  std::vector<float> wq(w.size());
  TraitsOf(type).decode(bytes.data(), wq.data(), kRows * K);
  double e = 0.0;
  for (int64_t t = 0; t < T; t += step) {
    for (int64_t n = 0; n < kRows; ++n) {
      double d = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        d += (static_cast<double>(w[static_cast<size_t>(n * K + k)]) - wq[static_cast<size_t>(n * K + k)]) *
             x[static_cast<size_t>(t * K + k)];
      }
      e += d * d;
    }
  }
  return e;
}

class BlockQuantizerTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(BlockQuantizerTest, ReportedValuesAreWhatTheDecoderReads) {
  const GgmlType type = GetParam();
  const GgmlTypeTraits& tr = TraitsOf(type);
  const std::vector<float> w = RandomWeights(7);
  std::vector<float> wt(w.size());  // W^T: the quantizer's column layout
  for (int64_t n = 0; n < kRows; ++n)
    for (int64_t k = 0; k < kCols; ++k) wt[static_cast<size_t>(k * kRows + n)] = w[static_cast<size_t>(n * kCols + k)];
  GgmlBlockQuantizer q(type, kRows, kCols, {}, 1);
  ASSERT_EQ(q.group_len(), tr.block_elems);
  std::vector<float> reported(w.size()), col(kRows);
  for (int64_t k = 0; k < kCols; ++k) {
    if (k % q.group_len() == 0) q.FitGroup(k / q.group_len(), wt.data() + k * kRows, q.group_len());
    q.QuantizeColumn(k, k / q.group_len(), wt.data() + k * kRows, col.data());
    for (int64_t n = 0; n < kRows; ++n) reported[static_cast<size_t>(n * kCols + k)] = col[static_cast<size_t>(n)];
  }
  const std::vector<uint8_t> bytes = q.Take();
  ASSERT_EQ(bytes.size(), static_cast<size_t>(kRows) * RowBytes(type, kCols));
  std::vector<float> decoded(w.size());
  tr.decode(bytes.data(), decoded.data(), kRows * kCols);
  for (size_t i = 0; i < w.size(); ++i) ASSERT_EQ(decoded[i], reported[i]) << GgmlTypeName(type) << " element " << i;

  // The encoder's own blocks, for the same rows: same scales, and nearest
  // codes on them are at least as close as the encoder's choice (+1% slack
  // for Q8_0, whose encoder rounds against the unrounded scale).
  std::vector<uint8_t> plain(bytes.size());
  for (int64_t n = 0; n < kRows; ++n) tr.encode(w.data() + n * kCols, nullptr, plain.data() + n * RowBytes(type, kCols), kCols);
  std::vector<float> plain_decoded(w.size());
  tr.decode(plain.data(), plain_decoded.data(), kRows * kCols);
  EXPECT_LE(SquaredError(w, decoded), 1.01 * SquaredError(w, plain_decoded)) << GgmlTypeName(type);
}

// GPTQ into blocks on correlated inputs lowers the layer's output error
// against the type's own encoding of the same weights.
TEST_P(BlockQuantizerTest, GptqLowersOutputErrorOnCorrelatedInputs) {
  const GgmlType type = GetParam();
  const GgmlTypeTraits& tr = TraitsOf(type);
  const std::vector<float> w = RandomWeights(11);
  // Inputs x = z A with a mixing A: strongly correlated columns.
  const int64_t T = 2048;
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(T * kCols));
  for (int64_t t = 0; t < T; ++t) {
    float run = 0.0f;
    for (int64_t k = 0; k < kCols; ++k) {
      run = 0.9f * run + g(rng);
      x[static_cast<size_t>(t * kCols + k)] = run;
    }
  }
  Hessian h(kCols);
  h.Add(x.data(), T);
  GgmlBlockQuantizer q(type, kRows, kCols, {}, 1);
  ASSERT_TRUE(GptqSolve(w.data(), kRows, kCols, h.Matrix(), GptqOptions{}, &q, 1, nullptr));
  std::vector<uint8_t> gptq = q.Take(), plain(gptq.size());
  for (int64_t n = 0; n < kRows; ++n) tr.encode(w.data() + n * kCols, nullptr, plain.data() + n * RowBytes(type, kCols), kCols);
  const double ratio = OutputError(type, w, gptq, x, kCols, T, 4) / OutputError(type, w, plain, x, kCols, T, 4);
  std::printf("[ figure ] %s GPTQ / plain output error = %.3f\n", GgmlTypeName(type).c_str(), ratio);
  EXPECT_LT(ratio, 0.8) << GgmlTypeName(type);
}

// Act-order changes the order GPTQ visits columns, never which block a column
// belongs to: on a row of exactly one block (and of two) the result is about
// as good as without it (the blocks were once fitted on shuffled columns
// when the row was one block long).
TEST_P(BlockQuantizerTest, ActOrderKeepsBlocksPositional) {
  const GgmlType type = GetParam();
  for (int64_t K : {int64_t{256}, int64_t{512}}) {
    std::mt19937 rng(5);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> w(static_cast<size_t>(kRows * K)), x(static_cast<size_t>(1024 * K));
    for (float& v : w) v = 0.02f * g(rng);
    // Inputs whose energy varies by column, so act-order permutes strongly.
    for (int64_t t = 0; t < 1024; ++t)
      for (int64_t k = 0; k < K; ++k) x[static_cast<size_t>(t * K + k)] = g(rng) * (1.0f + static_cast<float>((k * 37) % K) / 16.0f);
    Hessian h(K);
    h.Add(x.data(), 1024);
    auto output_error = [&](bool act_order) {
      GgmlBlockQuantizer q(type, kRows, K, {}, 1);
      GptqOptions o;
      o.act_order = act_order;
      EXPECT_TRUE(GptqSolve(w.data(), kRows, K, h.Matrix(), o, &q, 1, nullptr));
      return OutputError(type, w, q.Take(), x, K, 1024, 8);
    };
    const double ratio = output_error(true) / output_error(false);
    std::printf("[ figure ] %s K=%lld act-order / in-order output error = %.3f\n", GgmlTypeName(type).c_str(),
                static_cast<long long>(K), ratio);
    EXPECT_LT(ratio, 1.25) << GgmlTypeName(type) << " K=" << K;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, BlockQuantizerTest,
                         ::testing::Values(GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K),
                         [](const auto& info) { return GgmlTypeName(info.param); });

TEST(BlockGrid, OnlyTypesWhoseGridIsKnown) {
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) EXPECT_NE(BlockGridOf(t), nullptr);
  for (GgmlType t : {GgmlType::F16, GgmlType::Q4_0, GgmlType::Q2_K, GgmlType::IQ4_XS}) EXPECT_EQ(BlockGridOf(t), nullptr);
}

}  // namespace
}  // namespace qforge
