#include "arch/llama_family.h"
#include "arch/families.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <vector>

namespace qforge {

namespace {

// The layer of every LLaMA-family model: pre-norm attention (GQA, optional
// q/k/v biases, optional per-head q/k norms) and a SwiGLU MLP.
std::vector<LayerTensorName> LlamaLayerNames() {
  using P = LayerTensorName;
  return {{"input_layernorm", "attn_norm"},       {"self_attn.q_proj", "attn_q", P::kQ},
          {"self_attn.k_proj", "attn_k", P::kK}, {"self_attn.v_proj", "attn_v"},
          {"self_attn.o_proj", "attn_output"},   {"self_attn.q_norm", "attn_q_norm"},
          {"self_attn.k_norm", "attn_k_norm"},   {"post_attention_layernorm", "ffn_norm"},
          {"mlp.gate_proj", "ffn_gate"},         {"mlp.up_proj", "ffn_up"},
          {"mlp.down_proj", "ffn_down"}};
}

// rope_freqs.weight for llama3 RoPE scaling (Llama 3.1+).
std::string LlamaGenerated(const HfConfig& cfg, std::vector<GeneratedTensor>* out) {
  std::vector<float> f = Llama3RopeFactors(cfg);
  if (!f.empty()) out->push_back({"rope_freqs.weight", std::move(f)});
  return "";
}

}  // namespace

// Pre-norm attention and a gated FFN: the linears by shared input, AWQ's
// scaling groups and clipping.
BlockLayout LlamaBlock() {
  BlockLayout b;
  b.input_sets = {{"attn_q", "attn_k", "attn_v"}, {"attn_output"}, {"ffn_gate", "ffn_up"}, {"ffn_down"}};
  b.scaling = {{"attn_norm", true, {"attn_q", "attn_k", "attn_v"}, ScalingGroup::kAttention, {}},
               {"attn_v", false, {"attn_output"}, ScalingGroup::kLinear, {}},
               {"ffn_norm", true, {"ffn_gate", "ffn_up"}, ScalingGroup::kMlp, {}},
               {"ffn_up", false, {"ffn_down"}, ScalingGroup::kLinear, {}}};
  b.clip = {{"attn_v", "attn_q"}, {"attn_output", "attn_output"}, {"ffn_gate", "ffn_gate"}, {"ffn_up", "ffn_gate"},
            {"ffn_down", "ffn_down"}};
  return b;
}

ArchSpec LlamaFamily(std::string gguf_arch, std::vector<std::string> model_types, bool permutes_qk) {
  ArchSpec s;
  s.gguf_arch = std::move(gguf_arch);
  s.model_types = std::move(model_types);
  s.permutes_qk = permutes_qk;
  s.rope_neox = !permutes_qk;  // unpermuted rows keep rotate-half RoPE
  s.global_names = {{"model.embed_tokens.weight", "token_embd.weight"},
                    {"model.norm.weight", "output_norm.weight"},
                    {"lm_head.weight", "output.weight"}};
  s.layer_names = LlamaLayerNames();
  s.block = LlamaBlock();
  s.generated = LlamaGenerated;
  s.expert_weights_norm = s.gguf_arch == "llama";  // llama.cpp's llama graph renormalises (Mixtral)
  return s;
}

namespace {

const std::vector<ArchSpec>& AllSpecs() {
  static const std::vector<ArchSpec> kSpecs = {LlamaFamily("llama", {"llama", "mistral"}, true),
                                               LlamaFamily("qwen2", {"qwen2"}, false),
                                               LlamaFamily("qwen3", {"qwen3"}, false),
                                               Gemma2Spec(),
                                               Gemma3Spec(),
                                               Phi3Spec(),
                                               MixtralSpec(),
                                               Qwen2MoeSpec(),
                                               Qwen3MoeSpec()};
  return kSpecs;
}

std::string JoinOr(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i == 0 ? "" : i + 1 == v.size() ? " or " : ", ") + v[i];
  return s;
}

// "N" of "model.layers.N.rest" when N < n_layer, with rest; else false.
bool SplitLayerName(const std::string& hf, int64_t n_layer, std::string* idx, std::string* rest) {
  const std::string prefix = "model.layers.";
  if (hf.rfind(prefix, 0) != 0) return false;
  const size_t p = prefix.size(), dot = hf.find('.', p);
  if (dot == std::string::npos || dot == p || dot - p >= 6) return false;
  *idx = hf.substr(p, dot - p);
  if (!std::all_of(idx->begin(), idx->end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) return false;
  if (std::stoll(*idx) >= n_layer) return false;
  *rest = hf.substr(dot + 1);
  return true;
}

}  // namespace

const ArchSpec* ArchOfModelType(const std::string& model_type) {
  for (const auto& s : AllSpecs()) {
    if (std::find(s.model_types.begin(), s.model_types.end(), model_type) != s.model_types.end()) return &s;
  }
  return nullptr;
}

const ArchSpec* ArchOfGguf(const std::string& gguf_arch) {
  for (const auto& s : AllSpecs()) {
    if (s.gguf_arch == gguf_arch) return &s;
  }
  return nullptr;
}

std::string KnownModelTypes() {
  std::vector<std::string> all;
  for (const auto& s : AllSpecs()) all.insert(all.end(), s.model_types.begin(), s.model_types.end());
  return JoinOr(all);
}

std::string KnownGgufArchitectures() {
  std::vector<std::string> all;
  for (const auto& s : AllSpecs()) all.push_back(s.gguf_arch);
  return JoinOr(all);
}

std::string GgufArchitecture(const std::string& model_type) {
  const ArchSpec* s = ArchOfModelType(model_type);
  return s ? s->gguf_arch : model_type;
}

bool PermutesQK(const std::string& model_type) {
  const ArchSpec* s = ArchOfModelType(model_type);
  return s != nullptr && s->permutes_qk;
}

namespace {

// Multimodal checkpoints (Gemma3ForConditionalGeneration, ...) keep the
// language model under "language_model.model." (older Transformers) or
// "model.language_model." (newer); its tensors read as a text model's.
// Sets *skip for the other towers, which a text GGUF leaves out.
std::string LanguageModelName(const std::string& hf, bool multimodal, bool* skip) {
  static const std::pair<const char*, const char*> kPrefixes[] = {
      {"language_model.model.", "model."}, {"model.language_model.", "model."}, {"language_model.", ""}};
  for (const auto& [from, to] : kPrefixes) {
    if (hf.rfind(from, 0) == 0) return to + hf.substr(std::string(from).size());
  }
  static const char* kTowers[] = {"vision_tower.", "multi_modal_projector.", "model.vision_tower.",
                                  "model.multi_modal_projector.", "vision_model.", "audio_tower."};
  for (const char* t : kTowers) {
    if (multimodal && hf.rfind(t, 0) == 0) *skip = true;
  }
  return hf;
}

}  // namespace

Result<std::optional<MappedName>> MapHfTensorName(const HfConfig& cfg, const std::string& source_name) {
  bool skip = false;
  const std::string hf = LanguageModelName(source_name, cfg.multimodal, &skip);
  auto ends_with = [&](const std::string& s) {
    return hf.size() >= s.size() && hf.compare(hf.size() - s.size(), s.size(), s) == 0;
  };
  if (skip || ends_with(".rotary_emb.inv_freq") || ends_with(".attention.masked_bias") || ends_with(".attention.bias")) {
    return std::optional<MappedName>();
  }
  const ArchSpec* spec = ArchOfModelType(cfg.model_type);
  if (spec != nullptr) {
    if (std::find(spec->dropped.begin(), spec->dropped.end(), hf) != spec->dropped.end()) {
      return std::optional<MappedName>();
    }
    for (const auto& [h, g] : spec->global_names) {
      if (hf == h) return std::optional<MappedName>(MappedName{g, 0});
    }
    std::string idx, rest;
    if (SplitLayerName(hf, cfg.n_layer, &idx, &rest)) {
      for (const auto& n : spec->expert_names) {
        // "<head>{e}<tail>.weight" with a decimal expert index below n_expert.
        const std::string pat = n.hf;
        const size_t brace = pat.find("{e}");
        const std::string head = pat.substr(0, brace), tail = pat.substr(brace + 3) + ".weight";
        if (rest.size() <= head.size() + tail.size() || rest.compare(0, head.size(), head) != 0 ||
            rest.compare(rest.size() - tail.size(), tail.size(), tail) != 0) {
          continue;
        }
        const std::string num = rest.substr(head.size(), rest.size() - head.size() - tail.size());
        if (num.empty() || num.size() > 5 ||
            !std::all_of(num.begin(), num.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); })) {
          continue;
        }
        const int e = std::stoi(num);
        if (e >= cfg.n_expert) {
          return Status::Error(cfg.path + ": tensor '" + source_name + "': expert " + num + " (the config has " +
                               std::to_string(cfg.n_expert) + " experts)");
        }
        MappedName m{"blk." + idx + "." + n.gguf + ".weight", 0, e};
        return std::optional<MappedName>(m);
      }
      for (const auto& n : spec->layer_names) {
        for (const char* suffix : {".weight", ".bias"}) {
          if (rest != std::string(n.hf) + suffix) continue;
          MappedName m{"blk." + idx + "." + n.gguf + suffix, 0};
          if (spec->permutes_qk && n.permute == LayerTensorName::kQ) m.permute_heads = static_cast<int>(cfg.n_head);
          if (spec->permutes_qk && n.permute == LayerTensorName::kK) m.permute_heads = static_cast<int>(cfg.n_head_kv);
          return std::optional<MappedName>(m);
        }
      }
    }
  }
  return Status::Error(cfg.path + ": tensor '" + source_name + "' has no GGUF name for model_type '" + cfg.model_type + "'");
}

