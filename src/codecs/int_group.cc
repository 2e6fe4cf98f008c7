#include "codecs/int_group.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/parallel.h"
#include "numeric/half.h"

namespace qforge {

float RoundToScaleDtype(float v, ScaleDtype d) {
  switch (d) {
    case ScaleDtype::kF16: return HalfToFloat(FloatToHalf(v));  // Inf beyond 65504: the sink refuses it
    case ScaleDtype::kBF16: return Bf16ToFloat(FloatToBf16(v));
    case ScaleDtype::kF32: return v;
  }
  return v;
}

const char* ScaleDtypeName(ScaleDtype d) {
  switch (d) {
    case ScaleDtype::kF16: return "F16";
    case ScaleDtype::kBF16: return "BF16";
    case ScaleDtype::kF32: return "F32";
  }
  return "?";
}

Status IntQuantSpec::Check(int64_t cols) const {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
    return Status::Error("bits " + std::to_string(bits) + " is not supported (expected 2, 3, 4 or 8)");
  }
  if (group_size == 0 || group_size < -1) {
    return Status::Error("group size " + std::to_string(group_size) + " is not valid (expected -1 for per channel, or positive)");
  }
  if (group_size > 0 && cols % group_size != 0) {
    return Status::Error(std::to_string(cols) + " input columns are not a multiple of group size " + std::to_string(group_size));
  }
  return Status::Ok();
}

namespace {

// The smallest positive scale the dtype holds, for groups of tiny values.
float TinyScale(ScaleDtype d) {
  switch (d) {
    case ScaleDtype::kF16: return HalfToFloat(1);  // smallest subnormal
    case ScaleDtype::kBF16: return Bf16ToFloat(1);
    case ScaleDtype::kF32: return std::numeric_limits<float>::denorm_min();
  }
  return 1e-30f;
}

float ScaleOf(float range, int steps, ScaleDtype d) {
  float s = RoundToScaleDtype(range / static_cast<float>(steps), d);
  return s > 0.0f ? s : TinyScale(d);
}

}  // namespace

GroupParams FindGroupParams(const float* w, int64_t n, int64_t stride, const IntQuantSpec& spec) {
  float lo = 0.0f, hi = 0.0f;  // zero is always representable
  for (int64_t i = 0; i < n; ++i) {
    const float v = w[i * stride];
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  const int maxq = spec.maxq();
  GroupParams p;
  if (spec.symmetric) {
    float amax = std::max(-lo, hi);
    if (amax == 0.0f) amax = 1.0f;
    p.scale = ScaleOf(2.0f * amax, maxq, spec.scale_dtype);
    p.zero = (maxq + 1) / 2;
    return p;
  }
  if (lo == 0.0f && hi == 0.0f) {
    lo = -1.0f;
    hi = 1.0f;
  }
  p.scale = ScaleOf(hi - lo, maxq, spec.scale_dtype);
  p.zero = std::clamp(static_cast<int>(std::nearbyint(-lo / p.scale)), 0, maxq);
  if (spec.zero_at_least_one && p.zero == 0) {
    // Codes 1..maxq then cover [0, hi].
    p.scale = ScaleOf(hi, maxq - 1, spec.scale_dtype);
    p.zero = 1;
  }
  return p;
}

bool IntQuantized::MonotonicGroups() const {
  const int64_t len = spec.GroupLen(cols);
  for (int64_t k = 0; k < cols; ++k) {
    if (g_idx[static_cast<size_t>(k)] != k / len) return false;
  }
  return true;
}

void IntQuantized::DequantizeRows(int64_t row0, int64_t n, float* out) const {
  for (int64_t r = row0; r < row0 + n; ++r) {
    const uint8_t* c = codes.data() + r * cols;
    float* o = out + (r - row0) * cols;
    for (int64_t k = 0; k < cols; ++k) o[k] = DequantizeCode(c[k], Params(r, g_idx[static_cast<size_t>(k)]));
  }
}

void IntQuantized::PermuteRows(const std::vector<int64_t>& from) {
  std::vector<uint8_t> c(codes.size());
  std::vector<float> s(scales.size());
  std::vector<int32_t> z(zeros.size());
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t f = from[static_cast<size_t>(i)];
    std::copy_n(codes.begin() + f * cols, cols, c.begin() + i * cols);
    std::copy_n(scales.begin() + f * n_groups, n_groups, s.begin() + i * n_groups);
    std::copy_n(zeros.begin() + f * n_groups, n_groups, z.begin() + i * n_groups);
  }
  codes.swap(c);
  scales.swap(s);
  zeros.swap(z);
}

IntQuantized IntQuantized::Allocate(const IntQuantSpec& spec, int64_t rows, int64_t cols) {
  IntQuantized q;
  q.spec = spec;
  q.rows = rows;
  q.cols = cols;
  q.n_groups = spec.Groups(cols);
  const int64_t len = spec.GroupLen(cols);
  q.codes.resize(static_cast<size_t>(rows * cols));
  q.scales.resize(static_cast<size_t>(rows * q.n_groups));
  q.zeros.resize(q.scales.size());
  q.g_idx.resize(static_cast<size_t>(cols));
  for (int64_t k = 0; k < cols; ++k) q.g_idx[static_cast<size_t>(k)] = static_cast<int32_t>(k / len);
  return q;
}

void IntGroupQuantizer::FitGroup(int64_t group, const float* cols, int64_t n_cols) {
  const int64_t N = q_.rows;
  // Threads only pay on large groups.
  ParallelFor(N, N * n_cols >= (1 << 18) ? threads_ : 1, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      const GroupParams p = FindGroupParams(cols + n, n_cols, N, q_.spec);
      const size_t i = static_cast<size_t>(n * q_.n_groups + group);
      q_.scales[i] = p.scale;
      q_.zeros[i] = p.zero;
    }
  });
}

void IntGroupQuantizer::QuantizeColumn(int64_t col, int64_t group, const float* x, float* q) {
  const int64_t N = q_.rows, K = q_.cols;
  const int maxq = q_.spec.maxq();
  q_.g_idx[static_cast<size_t>(col)] = static_cast<int32_t>(group);
  uint8_t* codes = q_.codes.data();
  for (int64_t n = 0; n < N; ++n) {
    const GroupParams p = q_.Params(n, group);
    const int c = QuantizeCode(x[n], p, maxq);
    codes[n * K + col] = static_cast<uint8_t>(c);
    q[n] = DequantizeCode(c, p);
  }
}

IntQuantized QuantizeRtn(const float* w, int64_t rows, int64_t cols, const IntQuantSpec& spec) {
  IntQuantized q = IntQuantized::Allocate(spec, rows, cols);
  const int64_t len = spec.GroupLen(cols);
  const int maxq = spec.maxq();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < q.n_groups; ++g) {
      const int64_t k0 = g * len, n = std::min(len, cols - k0);
      const GroupParams p = FindGroupParams(w + r * cols + k0, n, 1, spec);
      q.scales[static_cast<size_t>(r * q.n_groups + g)] = p.scale;
      q.zeros[static_cast<size_t>(r * q.n_groups + g)] = p.zero;
      for (int64_t k = k0; k < k0 + n; ++k) q.codes[static_cast<size_t>(r * cols + k)] = static_cast<uint8_t>(QuantizeCode(w[r * cols + k], p, maxq));
    }
  }
  return q;
}

}  // namespace qforge
