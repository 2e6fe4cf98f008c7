#include "io/int_layouts.h"

#include <cstring>

#include "numeric/half.h"

namespace qforge {
namespace {

// Bit `index * bits` of a stream whose 32-bit words sit `stride` apart.
uint32_t StridedBits(const uint32_t* words, int64_t stride, int64_t index, int bits) {
  const uint64_t bit = static_cast<uint64_t>(index) * static_cast<uint64_t>(bits);
  const uint64_t w = bit / 32, off = bit % 32;
  uint64_t v = words[w * stride] >> off;
  if (off + bits > 32) v |= static_cast<uint64_t>(words[(w + 1) * stride]) << (32 - off);
  return static_cast<uint32_t>(v) & ((1u << bits) - 1);
}

constexpr int kAwqSlot[8] = {0, 4, 1, 5, 2, 6, 3, 7};  // column j of a word lives in nibble kAwqSlot[j]

constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};  // nibble i holds column 8c + kAwqOrder[i]

int64_t Words(int64_t n, int bits) { return (n * bits + 31) / 32; }

template <typename T>
std::vector<uint8_t> Bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::vector<uint8_t> ScaleBytes(const std::vector<float>& v, StDtype d) {
  if (d == StDtype::F32) return Bytes(v);
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = d == StDtype::BF16 ? FloatToBf16(v[i]) : FloatToHalf(v[i]);
  return Bytes(h);
}

float ScaleAt(const StTensor& t, int64_t i) {
  switch (t.dtype) {
    case StDtype::F32: {
      float f;
      std::memcpy(&f, t.data + i * 4, 4);
      return f;
    }
    case StDtype::F16:
    case StDtype::BF16: {
      uint16_t h;
      std::memcpy(&h, t.data + i * 2, 2);
      return t.dtype == StDtype::F16 ? HalfToFloat(h) : Bf16ToFloat(h);
    }
    default: return 0.0f;
  }
}

StDtype ScaleStDtype(ScaleDtype d) {
  return d == ScaleDtype::kF16 ? StDtype::F16 : d == ScaleDtype::kBF16 ? StDtype::BF16 : StDtype::F32;
}

const uint32_t* Words32(const StTensor& t) { return reinterpret_cast<const uint32_t*>(t.data); }
const StTensor* Present(const StTensor& t) { return t.data != nullptr ? &t : nullptr; }

Status CheckTensor(const StTensor* t, const std::string& what, const std::string& suffix, StDtype dtype,
                   const std::vector<int64_t>& shape) {
  auto shape_str = [](const std::vector<int64_t>& s) {
    std::string o = "[";
    for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
    return o + "]";
  };
  if (t == nullptr) return Status::Error(what + "." + suffix + ": missing");
  const bool float_ok = dtype == StDtype::F16 && (t->dtype == StDtype::BF16 || t->dtype == StDtype::F32 || t->dtype == StDtype::F16);
  if (t->dtype != dtype && !float_ok) {
    return Status::Error(what + "." + suffix + ": dtype " + StDtypeName(t->dtype) + ", expected " + StDtypeName(dtype));
  }
  if (t->shape != shape) {
    return Status::Error(what + "." + suffix + ": shape " + shape_str(t->shape) + ", expected " + shape_str(shape));
  }
  return Status::Ok();
}

}  // namespace

const char* IntLayoutName(IntLayout l) {
  switch (l) {
    case IntLayout::kCompressedTensors: return "compressed-tensors";
    case IntLayout::kGptq: return "gptq";
    case IntLayout::kAwq: return "awq";
  }
  return "?";
}

std::optional<IntLayout> IntLayoutFromName(const std::string& s) {
  for (IntLayout l : {IntLayout::kCompressedTensors, IntLayout::kGptq, IntLayout::kAwq}) {
    if (s == IntLayoutName(l)) return l;
  }
  return std::nullopt;
}

