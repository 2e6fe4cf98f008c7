// compressed-tensors "pack-quantized" (llm-compressor; spec §3.4): codes
// packed along K per output row, scales [N, G] in the model's float dtype,
// zero points packed along N, weight_shape, and weight_g_idx for act-order.
#include "io/checkpoint_layout.h"
#include "io/layout_util.h"

namespace qforge {
namespace {

using namespace layout;

class CompressedTensorsLayout : public CheckpointLayout {
 public:
  IntLayout id() const override { return IntLayout::kCompressedTensors; }
  const char* name() const override { return "compressed-tensors"; }
  const char* quant_method() const override { return "compressed-tensors"; }

  ScaleDtype scale_dtype(StDtype model_dtype) const override {
    return model_dtype == StDtype::F32 ? ScaleDtype::kF32 : model_dtype == StDtype::F16 ? ScaleDtype::kF16 : ScaleDtype::kBF16;
  }

  Status Supports(int64_t, int64_t, const IntQuantSpec&, bool) const override { return Status::Ok(); }

  std::vector<StTensorSpec> Tensors(const std::string& prefix, int64_t N, int64_t K, const IntQuantSpec& spec, bool act,
                                    StDtype sd) const override {
    const int64_t G = spec.Groups(K);
    const int b = spec.bits;
    std::vector<StTensorSpec> out;
    out.push_back({prefix + ".weight_packed", StDtype::I32, {N, Words(K, b)}});
    out.push_back({prefix + ".weight_scale", sd, {N, G}});
    out.push_back({prefix + ".weight_shape", StDtype::I64, {2}});
    if (!spec.symmetric) out.push_back({prefix + ".weight_zero_point", StDtype::I32, {Words(N, b), G}});
    if (act) out.push_back({prefix + ".weight_g_idx", StDtype::I32, {K}});
    return out;
  }

