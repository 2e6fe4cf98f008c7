#include "algorithms/awq.h"

#include <algorithm>
#include <cmath>

#include "base/parallel.h"
#include "numeric/gemm.h"


namespace qforge {
namespace {

void QuantizeGroupInPlace(float* v, int64_t n, const IntQuantSpec& spec) {
  const GroupParams p = FindGroupParams(v, n, 1, spec);
  for (int64_t i = 0; i < n; ++i) v[i] = DequantizeCode(QuantizeCode(v[i], p, spec.maxq()), p);
}

}  // namespace

std::vector<float> AwqScales(const std::vector<float>& x_mean, const std::vector<float>& w_mean, float ratio,
                             bool duo_scaling) {
  const size_t K = x_mean.size();
  std::vector<float> s(K);
  for (size_t k = 0; k < K; ++k) {
    const float xs = std::pow(x_mean[k], ratio);
    const float v = duo_scaling ? xs / (std::pow(w_mean[k], 1.0f - ratio) + 1e-4f) : xs;
    s[k] = std::max(v, 1e-4f);
  }
  // Normalised to the geometric midpoint of the channels that saw any
  // activation. A channel that never did (a dead input) scores the 1e-4
  // floor, and counting it would shift every scale by up to 100x: harmless
  // to the quantized grid (a common factor cancels in each group's scale),
  // but it divides the folded norm by that factor, which a norm stored as
  // w with 1 + w applied (Gemma) cannot hold in BF16.
  float lo = INFINITY, hi = 0.0f;
  for (size_t k = 0; k < K; ++k) {
    if (!(x_mean[k] > 0.0f)) continue;
    lo = std::min(lo, s[k]);
    hi = std::max(hi, s[k]);
  }
  if (!(hi > 0.0f)) {
    const auto [l, h] = std::minmax_element(s.begin(), s.end());
    lo = *l;
    hi = *h;
  }
  const float norm = std::sqrt(hi * lo);
  for (float& v : s) {
    v /= norm;
    if (!std::isfinite(v)) v = 1.0f;
  }
  return s;
}

std::vector<float> AwqWeightMean(const std::vector<const std::vector<float>*>& ws, int64_t cols, int64_t group) {
  std::vector<double> sum(static_cast<size_t>(cols), 0.0);
  int64_t rows_total = 0;
  for (const auto* w : ws) {
    const int64_t rows = static_cast<int64_t>(w->size()) / cols;
    rows_total += rows;
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = w->data() + r * cols;
      for (int64_t k0 = 0; k0 < cols; k0 += group) {
        const int64_t n = std::min(group, cols - k0);
        float amax = 0.0f;
        for (int64_t k = k0; k < k0 + n; ++k) amax = std::max(amax, std::fabs(row[k]));
        const float inv = 1.0f / (amax + 1e-6f);
        for (int64_t k = k0; k < k0 + n; ++k) sum[static_cast<size_t>(k)] += std::fabs(row[k]) * inv;
      }
    }
  }
  std::vector<float> out(static_cast<size_t>(cols));
  for (int64_t k = 0; k < cols; ++k) out[static_cast<size_t>(k)] = static_cast<float>(sum[static_cast<size_t>(k)] / static_cast<double>(rows_total));
  return out;
}

void AwqPseudoQuantize(const float* w, int64_t rows, int64_t cols, const std::vector<float>* s, const IntQuantSpec& spec,
                       float* out) {
  const int64_t len = spec.GroupLen(cols);
  for (int64_t r = 0; r < rows; ++r) {
    float* o = out + r * cols;
    for (int64_t k = 0; k < cols; ++k) o[k] = s ? w[r * cols + k] * (*s)[static_cast<size_t>(k)] : w[r * cols + k];
    for (int64_t k0 = 0; k0 < cols; k0 += len) QuantizeGroupInPlace(o + k0, std::min(len, cols - k0), spec);
    if (s) {
      for (int64_t k = 0; k < cols; ++k) o[k] /= (*s)[static_cast<size_t>(k)];
    }
  }
}

void AwqClip(float* w, int64_t rows, int64_t cols, const std::vector<float>& x, int64_t n, const IntQuantSpec& spec,
             int threads) {
  constexpr int kGrid = 20;
  constexpr float kMaxShrink = 0.5f;
  const int64_t len = spec.GroupLen(cols);
  for (int64_t k0 = 0; k0 < cols; k0 += len) {
    const int64_t G = std::min(len, cols - k0);
    std::vector<float> xg(static_cast<size_t>(n * G));
    for (int64_t t = 0; t < n; ++t) std::copy_n(x.data() + t * cols + k0, G, xg.data() + t * G);
    ParallelFor(rows, threads, [&](int64_t rb, int64_t re) {
      constexpr int64_t kBatch = 64;
      std::vector<float> diff(static_cast<size_t>(kBatch * G)), res(static_cast<size_t>(n * kBatch));
      std::vector<float> best_err(static_cast<size_t>(kBatch)), best_m(static_cast<size_t>(kBatch)), m0(static_cast<size_t>(kBatch));
      for (int64_t b0 = rb; b0 < re; b0 += kBatch) {
        const int64_t nb = std::min(kBatch, re - b0);
        for (int64_t r = 0; r < nb; ++r) {
          float amax = 0.0f;
          for (int64_t k = 0; k < G; ++k) amax = std::max(amax, std::fabs(w[(b0 + r) * cols + k0 + k]));
          m0[static_cast<size_t>(r)] = amax;
          best_err[static_cast<size_t>(r)] = INFINITY;
          best_m[static_cast<size_t>(r)] = amax;
        }
        for (int i = 0; i < static_cast<int>(kMaxShrink * kGrid); ++i) {
          for (int64_t r = 0; r < nb; ++r) {
            const float m = m0[static_cast<size_t>(r)] * (1.0f - static_cast<float>(i) / kGrid);
            const float* src = w + (b0 + r) * cols + k0;
            float* d = diff.data() + r * G;
            for (int64_t k = 0; k < G; ++k) d[k] = std::clamp(src[k], -m, m);
            QuantizeGroupInPlace(d, G, spec);
            for (int64_t k = 0; k < G; ++k) d[k] -= src[k];
          }
          // res (n x nb) = xg (n x G) diff^T: each row's output error per token.
          GemmNT(xg.data(), n, G, diff.data(), nb, res.data(), 1);
          for (int64_t r = 0; r < nb; ++r) {
            double err = 0.0;
            for (int64_t t = 0; t < n; ++t) err += static_cast<double>(res[static_cast<size_t>(t * nb + r)]) * res[static_cast<size_t>(t * nb + r)];
            const float e = static_cast<float>(err / static_cast<double>(n));
            if (e < best_err[static_cast<size_t>(r)]) {
              best_err[static_cast<size_t>(r)] = e;
              best_m[static_cast<size_t>(r)] = m0[static_cast<size_t>(r)] * (1.0f - static_cast<float>(i) / kGrid);
            }
          }
        }
        for (int64_t r = 0; r < nb; ++r) {
          const float m = best_m[static_cast<size_t>(r)];
          float* row = w + (b0 + r) * cols + k0;
          for (int64_t k = 0; k < G; ++k) row[k] = std::clamp(row[k], -m, m);
        }
      }
    });
  }
}

}  // namespace qforge