namespace {

bool IsSizeLabel(const std::string& s) {
  // e.g. 14m, 7B, 1.5B, 8x7B, 270K
  if (s.size() < 2) return false;
  char last = static_cast<char>(std::toupper(static_cast<unsigned char>(s.back())));
  if (last != 'K' && last != 'M' && last != 'B' && last != 'T') return false;
  std::string body = s.substr(0, s.size() - 1);
  size_t x = body.find('x');
  if (x != std::string::npos) body = body.substr(x + 1);
  if (body.empty() || !std::isdigit(static_cast<unsigned char>(body[0]))) return false;
  return std::all_of(body.begin(), body.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; });
}

bool IsVersion(const std::string& s) {
  return s.size() >= 2 && (s[0] == 'v' || s[0] == 'V') && std::isdigit(static_cast<unsigned char>(s[1])) &&
         std::all_of(s.begin() + 1, s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; });
}

// The converter's size label of a parameter count: scaled to K/M/B/T (a
// unit is used only above 1e6, 1e9, 1e12; K otherwise) with enough decimals
// for two significant digits: 2229504 -> "2.2M", 13600000 -> "14M".
std::string CountLabel(int64_t n) {
  const double d = static_cast<double>(n);
  double scaled;
  const char* suffix;
  if (d > 1e12) { scaled = d * 1e-12; suffix = "T"; }
  else if (d > 1e9) { scaled = d * 1e-9; suffix = "B"; }
  else if (d > 1e6) { scaled = d * 1e-6; suffix = "M"; }
  else { scaled = d * 1e-3; suffix = "K"; }
  // Digits of the rounded value (half to even), a lone 0 counting none.
  const double rounded = std::nearbyint(scaled);
  const int digits = rounded == 0.0 ? 0 : static_cast<int>(std::to_string(static_cast<int64_t>(rounded)).size());
  const int decimals = std::max(2 - digits, 0);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%s", decimals, scaled, suffix);
  return buf;
}

}  // namespace

