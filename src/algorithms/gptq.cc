#include "algorithms/gptq.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/parallel.h"

extern "C" {
void spotrf_(const char* uplo, const int* n, float* a, const int* lda, int* info);
void spotri_(const char* uplo, const int* n, float* a, const int* lda, int* info);
}

namespace qforge {

void Hessian::Add(const float* x, int64_t rows) {
  if (rows <= 0) return;
  // Running average of 2 x x^T: H <- H n/(n+m) + (2/(n+m)) X^T X.
  const float keep = static_cast<float>(n_) / static_cast<float>(n_ + rows);
  n_ += rows;
  const float add = 2.0f / static_cast<float>(n_);
  // Row-major upper triangle == column-major lower triangle.
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(k_), static_cast<int>(rows), add, x,
              static_cast<int>(k_), keep, h_.data(), static_cast<int>(k_));
}

std::vector<float> Hessian::Matrix() const {
  std::vector<float> m = h_;
  for (int64_t i = 0; i < k_; ++i)
    for (int64_t j = 0; j < i; ++j) m[static_cast<size_t>(i * k_ + j)] = m[static_cast<size_t>(j * k_ + i)];
  return m;
}

bool InverseCholeskyUpper(std::vector<float> h, int64_t k, std::vector<float>* upper) {
  const int n = static_cast<int>(k);
  int info = 0;
  // LAPACK is column-major; for a symmetric matrix the row-major upper
  // triangle is the column-major lower one, so "L" below works on our upper.
  spotrf_("L", &n, h.data(), &n, &info);
  if (info != 0) return false;
  spotri_("L", &n, h.data(), &n, &info);
  if (info != 0) return false;
  // h now holds H^-1 in the (row-major) upper triangle; mirror it down.
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < i; ++j) h[static_cast<size_t>(i * k + j)] = h[static_cast<size_t>(j * k + i)];
  // Column-major lower factor L (H^-1 = L L^T) read row-major is U = L^T.
  spotrf_("L", &n, h.data(), &n, &info);
  if (info != 0) return false;
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < i; ++j) h[static_cast<size_t>(i * k + j)] = 0.0f;
  *upper = std::move(h);
  return true;
}

