// AutoAWQ's GEMM layout (spec §5): 4-bit codes and zeros, eight output
// channels per 32-bit word in AWQ's interleaved nibble order, scales [G, N]
// in F16, no g_idx.
#include "io/checkpoint_layout.h"
#include "io/layout_util.h"

namespace qforge {
namespace {

using namespace layout;

constexpr int kAwqSlot[8] = {0, 4, 1, 5, 2, 6, 3, 7};   // column j of a word lives in nibble kAwqSlot[j]
constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};  // nibble i holds column 8c + kAwqOrder[i]

class AwqLayout : public CheckpointLayout {
 public:
  IntLayout id() const override { return IntLayout::kAwq; }
  const char* name() const override { return "awq"; }
  const char* quant_method() const override { return "awq"; }
  ScaleDtype scale_dtype(StDtype) const override { return ScaleDtype::kF16; }

  Status Supports(int64_t rows, int64_t, const IntQuantSpec& spec, bool act_order_groups) const override {
    if (spec.bits != 4) return Status::Error("the AWQ GEMM layout stores 4-bit codes only");
    if (rows % 8 != 0) {
      return Status::Error("the AWQ layout packs 8 output rows per word; " + std::to_string(rows) + " rows do not divide");
    }
    if (act_order_groups) return Status::Error("the AWQ layout has no g_idx, so act-order groups cannot be stored");
    return Status::Ok();
  }

  std::vector<StTensorSpec> Tensors(const std::string& prefix, int64_t N, int64_t K, const IntQuantSpec& spec, bool,
                                    StDtype sd) const override {
    const int64_t G = spec.Groups(K);
    return {{prefix + ".qweight", StDtype::I32, {K, N / 8}},
            {prefix + ".qzeros", StDtype::I32, {G, N / 8}},
            {prefix + ".scales", sd, {G, N}}};
  }

  std::vector<StWriteTensor> Pack(const IntQuantized& q, std::vector<StTensorSpec> specs, bool) const override {
    PackedTensors out(std::move(specs));
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
    out.Add(Bytes(interleave([&](int64_t k, int64_t n) { return q.codes[static_cast<size_t>(n * K + k)]; }, K)));
    out.Add(Bytes(interleave([&](int64_t g, int64_t n) { return q.zeros[static_cast<size_t>(n * G + g)]; }, G)));
    out.Add(ScaleBytes(ScalesByGroup(q), out.spec(2).dtype));
    return out.Take();
  }

  Result<PackedFormat> ParseConfig(const nlohmann::json& q, const std::string& where) const override {
    const ConfigReader r{where};
    QF_ASSIGN_OR_RETURN(PackedFormat f, QweightFormat(id(), q, r));
    QF_ASSIGN_OR_RETURN(bool zp, r.Bool(q, "zero_point", true));
    const std::string version = q.contains("version") && q["version"].is_string() ? q["version"].get<std::string>() : "gemm";
    if (!zp || (version != "gemm" && version != "GEMM")) {
      return Status::Error(where + ": only AWQ's GEMM layout with zero points is readable (version '" + version + "')");
    }
    f.spec.symmetric = false;
    return f;
  }

  Result<std::pair<int64_t, int64_t>> ShapeOf(const SafetensorsModel& st, const std::string& module, const PackedFormat& f,
                                              const std::string&) const override {
    const StTensor* main = st.Find(module + f.main_suffix);
    return std::pair<int64_t, int64_t>{main->shape[1] * 8, main->shape[0]};
  }

  Status Validate(const PackedLinear& p, const std::string& what) const override {
    const int64_t N = p.rows, K = p.cols, G = p.spec.Groups(K);
    if (p.spec.bits != 4 || N % 8 != 0) return Status::Error(what + ": the AWQ layout needs 4 bits and rows in multiples of 8");
    QF_RETURN_IF_ERROR(CheckTensor(Present(p.packed), what, "qweight", StDtype::I32, {K, N / 8}));
    QF_RETURN_IF_ERROR(CheckTensor(Present(p.zeros), what, "qzeros", StDtype::I32, {G, N / 8}));
    QF_RETURN_IF_ERROR(CheckTensor(Present(p.scales), what, "scales", StDtype::F16, {G, N}));
    if (Present(p.g_idx)) return Status::Error(what + ": the AWQ layout has no g_idx");
    return Status::Ok();
  }
  const char* g_idx_suffix() const override { return "g_idx"; }

  uint32_t Code(const PackedLinear& p, int64_t n, int64_t k) const override {
    return (Words32(p.packed)[k * (p.rows / 8) + n / 8] >> (4 * kAwqSlot[n % 8])) & 0xF;
  }
  int32_t Zero(const PackedLinear& p, int64_t n, int64_t g) const override {
    return static_cast<int32_t>((Words32(p.zeros)[g * (p.rows / 8) + n / 8] >> (4 * kAwqSlot[n % 8])) & 0xF);
  }
  float Scale(const PackedLinear& p, int64_t n, int64_t g) const override { return ScaleAt(p.scales, g * p.rows + n); }

  nlohmann::ordered_json Config(const ConfigFacts& f) const override {
    nlohmann::ordered_json skip = nullptr;
    if (!f.ignored_modules.empty()) {
      skip = nlohmann::ordered_json::array();
      for (const auto& m : f.ignored_modules) skip.push_back(m);
    }
    return {{"quant_method", "awq"},
            {"zero_point", true},
            {"group_size", f.spec.group_size > 0 ? f.spec.group_size : -1},
            {"bits", f.spec.bits},
            {"version", "gemm"},
            {"modules_to_not_convert", skip}};
  }
};

}  // namespace

const CheckpointLayout& AwqLayoutInstance() {
  static const AwqLayout kLayout;
  return kLayout;
}

}  // namespace qforge