ModelCard ModelCardFromFolder(const std::string& folder, int64_t n_params, int64_t expert_count) {
  std::filesystem::path p(folder);
  std::string base = p.filename().string();
  if (base.empty() || base == "." ) base = p.parent_path().filename().string();
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= base.size(); ++i) {
    if (i == base.size() || base[i] == '-' || base[i] == '_') {
      if (i > start) parts.push_back(base.substr(start, i - start));
      start = i + 1;
    }
  }
  ModelCard card;
  std::vector<std::string> basename_parts, finetune_parts;
  bool after_size = false;
  for (const auto& part : parts) {
    if (!after_size && IsSizeLabel(part)) {
      std::string label = part;
      label.back() = static_cast<char>(std::toupper(static_cast<unsigned char>(label.back())));
      card.size_label = label;
      after_size = true;
    } else if (IsVersion(part)) {
      card.version = part;
    } else if (after_size) {
      finetune_parts.push_back(part);
    } else {
      basename_parts.push_back(part);
    }
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : "-") + x;
    return s;
  };
  card.basename = join(basename_parts);
  card.finetune = join(finetune_parts);
  // A name with nothing but words is too ambiguous to split: no basename.
  if (card.size_label.empty() && card.finetune.empty() && card.version.empty()) card.basename.clear();
  if (card.size_label.empty() && n_params > 0) {
    card.size_label = (expert_count > 0 ? std::to_string(expert_count) + "x" : "") + CountLabel(n_params);
  }
  std::string name;
  for (const auto& part : parts) {
    std::string w = part;
    w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
    name += (name.empty() ? "" : " ") + w;
  }
  card.name = name;
  return card;
}