ScaleDtype LayoutScaleDtype(IntLayout l, StDtype model_dtype) {
  if (l != IntLayout::kCompressedTensors) return ScaleDtype::kF16;
  return model_dtype == StDtype::F32 ? ScaleDtype::kF32 : model_dtype == StDtype::F16 ? ScaleDtype::kF16 : ScaleDtype::kBF16;
}

uint64_t StTensorSpec::nbytes() const {
  uint64_t n = static_cast<uint64_t>(StDtypeBytes(dtype));
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

std::vector<uint32_t> PackBits(const std::vector<uint32_t>& values, int bits) {
  std::vector<uint32_t> w(static_cast<size_t>(Words(static_cast<int64_t>(values.size()), bits)), 0);
  const uint32_t mask = (1u << bits) - 1;
  for (size_t i = 0; i < values.size(); ++i) {
    const uint64_t bit = i * static_cast<uint64_t>(bits);
    const uint64_t v = static_cast<uint64_t>(values[i] & mask) << (bit % 32);
    w[bit / 32] |= static_cast<uint32_t>(v);
    if ((bit % 32) + bits > 32) w[bit / 32 + 1] |= static_cast<uint32_t>(v >> 32);
  }
  return w;
}

uint32_t UnpackBits(const uint32_t* words, int64_t index, int bits) { return StridedBits(words, 1, index, bits); }

Status LayoutSupports(IntLayout l, int64_t rows, int64_t cols, const IntQuantSpec& spec, bool act_order_groups) {
  QF_RETURN_IF_ERROR(spec.Check(cols));
  switch (l) {
    case IntLayout::kCompressedTensors:
      return Status::Ok();
    case IntLayout::kGptq:
      if ((cols * spec.bits) % 32 != 0 || (rows * spec.bits) % 32 != 0) {
        return Status::Error("the GPTQ layout packs " + std::to_string(spec.bits) + "-bit codes into 32-bit words, so rows (" +
                             std::to_string(rows) + ") and columns (" + std::to_string(cols) +
                             ") times bits must be multiples of 32");
      }
      if (!spec.symmetric && !spec.zero_at_least_one) return Status::Error("asymmetric GPTQ (v1) needs zero points of at least 1");
      return Status::Ok();
    case IntLayout::kAwq:
      if (spec.bits != 4) return Status::Error("the AWQ GEMM layout stores 4-bit codes only");
      if (rows % 8 != 0) {
        return Status::Error("the AWQ layout packs 8 output rows per word; " + std::to_string(rows) + " rows do not divide");
      }
      if (act_order_groups) return Status::Error("the AWQ layout has no g_idx, so act-order groups cannot be stored");
      return Status::Ok();
  }
  return Status::Error("unknown layout");
}

std::vector<StTensorSpec> LayoutTensors(IntLayout l, const std::string& prefix, int64_t rows, int64_t cols,
                                        const IntQuantSpec& spec, bool act_order_groups, StDtype model_dtype) {
  const int64_t N = rows, K = cols, G = spec.Groups(cols);
  const int b = spec.bits;
  const StDtype sd = ScaleStDtype(LayoutScaleDtype(l, model_dtype));
  std::vector<StTensorSpec> out;
  switch (l) {
    case IntLayout::kCompressedTensors:
      out.push_back({prefix + ".weight_packed", StDtype::I32, {N, Words(K, b)}});
      out.push_back({prefix + ".weight_scale", sd, {N, G}});
      out.push_back({prefix + ".weight_shape", StDtype::I64, {2}});
      if (!spec.symmetric) out.push_back({prefix + ".weight_zero_point", StDtype::I32, {Words(N, b), G}});
      if (act_order_groups) out.push_back({prefix + ".weight_g_idx", StDtype::I32, {K}});
      break;
    case IntLayout::kGptq:
      out.push_back({prefix + ".qweight", StDtype::I32, {K * b / 32, N}});
      out.push_back({prefix + ".qzeros", StDtype::I32, {G, N * b / 32}});
      out.push_back({prefix + ".scales", sd, {G, N}});
      out.push_back({prefix + ".g_idx", StDtype::I32, {K}});
      break;
    case IntLayout::kAwq:
      out.push_back({prefix + ".qweight", StDtype::I32, {K, N / 8}});
      out.push_back({prefix + ".qzeros", StDtype::I32, {G, N / 8}});
      out.push_back({prefix + ".scales", sd, {G, N}});
      break;
  }
  return out;
}

namespace {

// The tensors of one packed linear, filled in the order LayoutTensors lists them.
class PackedTensors {
 public:
  explicit PackedTensors(std::vector<StTensorSpec> specs) : specs_(std::move(specs)) {}
  const StTensorSpec& spec(size_t i) const { return specs_[i]; }
  void Add(std::vector<uint8_t> bytes) {
    const StTensorSpec& s = specs_[out_.size()];
    out_.push_back({s.name, s.dtype, s.shape, std::move(bytes)});
  }
  std::vector<StWriteTensor> Take() { return std::move(out_); }

 private:
  std::vector<StTensorSpec> specs_;
  std::vector<StWriteTensor> out_;
};

// Scales transposed to [groups, N] (GPTQ, AWQ).
std::vector<float> ScalesByGroup(const IntQuantized& q) {
  const int64_t N = q.rows, G = q.n_groups;
  std::vector<float> t(static_cast<size_t>(G * N));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < G; ++g) t[static_cast<size_t>(g * N + n)] = q.scales[static_cast<size_t>(n * G + g)];
  return t;
}

// compressed-tensors: codes packed along K per row; zeros packed along N.
void PackCompressedTensors(const IntQuantized& q, bool act, PackedTensors* out) {
  const int64_t N = q.rows, K = q.cols, G = q.n_groups;
  const int b = q.spec.bits;
  std::vector<uint32_t> packed;
  std::vector<uint32_t> row(static_cast<size_t>(K));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) row[static_cast<size_t>(k)] = q.codes[static_cast<size_t>(n * K + k)];
    const auto w = PackBits(row, b);
    packed.insert(packed.end(), w.begin(), w.end());
  }
  out->Add(Bytes(packed));
  out->Add(ScaleBytes(q.scales, out->spec(1).dtype));
  out->Add(Bytes(std::vector<int64_t>{N, K}));
  if (!q.spec.symmetric) {
    // Packed along N: pack each group's column of zeros, then transpose.
    const int64_t words = Words(N, b);
    std::vector<uint32_t> zp(static_cast<size_t>(words * G));
    std::vector<uint32_t> col(static_cast<size_t>(N));
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t n = 0; n < N; ++n) col[static_cast<size_t>(n)] = static_cast<uint32_t>(q.zeros[static_cast<size_t>(n * G + g)]);
      const auto w = PackBits(col, b);
      for (int64_t i = 0; i < words; ++i) zp[static_cast<size_t>(i * G + g)] = w[static_cast<size_t>(i)];
    }
    out->Add(Bytes(zp));
  }
  if (act) out->Add(Bytes(q.g_idx));
}

