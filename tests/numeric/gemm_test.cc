#include "numeric/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <tuple>
#include <random>
#include <vector>

namespace qforge {
namespace {

// Shapes where OpenBLAS's AVX-512 kernel sums differently when a call's
// width changes (T >= 32): the thread count must not change the calls made.
TEST(GemmNT, EveryThreadCountGivesTheSameBits) {
  for (const auto& [T, K, N] : {std::tuple<int64_t, int64_t, int64_t>{128, 512, 1024}, {32, 1024, 4096 + 48}, {1, 64, 40}}) {
    std::mt19937 rng(7);
    std::normal_distribution<float> d;
    std::vector<float> x(static_cast<size_t>(T * K)), w(static_cast<size_t>(N * K));
    for (float& v : x) v = d(rng);
    for (float& v : w) v = d(rng);
    std::vector<float> y1(static_cast<size_t>(T * N)), y;
    GemmNT(x.data(), T, K, w.data(), N, y1.data(), 1);
    // Against a plain double sum: the product itself is right.
    for (int64_t i : {int64_t{0}, T - 1})
      for (int64_t j : {int64_t{0}, N / 2, N - 1}) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += double(x[i * K + k]) * w[j * K + k];
        EXPECT_NEAR(y1[i * N + j], s, 1e-3 * std::sqrt(double(K))) << T << "x" << K << "x" << N;
      }
    for (int threads : {2, 3, 5}) {
      y.assign(y1.size(), -1.0f);
      GemmNT(x.data(), T, K, w.data(), N, y.data(), threads);
      EXPECT_EQ(0, std::memcmp(y.data(), y1.data(), y.size() * sizeof(float)))
          << T << "x" << K << "x" << N << " with " << threads << " threads";
    }
  }
}

}  // namespace
}  // namespace qforge
