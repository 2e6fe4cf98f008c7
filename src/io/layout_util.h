// Helpers the checkpoint layouts (io/layouts/*.cc) share: bit streams,
// little-endian byte images, scale dtypes and tensor checks.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "codecs/int_group.h"
#include "io/safetensors.h"
#include "qforge/status.h"

namespace qforge::layout {

// Bit `index * bits` of a stream whose 32-bit words sit `stride` apart.
uint32_t StridedBits(const uint32_t* words, int64_t stride, int64_t index, int bits);
inline int64_t Words(int64_t n, int bits) { return (n * bits + 31) / 32; }

template <typename T>
std::vector<uint8_t> Bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::vector<uint8_t> ScaleBytes(const std::vector<float>& v, StDtype d);
float ScaleAt(const StTensor& t, int64_t i);
StDtype ScaleStDtype(ScaleDtype d);
// Scales transposed to [groups, N] (GPTQ, AWQ).
std::vector<float> ScalesByGroup(const IntQuantized& q);

inline const uint32_t* Words32(const StTensor& t) { return reinterpret_cast<const uint32_t*>(t.data); }
inline const StTensor* Present(const StTensor& t) { return t.data != nullptr ? &t : nullptr; }

// A present tensor of this dtype (F16 also accepts BF16 and F32 scales) and shape.
Status CheckTensor(const StTensor* t, const std::string& what, const std::string& suffix, StDtype dtype,
                   const std::vector<int64_t>& shape);

// The tensors of one packed linear, filled in the order Tensors() lists them.
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

}  // namespace qforge::layout

#include "io/checkpoint_layout.h"

namespace qforge::layout {

// GPTQ's and AWQ's shared keys: bits (w_bit), group_size (q_group_size),
// and the qweight / qzeros / scales / g_idx tensor names.
Result<PackedFormat> QweightFormat(IntLayout id, const nlohmann::json& q, const ConfigReader& r);

}  // namespace qforge::layout
