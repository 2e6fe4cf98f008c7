#include "plan/plan.h"

#include <algorithm>
#include <cctype>

namespace qforge {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool Contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// llama.cpp's converter: which tensors it always keeps in F32.
bool ConverterKeepsF32(const ModelTensor& t) {
  if (t.ne.size() == 1 || EndsWith(t.name, "_norm.weight")) return true;
  if (!EndsWith(t.name, ".weight")) return true;
  return Contains(t.name, "ffn_gate_inp") || Contains(t.name, "position_embd") ||
         Contains(t.name, "token_types");
}

// llama-quantize: which tensors may change type at all (spec 3.3).
bool QuantizeMayTouch(const ModelTensor& t) {
  if (t.n_dims() < 2) return false;
  if (!EndsWith(t.name, "weight")) return false;
  if (Contains(t.name, "_norm.weight")) return false;
  static const char* kNever[] = {"ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
                                 "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight",
                                 "indexer.k_proj.weight", "indexer.q_proj.weight", "attn_rel_b.weight",
                                 ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos",
                                 ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd"};
  for (const char* n : kNever) {
    if (Contains(t.name, n)) return false;
  }
  return t.name != "position_embd.weight" && t.name != "token_types.weight";
}

uint64_t BytesOf(GgmlType type, const std::vector<int64_t>& ne) {
  int64_t rows = 1;
  for (size_t i = 1; i < ne.size(); ++i) rows *= ne[i];
  return static_cast<uint64_t>(rows) * RowBytes(type, ne[0]);
}

const std::vector<Preset> kPresets = {
    {"F32", 0, GgmlType::F32, "32-bit float, lossless"},
    {"F16", 1, GgmlType::F16, "16-bit IEEE half"},
    {"BF16", 32, GgmlType::BF16, "16-bit bfloat"},
    {"Q8_0", 7, GgmlType::Q8_0, "8.5 bpw, 32-value blocks with an fp16 scale"},
};

}  // namespace

const std::vector<Preset>& AllPresets() { return kPresets; }

const Preset* FindPreset(const std::string& name) {
  std::string up = name;
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& p : kPresets) {
    if (up == p.name) return &p;
  }
  return nullptr;
}

uint64_t Plan::tensor_bytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors) n += t.nbytes;
  return n;
}

int64_t Plan::n_elements() const {
  int64_t n = 0;
  for (const auto& t : tensors) n += t.source->n_elements();
  return n;
}

double Plan::bits_per_weight() const {
  const int64_t n = n_elements();
  return n ? 8.0 * static_cast<double>(tensor_bytes()) / static_cast<double>(n) : 0.0;
}

Result<Plan> BuildPlan(const Model& model, const Preset& preset, const PlanOptions& opts) {
  Plan plan;
  plan.preset = preset.name;
  plan.metadata = model.metadata;
  const bool from_hf = model.source == ModelSource::kHfFolder;
  if (from_hf) {
    // The converter writes file_type in its place among the hyper-parameters.
    plan.metadata.Append("general.file_type", GgufValue::U32(preset.ftype));
  } else {
    // llama-quantize re-sets both keys, which moves them to the end.
    plan.metadata.Set("general.quantization_version", GgufValue::U32(2));
    plan.metadata.Set("general.file_type", GgufValue::U32(preset.ftype));
    for (const char* k : {"split.no", "split.count", "split.tensors.count"}) plan.metadata.Remove(k);
  }
  for (const ModelTensor& t : model.tensors) {
    TensorPlan tp;
    tp.source = &t;
    tp.name = t.name;
    tp.ne = t.ne;
    if (from_hf) {
      // The converter widens every source to F32 first, then narrows.
      tp.type = ConverterKeepsF32(t) ? GgmlType::F32 : preset.default_type;
      if (tp.ne[0] % TraitsOf(tp.type).block_elems != 0) tp.type = GgmlType::F16;
    } else {
      tp.type = QuantizeMayTouch(t) ? preset.default_type : t.type;
      if (tp.ne[0] % TraitsOf(tp.type).block_elems != 0) {
        return Status::Error(model.path + ": tensor '" + t.name + "': row length " + std::to_string(tp.ne[0]) +
                             " is not a multiple of the " + GgmlTypeName(tp.type) + " block size " +
                             std::to_string(TraitsOf(tp.type).block_elems) +
                             " and no tensor type fallback is defined for " + GgmlTypeName(tp.type));
      }
      if (TraitsOf(t.type).quantized && tp.type != t.type && !opts.allow_requantize) {
        return Status::Error(model.path + ": tensor '" + t.name + "': already quantized as " +
                             GgmlTypeName(t.type) + "; pass --allow-requantize to convert it (quality suffers)");
      }
      if (!from_hf && tp.type != t.type && TraitsOf(t.type).quantized) {
        plan.warnings.push_back("requantizing '" + t.name + "' from " + GgmlTypeName(t.type) +
                                ": quality suffers compared with quantizing the original weights");
      }
    }
    tp.copy_bytes = tp.type == t.type && t.permute_heads == 0;
    const GgmlTypeTraits& tr = TraitsOf(tp.type);
    if (!tp.copy_bytes && tr.encode == nullptr) {
      return Status::Error("tensor '" + t.name + "': qforge cannot write " + GgmlTypeName(tp.type) + " yet");
    }
    if (!tp.copy_bytes && TraitsOf(t.type).decode == nullptr) {
      return Status::Error(model.path + ": tensor '" + t.name + "': source type " + t.source_dtype +
                           " cannot be decoded by this version");
    }
    tp.nbytes = BytesOf(tp.type, tp.ne);
    plan.tensors.push_back(std::move(tp));
  }
  return plan;
}

}  // namespace qforge