void AddHyperParameters(const HfConfig& c, uint32_t file_type, int64_t vocab_size, GgufMetadata* md) {
  if (const ArchSpec* spec = ArchOfModelType(c.model_type); spec != nullptr && spec->add_hparams != nullptr) {
    spec->add_hparams(c, file_type, vocab_size, md);
    return;
  }
  const std::string a = GgufArchitecture(c.model_type);
  auto u32 = [](int64_t v) { return GgufValue::U32(static_cast<uint32_t>(v)); };
  md->Append(a + ".block_count", u32(c.n_layer));
  md->Append(a + ".context_length", u32(c.n_ctx));
  md->Append(a + ".embedding_length", u32(c.n_embd));
  md->Append(a + ".feed_forward_length", u32(c.n_ff));
  md->Append(a + ".attention.head_count", u32(c.n_head));
  md->Append(a + ".attention.head_count_kv", u32(c.n_head_kv));
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type == "linear" && rs.factor != 1.0) {
    md->Append(a + ".rope.scaling.type", GgufValue::Str("linear"));
    md->Append(a + ".rope.scaling.factor", GgufValue::F32(static_cast<float>(rs.factor)));
  } else if (rs.type == "yarn") {
    md->Append(a + ".rope.scaling.type", GgufValue::Str("yarn"));
    md->Append(a + ".rope.scaling.factor", GgufValue::F32(static_cast<float>(rs.factor)));
    if (rs.original_context) md->Append(a + ".rope.scaling.original_context_length", u32(*rs.original_context));
  }
  if (c.rope_theta) md->Append(a + ".rope.freq_base", GgufValue::F32(static_cast<float>(*c.rope_theta)));
  md->Append(a + ".attention.layer_norm_rms_epsilon", GgufValue::F32(static_cast<float>(c.rms_eps)));
  if (c.n_expert > 0) {
    md->Append(a + ".expert_count", u32(c.n_expert));
    md->Append(a + ".expert_used_count", u32(c.n_expert_used));
  }
  if (c.head_dim) {
    md->Append(a + ".attention.key_length", u32(*c.head_dim));
    md->Append(a + ".attention.value_length", u32(*c.head_dim));
  }
  md->Append("general.file_type", GgufValue::U32(file_type));
  md->Append(a + ".vocab_size", u32(vocab_size));
  md->Append(a + ".rope.dimension_count", u32(c.HeadDim()));
}

std::vector<float> Llama3RopeFactors(const HfConfig& c) {
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type != "llama3") return {};
  // llama.cpp's converter computes these with float32 torch tensors, each
  // operation rounded to float32 (and x / tensor as reciprocal(tensor) * x);
  // doing the same in double differs in the last bits inside the smooth
  // band. The original context comes from the top level of config.json.
  const float base = static_cast<float>(c.rope_theta.value_or(10000.0));
  const int64_t dim = c.HeadDim();
  const float factor = static_cast<float>(rs.factor_stated ? rs.factor : 8.0);
  const float low = static_cast<float>(rs.low_freq_factor);
  const double old_ctx = static_cast<double>(c.original_max_position_embeddings.value_or(8192));
  const float low_wavelen = static_cast<float>(old_ctx / rs.low_freq_factor);
  const float high_wavelen = static_cast<float>(old_ctx / rs.high_freq_factor);
  const float band = static_cast<float>(rs.high_freq_factor - rs.low_freq_factor);
  const float two_pi = static_cast<float>(2.0 * M_PI);
  std::vector<float> out;
  for (int64_t i = 0; i < dim; i += 2) {
    const float freq = 1.0f / std::pow(base, static_cast<float>(i) / static_cast<float>(dim));
    const float wavelen = (1.0f / freq) * two_pi;
    float v;
    if (wavelen < high_wavelen) {
      v = 1.0f;
    } else if (wavelen > low_wavelen) {
      v = factor;
    } else {
      const float smooth = ((1.0f / wavelen) * static_cast<float>(old_ctx) - low) / band;
      v = 1.0f / ((1.0f - smooth) / factor + smooth);
    }
    out.push_back(v);
  }
  return out;
}

const BlockLayout& BlockOfArch(const std::string& gguf_arch, bool experts) {
  // Mixtral shares "llama" with the dense family: the expert count tells them apart.
  for (const ArchSpec& s : AllSpecs()) {
    if (s.gguf_arch == gguf_arch && s.block.expert_linears.empty() != experts) return s.block;
  }
  const ArchSpec* s = ArchOfGguf(gguf_arch);
  return s ? s->block : AllSpecs().front().block;
}

std::vector<std::string> LayerLinears(const BlockLayout& block, int64_t l) {
  std::vector<std::string> out;
  for (const auto& set : block.input_sets)
    for (const auto& n : set) out.push_back("blk." + std::to_string(l) + "." + n + ".weight");
  return out;
}

bool IsLayerLinear(const BlockLayout& block, const std::string& gguf_name) {
  const size_t dot = gguf_name.rfind(".weight");
  if (gguf_name.rfind("blk.", 0) != 0 || dot == std::string::npos || dot + 7 != gguf_name.size()) return false;
  const size_t after_layer = gguf_name.find('.', 4);
  if (after_layer == std::string::npos || after_layer >= dot) return false;
  const std::string short_name = gguf_name.substr(after_layer + 1, dot - after_layer - 1);
  for (const auto& set : block.input_sets) {
    if (std::find(set.begin(), set.end(), short_name) != set.end()) return true;
  }
  return false;
}

}  // namespace qforge
