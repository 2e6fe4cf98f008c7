#include "plan/plan.h"

#include <algorithm>
#include <cctype>

#include "arch/llama_family.h"
#include "codecs/block_grid.h"

namespace qforge {
namespace {

using T = GgmlType;
using F = Ftype;

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool Contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// llama.cpp's converter: which tensors it always keeps in F32.
bool ConverterKeepsF32(const ModelTensor& t) {
  if (t.ne.size() == 1 || EndsWith(t.name, "_norm.weight")) return true;
  if (!EndsWith(t.name, ".weight")) return true;
  return Contains(t.name, "ffn_gate_inp") || Contains(t.name, "position_embd") || Contains(t.name, "token_types");
}

// llama-quantize: which tensors may change type at all (spec 3.3).
bool QuantizeMayTouch(const ModelTensor& t, bool leave_output) {
  if (t.n_dims() < 2) return false;
  if (!EndsWith(t.name, "weight")) return false;
  if (Contains(t.name, "_norm.weight")) return false;
  if (leave_output && t.name == "output.weight") return false;
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
    {"F32", F::ALL_F32, T::F32, "32-bit float, lossless"},
    {"F16", F::MOSTLY_F16, T::F16, "16-bit IEEE half"},
    {"BF16", F::MOSTLY_BF16, T::BF16, "16-bit bfloat"},
    {"Q8_0", F::MOSTLY_Q8_0, T::Q8_0, "8.5 bpw, 32-value blocks with an fp16 scale"},
    {"Q6_K", F::MOSTLY_Q6_K, T::Q6_K, "6.56 bpw k-quant"},
    {"Q5_K_M", F::MOSTLY_Q5_K_M, T::Q5_K, "Q5_K, attn_v/ffn_down of some layers Q6_K"},
    {"Q5_K_S", F::MOSTLY_Q5_K_S, T::Q5_K, "5.5 bpw k-quant everywhere"},
    {"Q5_1", F::MOSTLY_Q5_1, T::Q5_1, "6.0 bpw, 32-value blocks with scale and minimum"},
    {"Q5_0", F::MOSTLY_Q5_0, T::Q5_0, "5.5 bpw, 32-value blocks, symmetric"},
    {"Q4_K_M", F::MOSTLY_Q4_K_M, T::Q4_K, "Q4_K, attn_v/ffn_down of some layers Q6_K (most used)"},
    {"Q4_K_S", F::MOSTLY_Q4_K_S, T::Q4_K, "Q4_K, first attn_v/ffn_down Q5_K"},
    {"Q4_1", F::MOSTLY_Q4_1, T::Q4_1, "5.0 bpw, 32-value blocks with scale and minimum"},
    {"Q4_0", F::MOSTLY_Q4_0, T::Q4_0, "4.5 bpw, 32-value blocks, symmetric"},
    {"IQ4_XS", F::MOSTLY_IQ4_XS, T::IQ4_XS, "4.25 bpw non-linear levels, 256-value super-blocks"},
    {"IQ4_NL", F::MOSTLY_IQ4_NL, T::IQ4_NL, "4.5 bpw non-linear levels, 32-value blocks"},
    {"MXFP4_MOE", F::MOSTLY_MXFP4_MOE, T::MXFP4, "MXFP4 experts, Q8_0 elsewhere"},
    {"Q3_K_L", F::MOSTLY_Q3_K_L, T::Q3_K, "Q3_K, attn_v/ffn_down/attn_output Q5_K"},
    {"Q3_K_M", F::MOSTLY_Q3_K_M, T::Q3_K, "Q3_K, attn_v/ffn_down partly Q4_K/Q5_K"},
    {"Q3_K_S", F::MOSTLY_Q3_K_S, T::Q3_K, "3.44 bpw k-quant everywhere"},
    {"Q2_K", F::MOSTLY_Q2_K, T::Q2_K, "Q2_K with Q3_K/Q4_K attn_v and ffn_down"},
    {"Q2_K_S", F::MOSTLY_Q2_K_S, T::Q2_K, "Q2_K nearly everywhere (needs an imatrix)"},
    {"TQ2_0", F::MOSTLY_TQ2_0, T::TQ2_0, "ternary, 2.06 bpw (for ternary-trained models)"},
    {"TQ1_0", F::MOSTLY_TQ1_0, T::TQ1_0, "ternary, 1.69 bpw (for ternary-trained models)"},
};

// Tensor categories of llama-quantize's rules.
enum class Category { kOutput, kTokenEmbd, kQkv, kKvB, kV, kK, kQ, kO, kUp, kGate, kDown, kOther };

Category CategoryOf(const std::string& name) {
  if (name == "output.weight") return Category::kOutput;
  if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") return Category::kTokenEmbd;
  if (Contains(name, "attn_qkv.weight")) return Category::kQkv;
  if (Contains(name, "attn_kv_b.weight")) return Category::kKvB;
  if (Contains(name, "attn_v.weight")) return Category::kV;
  if (Contains(name, "attn_k.weight")) return Category::kK;
  if (Contains(name, "attn_q.weight")) return Category::kQ;
  if (Contains(name, "attn_output.weight")) return Category::kO;
  if (Contains(name, "ffn_up")) return Category::kUp;
  if (Contains(name, "ffn_gate")) return Category::kGate;
  if (Contains(name, "ffn_down")) return Category::kDown;
  return Category::kOther;
}

bool IsVLike(Category c) { return c == Category::kV || c == Category::kQkv || c == Category::kKvB; }

bool UseMoreBits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

int LayerFromName(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return 0;
  return std::atoi(name.c_str() + 4);
}

// State llama-quantize carries across tensors while choosing types.
struct RuleContext {
  Ftype ftype;
  std::string arch;
  int64_t n_layer = 0;
  int64_t n_attention_wv = 0;
  int64_t i_attention_wv = 0, i_ffn_down = 0, i_ffn_gate = 0, i_ffn_up = 0;
  int64_t gqa = 0;  // n_head / n_head_kv
  int64_t n_expert = 0;
  bool has_imatrix = false;
  bool tied = false;
  bool is_70b = false;
  bool falcon() const { return arch == "falcon"; }
};

// The mixture rules (spec 3.4, branches A..L) for the file types qforge writes.
GgmlType MixtureRule(RuleContext& c, const ModelTensor& t, Category cat, GgmlType def,
                     const PlanOptions& opts) {
  const Ftype f = c.ftype;
  GgmlType type = def;
  if (cat == Category::kOutput || (cat == Category::kTokenEmbd && c.tied)) {
    if (opts.output_tensor_type) return *opts.output_tensor_type;
    if (f == F::MOSTLY_MXFP4_MOE) return T::Q8_0;
    if (c.falcon() || t.ne[0] % TraitsOf(def).block_elems != 0) return T::Q8_0;
    return def != T::Q8_0 ? T::Q6_K : def;
  }
  if (f == F::MOSTLY_MXFP4_MOE) {
    const bool three_d = t.ne.size() > 2 && t.ne[2] > 1;
    return three_d ? T::MXFP4 : T::Q8_0;
  }
  if (cat == Category::kTokenEmbd) {
    if (opts.token_embedding_type) return *opts.token_embedding_type;
    if (f == F::MOSTLY_TQ1_0 || f == F::MOSTLY_TQ2_0) return T::Q4_K;
    return def;
  }
  const int64_t n = c.n_layer;
  if (IsVLike(cat)) {
    const int64_t i = c.i_attention_wv;
    if (f == F::MOSTLY_Q2_K) type = c.gqa >= 4 ? T::Q4_K : T::Q3_K;
    else if (f == F::MOSTLY_Q2_K_S && c.gqa >= 4) type = T::Q4_K;
    else if (f == F::MOSTLY_Q3_K_M) type = i < 2 ? T::Q5_K : T::Q4_K;
    else if (f == F::MOSTLY_Q3_K_L) type = T::Q5_K;
    else if ((f == F::MOSTLY_IQ4_NL || f == F::MOSTLY_IQ4_XS) && c.gqa >= 4) type = T::Q5_K;
    else if ((f == F::MOSTLY_Q4_K_M || f == F::MOSTLY_Q5_K_M) && UseMoreBits(i, c.n_attention_wv)) type = T::Q6_K;
    else if (f == F::MOSTLY_Q4_K_S && i < 4) type = T::Q5_K;
    if (c.is_70b && (type == T::Q3_K || type == T::Q4_K)) type = T::Q5_K;
    if (c.n_expert == 8) type = T::Q8_0;
    ++c.i_attention_wv;
    return type;
  }
  if (cat == Category::kK) return c.n_expert == 8 ? T::Q8_0 : type;
  if (cat == Category::kQ) return type;
  if (cat == Category::kDown) {
    const int64_t i = c.n_expert > 1 ? LayerFromName(t.name) : c.i_ffn_down;
    if (f == F::MOSTLY_Q2_K) type = T::Q3_K;
    else if (f == F::MOSTLY_Q2_K_S) type = i < n / 8 ? T::Q4_K : type;
    else if (f == F::MOSTLY_Q3_K_M) {
      type = i < n / 16 ? T::Q5_K : (!c.falcon() || UseMoreBits(i, n)) ? T::Q4_K : T::Q3_K;
    } else if (f == F::MOSTLY_Q3_K_L) type = c.falcon() ? T::Q4_K : T::Q5_K;
    else if (f == F::MOSTLY_Q4_K_M) {
      if (c.falcon()) type = i < n / 16 ? T::Q6_K : UseMoreBits(i, n) ? T::Q5_K : T::Q4_K;
      else if (UseMoreBits(i, n)) type = T::Q6_K;
    } else if (i < n / 8 && (f == F::MOSTLY_IQ4_NL || f == F::MOSTLY_IQ4_XS) && !c.has_imatrix) type = T::Q5_K;
    else if (f == F::MOSTLY_Q5_K_M && UseMoreBits(i, n)) type = T::Q6_K;
    else if (f == F::MOSTLY_Q4_K_S && !c.falcon() && i < n / 8) type = T::Q5_K;
    else if ((f == F::MOSTLY_Q4_0 || f == F::MOSTLY_Q5_0) && c.has_imatrix && i < n / 8) {
      type = f == F::MOSTLY_Q4_0 ? T::Q4_1 : T::Q5_1;
    }
    ++c.i_ffn_down;
    return type;
  }
  if (cat == Category::kO) {
    if (!c.falcon()) {
      if (c.n_expert == 8) {
        if (f == F::MOSTLY_Q2_K || f == F::MOSTLY_Q3_K_S || f == F::MOSTLY_Q3_K_M || f == F::MOSTLY_IQ4_NL ||
            f == F::MOSTLY_Q4_K_S || f == F::MOSTLY_Q4_K_M || f == F::MOSTLY_IQ4_XS) {
          type = T::Q5_K;
        }
      } else if (f == F::MOSTLY_Q2_K) type = T::Q3_K;
      else if (f == F::MOSTLY_Q3_K_M) type = T::Q4_K;
      else if (f == F::MOSTLY_Q3_K_L) type = T::Q5_K;
    } else if (f == F::MOSTLY_Q3_K_L) {
      type = T::Q4_K;
    }
    return type;
  }
  if (cat == Category::kGate) ++c.i_ffn_gate;
  if (cat == Category::kUp) ++c.i_ffn_up;
  return type;
}

// Shape fallback (spec 3.5) when the row does not split into whole blocks.
Result<GgmlType> ShapeFallback(const ModelTensor& t, GgmlType type, const std::string& path) {
  if (t.ne[0] % TraitsOf(type).block_elems == 0) return type;
  GgmlType fb;
  switch (type) {
    case T::IQ4_XS: fb = T::IQ4_NL; break;
    case T::Q2_K: case T::Q3_K: case T::TQ1_0: case T::TQ2_0: fb = T::Q4_0; break;
    case T::Q4_K: fb = T::Q5_0; break;
    case T::Q5_K: fb = T::Q5_1; break;
    case T::Q6_K: fb = T::Q8_0; break;
    default:
      return Status::Error(path + ": tensor '" + t.name + "': row length " + std::to_string(t.ne[0]) +
                           " is not a multiple of the " + GgmlTypeName(type) + " block size " +
                           std::to_string(TraitsOf(type).block_elems) + " and no tensor type fallback is defined for " +
                           GgmlTypeName(type));
  }
  if (t.ne[0] % TraitsOf(fb).block_elems != 0) fb = T::F16;
  return fb;
}

bool IsConverterPreset(const Preset& p) {
  return p.ftype == F::ALL_F32 || p.ftype == F::MOSTLY_F16 || p.ftype == F::MOSTLY_BF16 || p.ftype == F::MOSTLY_Q8_0;
}

}  // namespace

const std::vector<Preset>& AllPresets() { return kPresets; }

const Preset* FindPreset(const std::string& name) {
  std::string up = Upper(name);
  if (up == "Q3_K") up = "Q3_K_M";
  if (up == "Q4_K") up = "Q4_K_M";
  if (up == "Q5_K") up = "Q5_K_M";
  for (const auto& p : kPresets) {
    if (up == p.name) return &p;
  }
  return nullptr;
}

Result<TensorTypeOverride> ParseTensorTypeOverride(const std::string& spec) {
  const size_t eq = spec.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
    return Status::Error("--tensor-type: '" + spec + "' is not of the form PATTERN=TYPE");
  }
  TensorTypeOverride o;
  o.pattern = spec.substr(0, eq);
  for (char& c : o.pattern) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string tname = spec.substr(eq + 1);
  auto t = GgmlTypeFromName(tname);
  if (!t || TraitsOf(*t).encode == nullptr) {
    return Status::Error("--tensor-type: '" + tname + "' in '" + spec + "' is not a type qforge can write");
  }
  o.type = *t;
  try {
    o.re = std::regex(o.pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return Status::Error("--tensor-type: '" + o.pattern + "' is not a valid regular expression: " + e.what());
  }
  return o;
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

uint64_t Plan::FileBytes() const {
  if (output == PlanOutput::kCheckpoint) return tensor_bytes();
  GgufWriter w;
  w.metadata() = metadata;
  for (const auto& t : tensors) w.AddTensor(t.name, t.ne, t.type);
  return w.TotalBytes();
}

std::string TensorPlan::TargetName() const {
  if (!int_scheme) return GgmlTypeName(type);
  const IntQuantSpec& s = *int_scheme;
  return "W" + std::to_string(s.bits) + "A16" + (s.symmetric ? "" : "_ASYM") + " g" + std::to_string(s.group_size);
}

int UseGptqForLayerLinears(Plan* plan, const Model& model) {
  const BlockLayout& block = BlockOfModel(model);
  int changed = 0;
  for (auto& tp : plan->tensors) {
    if (tp.copy_bytes || BlockGridOf(tp.type) == nullptr || !IsLayerLinear(block, tp.name)) continue;
    tp.method = Method::kGptq;
    ++changed;
  }
  return changed;
}

namespace {

// The output's metadata: the converter's keys, or llama-quantize's re-set
// file_type and quantization_version (which moves them to the end).
void SetPlanMetadata(const Preset& preset, bool converter, GgufMetadata* md) {
  const uint32_t ftype = static_cast<uint32_t>(preset.ftype);
  if (converter) {
    md->Append("general.file_type", GgufValue::U32(ftype));
    return;
  }
  md->Set("general.quantization_version", GgufValue::U32(2));
  md->Set("general.file_type", GgufValue::U32(ftype));
  for (const char* k : {"split.no", "split.count", "split.tensors.count"}) md->Remove(k);
}

RuleContext MakeRuleContext(const Model& model, const Preset& preset, const PlanOptions& opts,
                            const std::vector<const ModelTensor*>& order) {
  RuleContext ctx;
  ctx.ftype = preset.ftype;
  ctx.arch = model.architecture;
  ctx.n_layer = model.n_layer;
  ctx.gqa = model.n_head_kv > 0 ? model.n_head / model.n_head_kv : 0;
  ctx.n_expert = model.expert_count;
  ctx.has_imatrix = opts.imatrix != nullptr;
  ctx.tied = model.Find("output.weight") == nullptr;
  ctx.is_70b = model.architecture == "llama" && model.n_layer == 80 && model.n_head != model.n_head_kv;
  for (const ModelTensor* t : order) {
    if (IsVLike(CategoryOf(t->name)) && QuantizeMayTouch(*t, false)) ++ctx.n_attention_wv;
  }
  return ctx;
}

// llama-quantize's choice for a tensor it may quantize: a manual type, the
// mixture rule, or the preset's default, then the shape fallback.
Status ChooseQuantizedType(RuleContext& ctx, const Model& model, const ModelTensor& t, const Preset& preset,
                           const PlanOptions& opts, TensorPlan* tp, std::vector<std::string>* warnings) {
  const Category cat = CategoryOf(t.name);
  bool check_shape = true;
  if (opts.token_embedding_type && cat == Category::kTokenEmbd) {
    tp->type = *opts.token_embedding_type;
    tp->reason = "manual";
    check_shape = false;
  } else if (opts.output_tensor_type && cat == Category::kOutput) {
    tp->type = *opts.output_tensor_type;
    tp->reason = "manual";
    check_shape = false;
  } else {
    tp->type = preset.default_type;
    tp->reason = "default";
    if (TraitsOf(preset.default_type).quantized) {
      const TensorTypeOverride* manual = nullptr;
      for (const auto& o : opts.tensor_types) {
        if (std::regex_search(t.name, o.re)) {
          manual = &o;
          break;
        }
      }
      if (manual) {
        tp->type = manual->type;
        tp->reason = "manual";
      } else if (!opts.pure) {
        tp->type = MixtureRule(ctx, t, cat, preset.default_type, opts);
        if (tp->type != preset.default_type) tp->reason = "rule";
      }
    } else {
      check_shape = false;
    }
  }
  if (check_shape) {
    QF_ASSIGN_OR_RETURN(GgmlType fb, ShapeFallback(t, tp->type, model.path));
    if (fb != tp->type) {
      warnings->push_back("tensor '" + t.name + "': row length " + std::to_string(t.ne[0]) + " does not fit " +
                          GgmlTypeName(tp->type) + ", using " + GgmlTypeName(fb));
      tp->type = fb;
      tp->reason = "fallback";
    }
  }
  if (tp->ne[0] % TraitsOf(tp->type).block_elems != 0) {
    return Status::Error(model.path + ": tensor '" + t.name + "': row length " + std::to_string(tp->ne[0]) +
                         " is not a multiple of the " + GgmlTypeName(tp->type) + " block size");
  }
  return Status::Ok();
}

// What may go out: requantizing needs the flag, the target needs an
// encoder, a re-encoded source needs a decoder.
Status CheckConvertible(const Model& model, const ModelTensor& t, GgmlType stored, const PlanOptions& opts,
                        TensorPlan* tp, std::vector<std::string>* warnings) {
  if (TraitsOf(stored).quantized && tp->type != stored) {
    if (!opts.allow_requantize) {
      return Status::Error(model.path + ": tensor '" + t.name + "': already quantized as " + GgmlTypeName(t.type) +
                           "; pass --allow-requantize to convert it (quality suffers)");
    }
    warnings->push_back("requantizing '" + t.name + "' from " + GgmlTypeName(t.type) +
                        ": quality suffers compared with quantizing the original weights");
  }
  tp->copy_bytes = tp->type == t.type && t.stored_as_is();
  if (!tp->copy_bytes && TraitsOf(tp->type).encode == nullptr) {
    return Status::Error("tensor '" + t.name + "': qforge cannot write " + GgmlTypeName(tp->type) + " yet");
  }
  if (!tp->copy_bytes && !t.packed && TraitsOf(t.type).decode == nullptr) {
    return Status::Error(model.path + ": tensor '" + t.name + "': source type " + t.source_dtype +
                         " cannot be decoded by this version");
  }
  return Status::Ok();
}

// Importance weights for a tensor that will be re-encoded to a quantized type.
// Whether a type's encoder reads importance weights (ggml's Q8_0, MXFP4 and
// ternary encoders ignore them).
bool UsesImportance(GgmlType t) {
  return TraitsOf(t).quantized && t != T::Q8_0 && t != T::MXFP4 && t != T::NVFP4 && t != T::TQ1_0 && t != T::TQ2_0;
}

// Importance weights for a tensor that will be re-encoded to a quantized
// type. A decoder-layer tensor the imatrix has no entry for is quantized
// without them, as llama-quantize does, and named in *missing (llama.cpp's
// imatrix never holds token_embd, nor output.weight unless asked).
Status AttachImportance(const ModelTensor& t, const Preset& preset, const PlanOptions& opts, TensorPlan* tp,
                        std::vector<std::string>* missing) {
  if (!opts.imatrix || tp->copy_bytes || !TraitsOf(tp->type).quantized) return Status::Ok();
  auto it = opts.imatrix->entries.find(t.name);
  const int64_t expected = t.ne[0] * (t.ne.size() > 2 ? t.ne[2] : 1);
  if (it != opts.imatrix->entries.end()) {
    if (static_cast<int64_t>(it->second.values.size()) == expected) {
      tp->importance = std::make_shared<const std::vector<float>>(it->second.values);
    } else if (CategoryOf(t.name) != Category::kTokenEmbd) {
      return Status::Error(opts.imatrix->path + ": entry '" + t.name + "': has " + std::to_string(it->second.values.size()) +
                           " values, the tensor needs " + std::to_string(expected) +
                           " (ne0 x experts); the imatrix does not fit this model");
    }
  } else if (preset.ftype == F::MOSTLY_Q2_K_S && tp->type == T::Q2_K && CategoryOf(t.name) != Category::kOutput &&
             CategoryOf(t.name) != Category::kTokenEmbd) {
    return Status::Error(opts.imatrix->path + ": no entry for tensor '" + t.name + "', which Q2_K_S needs");
  } else if (UsesImportance(tp->type) && BlockOf(t.name) >= 0) {
    missing->push_back(t.name);
  }
  return Status::Ok();
}

// llama-quantize records where the importance matrix came from.
void AddImatrixMetadata(const PlanOptions& opts, GgufMetadata* md) {
  if (!opts.imatrix) return;
  std::string file = opts.imatrix_arg.empty() ? opts.imatrix->path : opts.imatrix_arg;
  if (file.size() > 127) file.resize(127);
  md->Set("quantize.imatrix.file", GgufValue::Str(file));
  if (!opts.imatrix->datasets.empty()) {
    std::string ds = opts.imatrix->datasets.front();
    if (ds.size() > 127) ds.resize(127);
    md->Set("quantize.imatrix.dataset", GgufValue::Str(ds));
  }
  md->Set("quantize.imatrix.entries_count", GgufValue::U32(static_cast<uint32_t>(opts.imatrix->entries.size())));
  if (opts.imatrix->chunk_count > 0) {
    md->Set("quantize.imatrix.chunks_count", GgufValue::U32(static_cast<uint32_t>(opts.imatrix->chunk_count)));
  }
}

}  // namespace

Result<Plan> BuildPlan(const Model& model, const Preset& preset, const PlanOptions& opts) {
  Plan plan;
  plan.warnings = model.warnings;
  plan.preset = preset.name;
  plan.metadata = model.metadata;
  const bool has_tensor_options = opts.pure || opts.leave_output_tensor || opts.output_tensor_type ||
                                  opts.token_embedding_type || !opts.tensor_types.empty() || opts.imatrix;
  // A Hugging Face source written as F32/F16/BF16/Q8_0 follows llama.cpp's
  // converter; everything else follows llama-quantize run on that F32 file.
  const bool converter = model.source == ModelSource::kHfFolder && IsConverterPreset(preset) && !has_tensor_options &&
                         !opts.like_llama_quantize;
  SetPlanMetadata(preset, converter, &plan.metadata);
  if (preset.ftype == F::MOSTLY_Q2_K_S && opts.imatrix == nullptr) {
    return Status::Error("-f Q2_K_S: this type needs an importance matrix (--imatrix FILE), as llama-quantize requires");
  }
  std::vector<const ModelTensor*> order;
  for (const auto& t : model.tensors) order.push_back(&t);
  if (!converter || opts.loader_order) SortInLoaderOrder(&order);
  RuleContext ctx = MakeRuleContext(model, preset, opts, order);
  std::vector<std::string> no_importance;
  for (const ModelTensor* tp_src : order) {
    const ModelTensor& t = *tp_src;
    // What llama-quantize would find stored: a Hugging Face source is seen
    // as the converter's F32 file.
    const GgmlType stored = model.source == ModelSource::kHfFolder ? T::F32 : t.type;
    TensorPlan tp;
    tp.source = &t;
    tp.name = t.name;
    tp.ne = t.ne;
    // llama-quantize writes each tensor with ggml_n_dims dimensions: a
    // trailing 1 the converter kept ([256, 1] ffn_gate_inp_shexp) goes.
    if (!converter) {
      while (tp.ne.size() > 1 && tp.ne.back() == 1) tp.ne.pop_back();
    }
    if (converter) {
      tp.type = ConverterKeepsF32(t) ? T::F32 : preset.default_type;
      if (tp.ne[0] % TraitsOf(tp.type).block_elems != 0) tp.type = T::F16;
      tp.reason = ConverterKeepsF32(t) ? "kept" : "default";
    } else if (!QuantizeMayTouch(t, opts.leave_output_tensor)) {
      tp.type = stored;
      tp.reason = "kept";
    } else {
      QF_RETURN_IF_ERROR(ChooseQuantizedType(ctx, model, t, preset, opts, &tp, &plan.warnings));
    }
    QF_RETURN_IF_ERROR(CheckConvertible(model, t, stored, opts, &tp, &plan.warnings));
    QF_RETURN_IF_ERROR(AttachImportance(t, preset, opts, &tp, &no_importance));
    tp.nbytes = BytesOf(tp.type, tp.ne);
    tp.method = tp.copy_bytes ? Method::kCopy
                : !TraitsOf(tp.type).quantized ? Method::kConvert
                : tp.importance ? Method::kImatrix : Method::kRtn;
    plan.tensors.push_back(std::move(tp));
  }
  if (!no_importance.empty()) {
    std::string names;
    for (size_t i = 0; i < no_importance.size() && i < 4; ++i) names += (i ? ", " : "") + no_importance[i];
    if (no_importance.size() > 4) names += ", ...";
    plan.warnings.push_back(opts.imatrix->path + ": no entry for " + std::to_string(no_importance.size()) +
                            " tensor(s) to be quantized (" + names +
                            "); they are quantized without importance weights. Was the imatrix made from this model?");
  }
  AddImatrixMetadata(opts, &plan.metadata);
  return plan;
}

}  // namespace qforge