// GPTQ v1: qweight [K*b/32, N] (each column's codes along K as one
// bitstream), qzeros [G, N*b/32] holding zero - 1, scales [G, N], g_idx.
void PackGptq(const IntQuantized& q, PackedTensors* out) {
  const int64_t N = q.rows, K = q.cols, G = q.n_groups;
  const int b = q.spec.bits;
  const int64_t kw = K * b / 32;
  std::vector<uint32_t> qw(static_cast<size_t>(kw * N));
  std::vector<uint32_t> col(static_cast<size_t>(K));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) col[static_cast<size_t>(k)] = q.codes[static_cast<size_t>(n * K + k)];
    const auto w = PackBits(col, b);
    for (int64_t i = 0; i < kw; ++i) qw[static_cast<size_t>(i * N + n)] = w[static_cast<size_t>(i)];
  }
  out->Add(Bytes(qw));
  std::vector<uint32_t> qz;
  std::vector<uint32_t> zrow(static_cast<size_t>(N));
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t n = 0; n < N; ++n) zrow[static_cast<size_t>(n)] = static_cast<uint32_t>(q.zeros[static_cast<size_t>(n * G + g)] - 1);
    const auto w = PackBits(zrow, b);
    qz.insert(qz.end(), w.begin(), w.end());
  }
  out->Add(Bytes(qz));
  out->Add(ScaleBytes(ScalesByGroup(q), out->spec(2).dtype));
  out->Add(Bytes(q.g_idx));
}

