// The machine's yardsticks for the engine benchmark (bench/engine_bench):
// the F32 GEMM rate through qforge's BLAS product (GemmNT, 2048^3, on the
// given threads) and the memory read bandwidth (summing a 1 GiB buffer on
// the same threads). Prints "gemm_gflops X" and "read_gbps Y", best of 5.
//   machine_peaks [THREADS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "base/parallel.h"
#include "numeric/gemm.h"

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  using Clock = std::chrono::steady_clock;
  const int64_t n = 2048;
  std::vector<float> a(static_cast<size_t>(n * n)), b(a.size()), c(a.size());
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& v : a) v = u(rng);
  for (float& v : b) v = u(rng);
  double best_gemm = 0.0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
    qforge::GemmNT(a.data(), n, n, b.data(), n, c.data(), threads);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best_gemm = std::max(best_gemm, 2.0 * n * n * n / s / 1e9);
  }
  const size_t words = (size_t{1} << 30) / sizeof(uint64_t);
  std::vector<uint64_t> buf(words, 1);
  double best_bw = 0.0;
  uint64_t sink = 0;
  for (int rep = 0; rep < 5; ++rep) {
    std::vector<uint64_t> part(static_cast<size_t>(threads), 0);
    const auto t0 = Clock::now();
    qforge::ParallelFor(threads, threads, [&](int64_t b0, int64_t e0) {
      for (int64_t t = b0; t < e0; ++t) {
        const size_t lo = words / threads * t, hi = t + 1 == threads ? words : words / threads * (t + 1);
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = lo; i + 4 <= hi; i += 4) {
          s0 += buf[i];
          s1 += buf[i + 1];
          s2 += buf[i + 2];
          s3 += buf[i + 3];
        }
        part[static_cast<size_t>(t)] = s0 + s1 + s2 + s3;
      }
    });
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    for (uint64_t p : part) sink += p;
    best_bw = std::max(best_bw, static_cast<double>(words * sizeof(uint64_t)) / s / 1e9);
  }
  std::printf("gemm_gflops %.1f\nread_gbps %.1f\n", best_gemm, best_bw);
  return sink == 0 ? 1 : 0;
}
