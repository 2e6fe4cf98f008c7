#include "io/int_layouts.h"

#include <cstring>

#include "io/checkpoint_layout.h"
#include "io/layout_util.h"

namespace qforge {

const char* IntLayoutName(IntLayout l) { return LayoutOf(l).name(); }

std::optional<IntLayout> IntLayoutFromName(const std::string& s) {
  for (IntLayout l : {IntLayout::kCompressedTensors, IntLayout::kGptq, IntLayout::kAwq}) {
    if (s == IntLayoutName(l)) return l;
  }
  return std::nullopt;
}

ScaleDtype LayoutScaleDtype(IntLayout l, StDtype model_dtype) { return LayoutOf(l).scale_dtype(model_dtype); }

uint64_t StTensorSpec::nbytes() const {
  uint64_t n = static_cast<uint64_t>(StDtypeBytes(dtype));
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

std::vector<uint32_t> PackBits(const std::vector<uint32_t>& values, int bits) {
  std::vector<uint32_t> w(static_cast<size_t>(layout::Words(static_cast<int64_t>(values.size()), bits)), 0);
  const uint32_t mask = (1u << bits) - 1;
  for (size_t i = 0; i < values.size(); ++i) {
    const uint64_t bit = i * static_cast<uint64_t>(bits);
    const uint64_t v = static_cast<uint64_t>(values[i] & mask) << (bit % 32);
    w[bit / 32] |= static_cast<uint32_t>(v);
    if ((bit % 32) + bits > 32) w[bit / 32 + 1] |= static_cast<uint32_t>(v >> 32);
  }
  return w;
}

uint32_t UnpackBits(const uint32_t* words, int64_t index, int bits) { return layout::StridedBits(words, 1, index, bits); }

Status LayoutSupports(IntLayout l, int64_t rows, int64_t cols, const IntQuantSpec& spec, bool act_order_groups) {
  QF_RETURN_IF_ERROR(spec.Check(cols));
  return LayoutOf(l).Supports(rows, cols, spec, act_order_groups);
}

std::vector<StTensorSpec> LayoutTensors(IntLayout l, const std::string& prefix, int64_t rows, int64_t cols,
                                        const IntQuantSpec& spec, bool act_order_groups, StDtype model_dtype) {
  const CheckpointLayout& lay = LayoutOf(l);
  return lay.Tensors(prefix, rows, cols, spec, act_order_groups, layout::ScaleStDtype(lay.scale_dtype(model_dtype)));
}

std::vector<StWriteTensor> PackLayout(IntLayout l, const std::string& prefix, const IntQuantized& q, bool act_order_groups,
                                      StDtype model_dtype) {
  return LayoutOf(l).Pack(q, LayoutTensors(l, prefix, q.rows, q.cols, q.spec, act_order_groups, model_dtype), act_order_groups);
}

std::vector<StWriteTensor> PackLayout(IntLayout l, const std::string& prefix, const IntQuantized& q, StDtype model_dtype) {
  return PackLayout(l, prefix, q, !q.MonotonicGroups(), model_dtype);
}

Status PackedLinear::Validate(const std::string& what) const {
  // Sizes come from the file (a weight_shape tensor, packed shapes): bound
  // them before any product of them is formed.
  constexpr int64_t kMaxDim = int64_t{1} << 31, kMaxElements = int64_t{1} << 46;
  if (rows <= 0 || cols <= 0 || rows > kMaxDim || cols > kMaxDim || rows > kMaxElements / cols) {
    return Status::Error(what + ": shape [" + std::to_string(rows) + ", " + std::to_string(cols) +
                         "] is not a plausible linear layer (each side 1.." + std::to_string(kMaxDim) + ")");
  }
  QF_RETURN_IF_ERROR(spec.Check(cols).WithContext(what));
  const CheckpointLayout& lay = LayoutOf(layout);
  QF_RETURN_IF_ERROR(lay.Validate(*this, what));
  if (layout::Present(g_idx)) {
    const int64_t G = spec.Groups(cols);
    const std::string suffix = lay.g_idx_suffix();
    QF_RETURN_IF_ERROR(layout::CheckTensor(layout::Present(g_idx), what, suffix, StDtype::I32, {cols}));
    for (int64_t k = 0; k < cols; ++k) {
      const int32_t g = Group(k);
      if (g < 0 || g >= G) {
        return Status::Error(what + "." + suffix + ": entry " + std::to_string(k) + " is group " + std::to_string(g) +
                             ", expected 0.." + std::to_string(G - 1));
      }
    }
  }
  return Status::Ok();
}

uint32_t PackedLinear::Code(int64_t n, int64_t k) const { return LayoutOf(layout).Code(*this, n, k); }
int32_t PackedLinear::Zero(int64_t n, int64_t g) const { return LayoutOf(layout).Zero(*this, n, g); }
float PackedLinear::Scale(int64_t n, int64_t g) const { return LayoutOf(layout).Scale(*this, n, g); }

int32_t PackedLinear::Group(int64_t k) const {
  if (!layout::Present(g_idx)) return static_cast<int32_t>(k / spec.GroupLen(cols));
  int32_t g;
  std::memcpy(&g, g_idx.data + k * 4, 4);
  return g;
}

Status PackedLinear::DecodeRows(int64_t row0, int64_t n, float* out) const {
  const CheckpointLayout& lay = LayoutOf(layout);
  const int64_t G = spec.Groups(cols);
  std::vector<float> s(static_cast<size_t>(G));
  std::vector<int32_t> z(static_cast<size_t>(G));
  for (int64_t r = row0; r < row0 + n; ++r) {
    for (int64_t g = 0; g < G; ++g) {
      s[static_cast<size_t>(g)] = lay.Scale(*this, r, g);
      z[static_cast<size_t>(g)] = lay.Zero(*this, r, g);
    }
    float* o = out + (r - row0) * cols;
    for (int64_t k = 0; k < cols; ++k) {
      const int32_t g = Group(k);
      o[k] = s[static_cast<size_t>(g)] * static_cast<float>(static_cast<int32_t>(lay.Code(*this, r, k)) - z[static_cast<size_t>(g)]);
    }
  }
  return Status::Ok();
}

IntQuantized PackedLinear::Unpack() const {
  IntQuantized q = IntQuantized::Allocate(spec, rows, cols);
  for (int64_t k = 0; k < cols; ++k) q.g_idx[static_cast<size_t>(k)] = Group(k);
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t k = 0; k < cols; ++k) q.codes[static_cast<size_t>(n * cols + k)] = static_cast<uint8_t>(Code(n, k));
    for (int64_t g = 0; g < q.n_groups; ++g) {
      q.scales[static_cast<size_t>(n * q.n_groups + g)] = Scale(n, g);
      q.zeros[static_cast<size_t>(n * q.n_groups + g)] = Zero(n, g);
    }
  }
  return q;
}

}  // namespace qforge
