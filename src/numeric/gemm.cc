#include "numeric/gemm.h"

#include <cblas.h>

#include <algorithm>

#include "base/parallel.h"

extern "C" void openblas_set_num_threads(int num_threads);

namespace qforge {

void UseSingleThreadedBlas() {
  static const bool done = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
}

void GemmNT(const float* x, int64_t T, int64_t K, const float* w, int64_t N, float* y, int threads, float alpha,
            float beta) {
  UseSingleThreadedBlas();
  // Threads only pay when each gets a sizeable product.
  const int64_t work = T * K * N;
  const int t = work < (int64_t{1} << 22) ? 1 : threads;
  // Panels of kGemmPanel columns (a multiple of 16 keeps the kernels on
  // full tiles), the same calls whatever t is; wide enough that re-packing x
  // per panel stays a small part of the product.
  constexpr int64_t kPanel = kGemmPanel;
  const int64_t panels = (N + kPanel - 1) / kPanel;
  ParallelFor(panels, t, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      const int64_t n0 = p * kPanel, n1 = std::min(N, n0 + kPanel);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(T), static_cast<int>(n1 - n0),
                  static_cast<int>(K), alpha, x, static_cast<int>(K), w + n0 * K, static_cast<int>(K), beta, y + n0,
                  static_cast<int>(N));
    }
  });
}

}  // namespace qforge