IntQuantized GptqQuantize(const float* w, int64_t rows, int64_t cols, std::vector<float> h, const IntQuantSpec& spec,
                          const GptqOptions& opts, int threads, GptqStats* stats) {
  const int64_t N = rows, K = cols;
  GptqStats local;
  GptqStats& st = stats ? *stats : local;
  st = GptqStats{};
  // Work on W^T (K x N) so a column of W is a contiguous row.
  std::vector<float> wt(static_cast<size_t>(K * N));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) wt[static_cast<size_t>(k * N + n)] = w[n * K + k];
  // Dead inputs (never non-zero in calibration) carry no information.
  for (int64_t k = 0; k < K; ++k) {
    float& d = h[static_cast<size_t>(k * K + k)];
    if (d == 0.0f) {
      d = 1.0f;
      std::fill_n(wt.begin() + k * N, N, 0.0f);
      ++st.dead_columns;
    }
  }
  const int64_t len = spec.GroupLen(K);
  const int maxq = spec.maxq();
  // Static groups: parameters from the original column ranges, before any
  // permutation or error feedback.
  std::vector<GroupParams> static_params;
  if (opts.static_groups && spec.group_size > 0) {
    const int64_t G = spec.Groups(K);
    static_params.resize(static_cast<size_t>(G * N));
    for (int64_t g = 0; g < G; ++g)
      for (int64_t n = 0; n < N; ++n)
        static_params[static_cast<size_t>(g * N + n)] = FindGroupParams(wt.data() + g * len * N + n, len, N, spec);
  }
  std::vector<int64_t> perm(static_cast<size_t>(K));
  std::iota(perm.begin(), perm.end(), 0);
  if (opts.act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
      return h[static_cast<size_t>(a * K + a)] > h[static_cast<size_t>(b * K + b)];
    });
    std::vector<float> hp(h.size()), wp(wt.size());
    for (int64_t i = 0; i < K; ++i) {
      const int64_t pi = perm[static_cast<size_t>(i)];
      for (int64_t j = 0; j < K; ++j) hp[static_cast<size_t>(i * K + j)] = h[static_cast<size_t>(pi * K + perm[static_cast<size_t>(j)])];
      std::copy_n(wt.begin() + pi * N, N, wp.begin() + i * N);
    }
    h.swap(hp);
    wt.swap(wp);
  }
  double mean_diag = 0.0;
  for (int64_t k = 0; k < K; ++k) mean_diag += h[static_cast<size_t>(k * K + k)];
  mean_diag /= static_cast<double>(K);
  std::vector<float> u;
  float damp = opts.damp;
  bool ok = false;
  for (int attempt = 0; attempt < 10 && !ok; ++attempt) {
    std::vector<float> hd = h;
    const float add = static_cast<float>(damp * mean_diag);
    for (int64_t k = 0; k < K; ++k) hd[static_cast<size_t>(k * K + k)] += add;
    ok = InverseCholeskyUpper(std::move(hd), K, &u);
    if (!ok) damp += 0.01f;
  }
  h.clear();
  h.shrink_to_fit();
  if (!ok) {
    st.fell_back_to_rtn = true;
    return QuantizeRtn(w, rows, cols, spec);
  }
  st.damp_used = damp;

  IntQuantized q = IntQuantized::Allocate(spec, N, K);  // g_idx is set per column below
  std::vector<GroupParams> cur(static_cast<size_t>(N));
  auto set_group = [&](int64_t g, const GroupParams* params, int64_t stride) {
    for (int64_t n = 0; n < N; ++n) {
      cur[static_cast<size_t>(n)] = params[n * stride];
      q.scales[static_cast<size_t>(n * q.n_groups + g)] = params[n * stride].scale;
      q.zeros[static_cast<size_t>(n * q.n_groups + g)] = params[n * stride].zero;
    }
  };
  if (spec.group_size <= 0) {  // one group per row, from the whole (dead-zeroed) row
    std::vector<GroupParams> p(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) p[static_cast<size_t>(n)] = FindGroupParams(wt.data() + n, K, N, spec);
    set_group(0, p.data(), 1);
  } else if (!static_params.empty()) {
    for (int64_t g = 0; g < q.n_groups; ++g) set_group(g, static_params.data() + g * N, 1);
  }
  const int64_t B = std::max<int64_t>(1, opts.block_size);
  std::vector<float> err(static_cast<size_t>(B * N));
  std::vector<GroupParams> fresh(static_cast<size_t>(N));
  for (int64_t i1 = 0; i1 < K; i1 += B) {
    const int64_t i2 = std::min(i1 + B, K);
    for (int64_t col = i1; col < i2; ++col) {
      float* wc = wt.data() + col * N;
      const int64_t orig = perm[static_cast<size_t>(col)];
      int64_t group = 0;
      if (spec.group_size > 0) {
        if (!static_params.empty()) {
          group = orig / len;
          for (int64_t n = 0; n < N; ++n) cur[static_cast<size_t>(n)] = static_params[static_cast<size_t>(group * N + n)];
        } else {
          group = col / len;
          if (col % len == 0) {
            // Parameters of the next group from its columns as they stand
            // now, after the error feedback so far.
            const int64_t n_cols = std::min(len, K - col);
            ParallelFor(N, N * n_cols >= (1 << 18) ? threads : 1, [&](int64_t b, int64_t e) {
              for (int64_t n = b; n < e; ++n) fresh[static_cast<size_t>(n)] = FindGroupParams(wc + n, n_cols, N, spec);
            });
            set_group(group, fresh.data(), 1);
          }
        }
      }
      q.g_idx[static_cast<size_t>(orig)] = static_cast<int32_t>(group);
      const float d = u[static_cast<size_t>(col * K + col)];
      float* e = err.data() + (col - i1) * N;
      uint8_t* codes = q.codes.data();
      for (int64_t n = 0; n < N; ++n) {
        const GroupParams& p = cur[static_cast<size_t>(n)];
        const int c = QuantizeCode(wc[n], p, maxq);
        codes[n * K + orig] = static_cast<uint8_t>(c);
        e[n] = (wc[n] - DequantizeCode(c, p)) / d;
      }
      // Feed the error into the rest of the block right away.
      const float* urow = u.data() + col * K;
      const int t = (i2 - col - 1) * N >= (1 << 18) ? threads : 1;  // threads only pay on large blocks
      ParallelFor(i2 - col - 1, t, [&](int64_t b, int64_t en) {
        for (int64_t j = col + 1 + b; j < col + 1 + en; ++j) {
          const float f = urow[j];
          float* wj = wt.data() + j * N;
          for (int64_t n = 0; n < N; ++n) wj[n] -= e[n] * f;
        }
      });
    }
    // And into the columns after the block, lazily, as one product:
    // W[i2:, :] -= U[i1:i2, i2:]^T Err
    if (i2 < K) {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(K - i2), static_cast<int>(N),
                  static_cast<int>(i2 - i1), -1.0f, u.data() + i1 * K + i2, static_cast<int>(K), err.data(),
                  static_cast<int>(N), 1.0f, wt.data() + i2 * N, static_cast<int>(N));
    }
  }
  return q;
}

}  // namespace qforge
