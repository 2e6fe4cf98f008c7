#include "io/checkpoint_layout.h"

#include "io/layout_util.h"
#include "numeric/half.h"

namespace qforge {

// Each layout's file defines its instance.
const CheckpointLayout& CompressedTensorsLayoutInstance();
const CheckpointLayout& GptqLayoutInstance();
const CheckpointLayout& AwqLayoutInstance();

const CheckpointLayout& LayoutOf(IntLayout l) {
  switch (l) {
    case IntLayout::kGptq: return GptqLayoutInstance();
    case IntLayout::kAwq: return AwqLayoutInstance();
    case IntLayout::kCompressedTensors: break;
  }
  return CompressedTensorsLayoutInstance();
}

const CheckpointLayout* LayoutOfQuantMethod(const std::string& quant_method) {
  for (IntLayout l : {IntLayout::kCompressedTensors, IntLayout::kGptq, IntLayout::kAwq}) {
    if (quant_method == LayoutOf(l).quant_method()) return &LayoutOf(l);
  }
  return nullptr;
}

Result<int64_t> ConfigReader::Int(const nlohmann::json& o, std::initializer_list<const char*> keys, int64_t def) const {
  for (const char* k : keys) {
    if (!o.contains(k) || o[k].is_null()) continue;
    if (!o[k].is_number_integer()) return Status::Error(where + "." + k + ": expected an integer");
    return o[k].get<int64_t>();
  }
  return def;
}

Result<bool> ConfigReader::Bool(const nlohmann::json& o, const char* k, bool def) const {
  if (!o.contains(k) || o[k].is_null()) return def;
  if (!o[k].is_boolean()) return Status::Error(where + "." + k + ": expected true or false");
  return o[k].get<bool>();
}

namespace layout {

uint32_t StridedBits(const uint32_t* words, int64_t stride, int64_t index, int bits) {
  const uint64_t bit = static_cast<uint64_t>(index) * static_cast<uint64_t>(bits);
  const uint64_t w = bit / 32, off = bit % 32;
  uint64_t v = words[w * stride] >> off;
  if (off + bits > 32) v |= static_cast<uint64_t>(words[(w + 1) * stride]) << (32 - off);
  return static_cast<uint32_t>(v) & ((1u << bits) - 1);
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

std::vector<float> ScalesByGroup(const IntQuantized& q) {
  const int64_t N = q.rows, G = q.n_groups;
  std::vector<float> t(static_cast<size_t>(G * N));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < G; ++g) t[static_cast<size_t>(g * N + n)] = q.scales[static_cast<size_t>(n * G + g)];
  return t;
}

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

Result<PackedFormat> QweightFormat(IntLayout id, const nlohmann::json& q, const ConfigReader& r) {
  PackedFormat f;
  f.layout = id;
  QF_ASSIGN_OR_RETURN(int64_t bits, r.Int(q, {"bits", "w_bit"}, 4));
  QF_ASSIGN_OR_RETURN(f.spec.group_size, r.Int(q, {"group_size", "q_group_size"}, 128));
  f.spec.bits = static_cast<int>(bits);
  f.main_suffix = ".qweight";
  f.part_suffixes = {".qweight", ".qzeros", ".scales", ".g_idx"};
  return f;
}

}  // namespace layout
}  // namespace qforge