  std::vector<StWriteTensor> Pack(const IntQuantized& q, std::vector<StTensorSpec> specs, bool act) const override {
    PackedTensors out(std::move(specs));
    const int64_t N = q.rows, K = q.cols, G = q.n_groups;
    const int b = q.spec.bits;
    std::vector<uint32_t> packed;
    std::vector<uint32_t> row(static_cast<size_t>(K));
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t k = 0; k < K; ++k) row[static_cast<size_t>(k)] = q.codes[static_cast<size_t>(n * K + k)];
      const auto w = PackBits(row, b);
      packed.insert(packed.end(), w.begin(), w.end());
    }
    out.Add(Bytes(packed));
    out.Add(ScaleBytes(q.scales, out.spec(1).dtype));
    out.Add(Bytes(std::vector<int64_t>{N, K}));
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
      out.Add(Bytes(zp));
    }
    if (act) out.Add(Bytes(q.g_idx));
    return out.Take();
  }

  Result<PackedFormat> ParseConfig(const nlohmann::json& q, const std::string& where) const override {
    const ConfigReader r{where};
    PackedFormat f;
    f.layout = id();
    f.main_suffix = ".weight_packed";
    f.part_suffixes = {".weight_packed", ".weight_scale", ".weight_shape", ".weight_zero_point", ".weight_g_idx"};
    const std::string fmt = q.contains("format") && q["format"].is_string() ? q["format"].get<std::string>() : "";
    if (fmt != "pack-quantized") {
      return Status::Error(where + ".format: '" + fmt + "' is not readable by qforge yet (expected pack-quantized)");
    }
    if (!q.contains("config_groups") || !q["config_groups"].is_object() || q["config_groups"].size() != 1) {
      return Status::Error(where + ".config_groups: expected exactly one group");
    }
    const nlohmann::json& g = q["config_groups"].begin().value();
    if (!g.is_object() || !g.contains("weights") || !g["weights"].is_object()) {
      return Status::Error(where + ".config_groups: the group has no 'weights' object");
    }
    const nlohmann::json& w = g["weights"];
    if (w.contains("type") && w["type"] != "int") return Status::Error(where + ".config_groups.weights.type: expected \"int\"");
    QF_ASSIGN_OR_RETURN(int64_t bits, r.Int(w, {"num_bits"}, 8));
    f.spec.bits = static_cast<int>(bits);
    QF_ASSIGN_OR_RETURN(f.spec.group_size, r.Int(w, {"group_size"}, -1));
    QF_ASSIGN_OR_RETURN(f.spec.symmetric, r.Bool(w, "symmetric", true));
    const std::string strategy = w.contains("strategy") && w["strategy"].is_string() ? w["strategy"].get<std::string>() : "";
    if (strategy == "channel") f.spec.group_size = -1;
    if (!strategy.empty() && strategy != "channel" && strategy != "group") {
      return Status::Error(where + ".config_groups.weights.strategy: '" + strategy + "' is not readable (expected group or channel)");
    }
    return f;
  }

  Result<std::pair<int64_t, int64_t>> ShapeOf(const SafetensorsModel& st, const std::string& module, const PackedFormat&,
                                              const std::string& what) const override {
    const StTensor* s = st.Find(module + ".weight_shape");
    if (s == nullptr || s->numel() != 2 || (s->dtype != StDtype::I64 && s->dtype != StDtype::I32)) {
      return Status::Error(what + ".weight_shape: missing or not two integers");
    }
    int64_t v[2];
    for (int i = 0; i < 2; ++i) {
      if (s->dtype == StDtype::I64) {
        std::memcpy(&v[i], s->data + 8 * i, 8);
      } else {
        int32_t x;
        std::memcpy(&x, s->data + 4 * i, 4);
        v[i] = x;
      }
    }
    if (v[0] <= 0 || v[1] <= 0) return Status::Error(what + ".weight_shape: not positive");
    return std::pair<int64_t, int64_t>{v[0], v[1]};
  }

  Status Validate(const PackedLinear& p, const std::string& what) const override {
    const int64_t N = p.rows, K = p.cols, G = p.spec.Groups(K);
    const int b = p.spec.bits;
    QF_RETURN_IF_ERROR(CheckTensor(Present(p.packed), what, "weight_packed", StDtype::I32, {N, Words(K, b)}));
    QF_RETURN_IF_ERROR(CheckTensor(Present(p.scales), what, "weight_scale", StDtype::F16, {N, G}));
    if (!p.spec.symmetric) QF_RETURN_IF_ERROR(CheckTensor(Present(p.zeros), what, "weight_zero_point", StDtype::I32, {Words(N, b), G}));
    return Status::Ok();
  }
  const char* g_idx_suffix() const override { return "weight_g_idx"; }

  uint32_t Code(const PackedLinear& p, int64_t n, int64_t k) const override {
    return StridedBits(Words32(p.packed) + n * Words(p.cols, p.spec.bits), 1, k, p.spec.bits);
  }
  int32_t Zero(const PackedLinear& p, int64_t n, int64_t g) const override {
    if (p.spec.symmetric || !Present(p.zeros)) return (1 << p.spec.bits) / 2;
    return static_cast<int32_t>(StridedBits(Words32(p.zeros) + g, p.spec.Groups(p.cols), n, p.spec.bits));
  }
  float Scale(const PackedLinear& p, int64_t n, int64_t g) const override {
    return ScaleAt(p.scales, n * p.spec.Groups(p.cols) + g);
  }

  nlohmann::ordered_json Config(const ConfigFacts& f) const override {
    using ordered_json = nlohmann::ordered_json;
    const IntQuantSpec& sp = f.spec;
    const bool act = f.act_order && sp.group_size > 0;
    ordered_json weights = {
        {"actorder", act ? (f.static_groups ? ordered_json("weight") : ordered_json("group")) : ordered_json(nullptr)},
        {"block_structure", nullptr},
        {"dynamic", false},
        {"group_size", sp.group_size > 0 ? ordered_json(sp.group_size) : ordered_json(nullptr)},
        {"num_bits", sp.bits},
        {"observer", "minmax"},
        {"observer_kwargs", ordered_json::object()},
        {"strategy", sp.group_size > 0 ? "group" : "channel"},
        {"symmetric", sp.symmetric},
        {"type", "int"}};
    ordered_json ignore = ordered_json::array();
    for (const auto& m : f.ignored_modules) ignore.push_back(m);
    if (!f.quantize_lm_head) ignore.push_back("lm_head");
    return {{"config_groups",
             {{"group_0",
               {{"format", "pack-quantized"},
                {"input_activations", nullptr},
                {"output_activations", nullptr},
                {"targets", {"Linear"}},
                {"weights", weights}}}}},
            {"format", "pack-quantized"},
            {"global_compression_ratio", nullptr},
            {"ignore", ignore},
            {"kv_cache_scheme", nullptr},
            {"quant_method", "compressed-tensors"},
            {"quantization_status", "compressed"},
            {"sparsity_config", ordered_json::object()},
            {"transform_config", ordered_json::object()},
            {"version", "0.12.2"}};
  }
};

}  // namespace

const CheckpointLayout& CompressedTensorsLayoutInstance() {
  static const CompressedTensorsLayout kLayout;
  return kLayout;
}

}  // namespace qforge