// AWQ GEMM: 4-bit codes and zeros, eight output channels per word in AWQ's
// interleaved order; scales [G, N].
void PackAwq(const IntQuantized& q, PackedTensors* out) {
  const int64_t N = q.rows, K = q.cols, G = q.n_groups;
  auto interleave = [&](auto value_at, int64_t n_rows) {
    std::vector<uint32_t> words(static_cast<size_t>(n_rows * (N / 8)), 0);
    for (int64_t r = 0; r < n_rows; ++r)
      for (int64_t c = 0; c < N / 8; ++c) {
        uint32_t w = 0;
        for (int i = 0; i < 8; ++i) w |= (static_cast<uint32_t>(value_at(r, 8 * c + kAwqOrder[i])) & 0xF) << (4 * i);
        words[static_cast<size_t>(r * (N / 8) + c)] = w;
      }
    return words;
  };
  out->Add(Bytes(interleave([&](int64_t k, int64_t n) { return q.codes[static_cast<size_t>(n * K + k)]; }, K)));
  out->Add(Bytes(interleave([&](int64_t g, int64_t n) { return q.zeros[static_cast<size_t>(n * G + g)]; }, G)));
  out->Add(ScaleBytes(ScalesByGroup(q), out->spec(2).dtype));
}

}  // namespace

std::vector<StWriteTensor> PackLayout(IntLayout l, const std::string& prefix, const IntQuantized& q, StDtype model_dtype) {
  const bool act = !q.MonotonicGroups();
  PackedTensors out(LayoutTensors(l, prefix, q.rows, q.cols, q.spec, act, model_dtype));
  switch (l) {
    case IntLayout::kCompressedTensors: PackCompressedTensors(q, act, &out); break;
    case IntLayout::kGptq: PackGptq(q, &out); break;
    case IntLayout::kAwq: PackAwq(q, &out); break;
  }
  return out.Take();
}

Status PackedLinear::Validate(const std::string& what) const {
  const int64_t N = rows, K = cols;
  QF_RETURN_IF_ERROR(spec.Check(K).WithContext(what));
  const int b = spec.bits;
  const int64_t G = spec.Groups(K);
  switch (layout) {
    case IntLayout::kCompressedTensors:
      QF_RETURN_IF_ERROR(CheckTensor(Present(packed), what, "weight_packed", StDtype::I32, {N, Words(K, b)}));
      QF_RETURN_IF_ERROR(CheckTensor(Present(scales), what, "weight_scale", StDtype::F16, {N, G}));
      if (!spec.symmetric) QF_RETURN_IF_ERROR(CheckTensor(Present(zeros), what, "weight_zero_point", StDtype::I32, {Words(N, b), G}));
      break;
    case IntLayout::kGptq:
      if ((K * b) % 32 != 0 || (N * b) % 32 != 0) return Status::Error(what + ": shape does not fit the GPTQ packing");
      QF_RETURN_IF_ERROR(CheckTensor(Present(packed), what, "qweight", StDtype::I32, {K * b / 32, N}));
      QF_RETURN_IF_ERROR(CheckTensor(Present(zeros), what, "qzeros", StDtype::I32, {G, N * b / 32}));
      QF_RETURN_IF_ERROR(CheckTensor(Present(scales), what, "scales", StDtype::F16, {G, N}));
      break;
    case IntLayout::kAwq:
      if (b != 4 || N % 8 != 0) return Status::Error(what + ": the AWQ layout needs 4 bits and rows in multiples of 8");
      QF_RETURN_IF_ERROR(CheckTensor(Present(packed), what, "qweight", StDtype::I32, {K, N / 8}));
      QF_RETURN_IF_ERROR(CheckTensor(Present(zeros), what, "qzeros", StDtype::I32, {G, N / 8}));
      QF_RETURN_IF_ERROR(CheckTensor(Present(scales), what, "scales", StDtype::F16, {G, N}));
      if (Present(g_idx)) return Status::Error(what + ": the AWQ layout has no g_idx");
      break;
  }
  if (Present(g_idx)) {
    const std::string suffix = layout == IntLayout::kGptq ? "g_idx" : "weight_g_idx";
    QF_RETURN_IF_ERROR(CheckTensor(Present(g_idx), what, suffix, StDtype::I32, {K}));
    for (int64_t k = 0; k < K; ++k) {
      const int32_t g = Group(k);
      if (g < 0 || g >= G) {
        return Status::Error(what + "." + suffix + ": entry " + std::to_string(k) + " is group " + std::to_string(g) +
                             ", expected 0.." + std::to_string(G - 1));
      }
    }
  }
  return Status::Ok();
}

