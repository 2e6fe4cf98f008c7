// AutoGPTQ's layout, v1 (spec §4): qweight [K*b/32, N] with each output
// column's codes along K as one bitstream, qzeros [G, N*b/32] holding
// zero - 1 (v2 holds the zero itself), scales [G, N] in F16, g_idx [K].
#include <regex>

#include "io/checkpoint_layout.h"
#include "io/layout_util.h"

namespace qforge {
namespace {

using namespace layout;

class GptqLayout : public CheckpointLayout {
 public:
  IntLayout id() const override { return IntLayout::kGptq; }
  const char* name() const override { return "gptq"; }
  const char* quant_method() const override { return "gptq"; }
  ScaleDtype scale_dtype(StDtype) const override { return ScaleDtype::kF16; }

  Status Supports(int64_t rows, int64_t cols, const IntQuantSpec& spec, bool) const override {
    if ((cols * spec.bits) % 32 != 0 || (rows * spec.bits) % 32 != 0) {
      return Status::Error("the GPTQ layout packs " + std::to_string(spec.bits) + "-bit codes into 32-bit words, so rows (" +
                           std::to_string(rows) + ") and columns (" + std::to_string(cols) +
                           ") times bits must be multiples of 32");
    }
    if (!spec.symmetric && !spec.zero_at_least_one) return Status::Error("asymmetric GPTQ (v1) needs zero points of at least 1");
    return Status::Ok();
  }

  std::vector<StTensorSpec> Tensors(const std::string& prefix, int64_t N, int64_t K, const IntQuantSpec& spec, bool,
                                    StDtype sd) const override {
    const int64_t G = spec.Groups(K);
    const int b = spec.bits;
    return {{prefix + ".qweight", StDtype::I32, {K * b / 32, N}},
            {prefix + ".qzeros", StDtype::I32, {G, N * b / 32}},
            {prefix + ".scales", sd, {G, N}},
            {prefix + ".g_idx", StDtype::I32, {K}}};
  }

  std::vector<StWriteTensor> Pack(const IntQuantized& q, std::vector<StTensorSpec> specs, bool) const override {
    PackedTensors out(std::move(specs));
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
    out.Add(Bytes(qw));
    std::vector<uint32_t> qz;
    std::vector<uint32_t> zrow(static_cast<size_t>(N));
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t n = 0; n < N; ++n) zrow[static_cast<size_t>(n)] = static_cast<uint32_t>(q.zeros[static_cast<size_t>(n * G + g)] - 1);
      const auto w = PackBits(zrow, b);
      qz.insert(qz.end(), w.begin(), w.end());
    }
    out.Add(Bytes(qz));
    out.Add(ScaleBytes(ScalesByGroup(q), out.spec(2).dtype));
    out.Add(Bytes(q.g_idx));
    return out.Take();
  }

  Result<PackedFormat> ParseConfig(const nlohmann::json& q, const std::string& where) const override {
    const ConfigReader r{where};
    QF_ASSIGN_OR_RETURN(PackedFormat f, QweightFormat(id(), q, r));
    QF_ASSIGN_OR_RETURN(f.spec.symmetric, r.Bool(q, "sym", true));
    const std::string fmt = q.contains("checkpoint_format") && q["checkpoint_format"].is_string()
                                ? q["checkpoint_format"].get<std::string>() : "gptq";
    if (fmt != "gptq" && fmt != "gptq_v2") {
      return Status::Error(where + ".checkpoint_format: '" + fmt + "' is not readable (expected gptq or gptq_v2)");
    }
    f.zeros_minus_one = fmt == "gptq";
    f.spec.symmetric = false;  // zeros are read from qzeros either way
    return f;
  }

  Result<std::pair<int64_t, int64_t>> ShapeOf(const SafetensorsModel& st, const std::string& module, const PackedFormat& f,
                                              const std::string&) const override {
    const StTensor* main = st.Find(module + f.main_suffix);
    return std::pair<int64_t, int64_t>{main->shape[1], main->shape[0] * 32 / f.spec.bits};
  }

  Status Validate(const PackedLinear& p, const std::string& what) const override {
    const int64_t N = p.rows, K = p.cols, G = p.spec.Groups(K);
    const int b = p.spec.bits;
    if ((K * b) % 32 != 0 || (N * b) % 32 != 0) return Status::Error(what + ": shape does not fit the GPTQ packing");
    QF_RETURN_IF_ERROR(CheckTensor(Present(p.packed), what, "qweight", StDtype::I32, {K * b / 32, N}));
    QF_RETURN_IF_ERROR(CheckTensor(Present(p.zeros), what, "qzeros", StDtype::I32, {G, N * b / 32}));
    QF_RETURN_IF_ERROR(CheckTensor(Present(p.scales), what, "scales", StDtype::F16, {G, N}));
    return Status::Ok();
  }
  const char* g_idx_suffix() const override { return "g_idx"; }

  uint32_t Code(const PackedLinear& p, int64_t n, int64_t k) const override {
    return StridedBits(Words32(p.packed) + n, p.rows, k, p.spec.bits);
  }
  int32_t Zero(const PackedLinear& p, int64_t n, int64_t g) const override {
    const int b = p.spec.bits;
    const uint32_t stored = StridedBits(Words32(p.zeros) + g * (p.rows * b / 32), 1, n, b);
    // v1: a stored all-ones field means zero 0 (wrapped).
    return static_cast<int32_t>(p.zeros_minus_one ? (stored + 1) & static_cast<uint32_t>(p.spec.maxq()) : stored);
  }
  float Scale(const PackedLinear& p, int64_t n, int64_t g) const override { return ScaleAt(p.scales, g * p.rows + n); }

  nlohmann::ordered_json Config(const ConfigFacts& f) const override {
    using ordered_json = nlohmann::ordered_json;
    const IntQuantSpec& sp = f.spec;
    ordered_json q = {{"bits", sp.bits},
                      {"group_size", sp.group_size > 0 ? sp.group_size : -1},
                      {"damp_percent", std::stod(std::to_string(f.damp))},
                      {"desc_act", f.act_order},
                      {"static_groups", f.static_groups},
                      {"sym", sp.symmetric},
                      {"true_sequential", f.true_sequential},
                      {"model_name_or_path", nullptr},
                      {"model_file_base_name", nullptr},
                      {"quant_method", "gptq"},
                      {"checkpoint_format", "gptq"},
                      {"lm_head", f.quantize_lm_head}};
    if (!f.ignored_modules.empty()) {
      ordered_json dyn = ordered_json::object();
      for (const auto& m : f.ignored_modules) dyn["-:" + std::regex_replace(m, std::regex(R"([.])"), R"(\.)") + "$"] = ordered_json::object();
      q["dynamic"] = dyn;
    }
    return q;
  }
  bool writes_quantize_config() const override { return true; }
};

}  // namespace

const CheckpointLayout& GptqLayoutInstance() {
  static const GptqLayout kLayout;
  return kLayout;
}

}  // namespace qforge
