// GFLOP/s of the engine's product against stored weights (MultiplyRows) per
// weight type, at the shapes of a 1B model's prompt processing: x (256 x K)
// times a K x N weight, 2 threads, median of 7 runs.
//   matmul_bench [T=256] [THREADS=2]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "codecs/ggml_types.h"
#include "engine/matmul.h"

int main(int argc, char** argv) {
  using namespace qforge;
  const int64_t T = argc > 1 ? std::atoll(argv[1]) : 256;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::BF16}) {
    for (auto [K, N] : {std::pair<int64_t, int64_t>{2048, 8192}, {8192, 2048}}) {
      std::vector<float> w(static_cast<size_t>(K * N)), x(static_cast<size_t>(T * K)), y(static_cast<size_t>(T * N));
      for (float& v : w) v = normal(rng) * 0.02f;
      for (float& v : x) v = normal(rng);
      const size_t rb = RowBytes(type, K);
      std::vector<uint8_t> bytes(rb * static_cast<size_t>(N));
      for (int64_t r = 0; r < N; ++r) TraitsOf(type).encode(w.data() + r * K, nullptr, bytes.data() + r * rb, K);
      ModelTensor t;
      t.name = "w";
      t.ne = {K, N};
      t.type = type;
      t.data = bytes.data();
      t.nbytes = bytes.size();
      std::vector<double> secs;
      for (int rep = 0; rep < 7; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        if (!MultiplyRows(t, 0, N, x.data(), T, K, y.data(), threads, true).ok()) return 1;
        secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(secs.begin(), secs.end());
      std::printf("%-5s K %5lld N %5lld T %4lld: %7.1f GFLOP/s\n", GgmlTypeName(type).c_str(), static_cast<long long>(K),
                  static_cast<long long>(N), static_cast<long long>(T), 2.0 * T * K * N / secs[3] / 1e9);
    }
  }
  return 0;
}
