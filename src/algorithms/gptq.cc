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
  Hessian copy = *this;
  return copy.TakeMatrix();
}

std::vector<float> Hessian::TakeMatrix() {
  for (int64_t i = 0; i < k_; ++i)
    for (int64_t j = 0; j < i; ++j) h_[static_cast<size_t>(i * k_ + j)] = h_[static_cast<size_t>(j * k_ + i)];
  std::vector<float> m = std::move(h_);
  h_.clear();
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

namespace {

// W^T (K x N), so that a column of W is a contiguous row. Dead inputs (never
// non-zero in calibration) get a unit Hessian diagonal, which decouples them:
// no error flows into them, so they are rounded to nearest. (The reference
// GPTQ zeroes them instead, and an all-zero Hessian, a layer calibration
// never reached, then became all-zero weights; the caller reports them.)
std::vector<float> TransposeAndMarkDead(const float* w, int64_t N, int64_t K, std::vector<float>* h, GptqStats* st) {
  std::vector<float> wt(static_cast<size_t>(K * N));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) wt[static_cast<size_t>(k * N + n)] = w[n * K + k];
  for (int64_t k = 0; k < K; ++k) {
    float& d = (*h)[static_cast<size_t>(k * K + k)];
    if (d == 0.0f) {
      d = 1.0f;
      ++st->dead_columns;
    }
  }
  return wt;
}

// Columns by decreasing Hessian diagonal; permutes h and wt to that order.
std::vector<int64_t> ActOrder(int64_t K, int64_t N, bool enabled, std::vector<float>* h, std::vector<float>* wt) {
  std::vector<int64_t> perm(static_cast<size_t>(K));
  std::iota(perm.begin(), perm.end(), 0);
  if (!enabled) return perm;
  const std::vector<float>& hh = *h;
  std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
    return hh[static_cast<size_t>(a * K + a)] > hh[static_cast<size_t>(b * K + b)];
  });
  std::vector<float> hp(h->size()), wp(wt->size());
  for (int64_t i = 0; i < K; ++i) {
    const int64_t pi = perm[static_cast<size_t>(i)];
    for (int64_t j = 0; j < K; ++j) hp[static_cast<size_t>(i * K + j)] = hh[static_cast<size_t>(pi * K + perm[static_cast<size_t>(j)])];
    std::copy_n(wt->begin() + pi * N, N, wp.begin() + i * N);
  }
  h->swap(hp);
  wt->swap(wp);
  return perm;
}

// Upper Cholesky factor of (H + damp * mean diag)^-1, raising the damping
// until H is positive definite (ten tries). False if it never is.
bool DampedInverseCholesky(std::vector<float> h, int64_t K, float damp0, std::vector<float>* u, float* damp_used) {
  double mean_diag = 0.0;
  for (int64_t k = 0; k < K; ++k) mean_diag += h[static_cast<size_t>(k * K + k)];
  mean_diag /= static_cast<double>(K);
  float damp = damp0;
  for (int attempt = 0; attempt < 10; ++attempt) {
    std::vector<float> hd = h;
    const float add = static_cast<float>(damp * mean_diag);
    for (int64_t k = 0; k < K; ++k) hd[static_cast<size_t>(k * K + k)] += add;
    if (InverseCholeskyUpper(std::move(hd), K, u)) {
      *damp_used = damp;
      return true;
    }
    damp += 0.01f;
  }
  return false;
}

}  // namespace

bool GptqSolve(const float* w, int64_t rows, int64_t cols, std::vector<float> h, const GptqOptions& opts,
               GroupQuantizer* quantizer, int threads, GptqStats* stats) {
  const int64_t N = rows, K = cols;
  GptqStats local;
  GptqStats& st = stats ? *stats : local;
  st = GptqStats{};
  std::vector<float> wt = TransposeAndMarkDead(w, N, K, &h, &st);
  const int64_t len = quantizer->group_len();
  // Static groups: every group fitted up front from its original columns,
  // before any permutation or error feedback. Blocks whose membership is
  // positional need that under act-order too.
  const bool fit_first = (opts.static_groups && len < K) || (opts.act_order && quantizer->positional_groups());
  if (fit_first) {
    for (int64_t g = 0; g * len < K; ++g) quantizer->FitGroup(g, wt.data() + g * len * N, std::min(len, K - g * len));
  }
  const std::vector<int64_t> perm = ActOrder(K, N, opts.act_order, &h, &wt);
  std::vector<float> u;
  const bool ok = DampedInverseCholesky(std::move(h), K, opts.damp, &u, &st.damp_used);
  if (!ok) {
    st.fell_back_to_rtn = true;
    return false;
  }

  const int64_t B = std::max<int64_t>(1, opts.block_size);
  std::vector<float> err(static_cast<size_t>(B * N)), q(static_cast<size_t>(N));
  for (int64_t i1 = 0; i1 < K; i1 += B) {
    const int64_t i2 = std::min(i1 + B, K);
    for (int64_t col = i1; col < i2; ++col) {
      float* wc = wt.data() + col * N;
      const int64_t orig = perm[static_cast<size_t>(col)];
      // A group's parameters come from its columns as they stand when it
      // starts, after the error feedback so far.
      if (!fit_first && col % len == 0) quantizer->FitGroup(col / len, wc, std::min(len, K - col));
      quantizer->QuantizeColumn(orig, fit_first ? orig / len : col / len, wc, q.data());
      const float d = u[static_cast<size_t>(col * K + col)];
      float* e = err.data() + (col - i1) * N;
      for (int64_t n = 0; n < N; ++n) e[n] = (wc[n] - q[n]) / d;
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
  return true;
}

IntQuantized GptqQuantize(const float* w, int64_t rows, int64_t cols, std::vector<float> h, const IntQuantSpec& spec,
                          const GptqOptions& opts, int threads, GptqStats* stats) {
  IntGroupQuantizer quantizer(spec, rows, cols, threads);
  GptqOptions o = opts;
  o.static_groups = opts.static_groups && spec.group_size > 0;
  if (!GptqSolve(w, rows, cols, std::move(h), o, &quantizer, threads, stats)) return QuantizeRtn(w, rows, cols, spec);
  return quantizer.Take();
}

}  // namespace qforge