uint32_t PackedLinear::Code(int64_t n, int64_t k) const {
  const int b = spec.bits;
  const uint32_t* w = Words32(packed);
  switch (layout) {
    case IntLayout::kCompressedTensors: return StridedBits(w + n * Words(cols, b), 1, k, b);
    case IntLayout::kGptq: return StridedBits(w + n, rows, k, b);
    case IntLayout::kAwq: return (w[k * (rows / 8) + n / 8] >> (4 * kAwqSlot[n % 8])) & 0xF;
  }
  return 0;
}

int32_t PackedLinear::Zero(int64_t n, int64_t g) const {
  const int b = spec.bits;
  const int64_t G = spec.Groups(cols);
  switch (layout) {
    case IntLayout::kCompressedTensors:
      if (spec.symmetric || !Present(zeros)) return (1 << b) / 2;
      return static_cast<int32_t>(StridedBits(Words32(zeros) + g, G, n, b));
    case IntLayout::kGptq: {
      const uint32_t stored = StridedBits(Words32(zeros) + g * (rows * b / 32), 1, n, b);
      // v1: a stored all-ones field means zero 0 (wrapped).
      return static_cast<int32_t>(zeros_minus_one ? (stored + 1) & static_cast<uint32_t>(spec.maxq()) : stored);
    }
    case IntLayout::kAwq:
      return static_cast<int32_t>((Words32(zeros)[g * (rows / 8) + n / 8] >> (4 * kAwqSlot[n % 8])) & 0xF);
  }
  return 0;
}

float PackedLinear::Scale(int64_t n, int64_t g) const {
  return layout == IntLayout::kCompressedTensors ? ScaleAt(scales, n * spec.Groups(cols) + g) : ScaleAt(scales, g * rows + n);
}

int32_t PackedLinear::Group(int64_t k) const {
  if (!Present(g_idx)) return static_cast<int32_t>(k / spec.GroupLen(cols));
  int32_t g;
  std::memcpy(&g, g_idx.data + k * 4, 4);
  return g;
}

Status PackedLinear::DecodeRows(int64_t row0, int64_t n, float* out) const {
  const int64_t G = spec.Groups(cols);
  std::vector<float> s(static_cast<size_t>(G));
  std::vector<int32_t> z(static_cast<size_t>(G));
  for (int64_t r = row0; r < row0 + n; ++r) {
    for (int64_t g = 0; g < G; ++g) {
      s[static_cast<size_t>(g)] = Scale(r, g);
      z[static_cast<size_t>(g)] = Zero(r, g);
    }
    float* o = out + (r - row0) * cols;
    for (int64_t k = 0; k < cols; ++k) {
      const int32_t g = Group(k);
      o[k] = s[static_cast<size_t>(g)] * static_cast<float>(static_cast<int32_t>(Code(r, k)) - z[static_cast<size_t>(g)]);
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
