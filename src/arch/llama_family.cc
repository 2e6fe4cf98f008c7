#include "arch/llama_family.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <vector>

namespace qforge {

std::string GgufArchitecture(const std::string& model_type) {
  if (model_type == "mistral") return "llama";
  return model_type;
}

bool PermutesQK(const std::string& model_type) {
  return model_type == "llama" || model_type == "mistral";
}

Result<std::optional<MappedName>> MapHfTensorName(const HfConfig& cfg, const std::string& hf) {
  auto ends_with = [&](const std::string& s) {
    return hf.size() >= s.size() && hf.compare(hf.size() - s.size(), s.size(), s) == 0;
  };
  if (ends_with(".rotary_emb.inv_freq") || ends_with(".attention.masked_bias") ||
      ends_with(".attention.bias")) {
    return std::optional<MappedName>();
  }
  static const std::pair<const char*, const char*> kGlobal[] = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
  };
  for (const auto& [h, g] : kGlobal) {
    if (hf == h) return std::optional<MappedName>(MappedName{g, 0});
  }
  const std::string prefix = "model.layers.";
  if (hf.rfind(prefix, 0) == 0) {
    size_t p = prefix.size();
    size_t dot = hf.find('.', p);
    if (dot != std::string::npos && dot > p) {
      const std::string idx = hf.substr(p, dot - p);
      bool digits = std::all_of(idx.begin(), idx.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
      if (digits && idx.size() < 6 && std::stoll(idx) < cfg.n_layer) {
        const std::string rest = hf.substr(dot + 1);
        static const std::pair<const char*, const char*> kLayer[] = {
            {"input_layernorm", "attn_norm"},
            {"self_attn.q_proj", "attn_q"},
            {"self_attn.k_proj", "attn_k"},
            {"self_attn.v_proj", "attn_v"},
            {"self_attn.o_proj", "attn_output"},
            {"self_attn.q_norm", "attn_q_norm"},
            {"self_attn.k_norm", "attn_k_norm"},
            {"post_attention_layernorm", "ffn_norm"},
            {"mlp.gate_proj", "ffn_gate"},
            {"mlp.up_proj", "ffn_up"},
            {"mlp.down_proj", "ffn_down"},
        };
        for (const auto& [h, g] : kLayer) {
          const std::string hs(h);
          for (const char* suffix : {".weight", ".bias"}) {
            if (rest == hs + suffix) {
              MappedName m{"blk." + idx + "." + g + suffix, 0};
              if (PermutesQK(cfg.model_type)) {
                if (hs == "self_attn.q_proj") m.permute_heads = static_cast<int>(cfg.n_head);
                if (hs == "self_attn.k_proj") m.permute_heads = static_cast<int>(cfg.n_head_kv);
              }
              return std::optional<MappedName>(m);
            }
          }
        }
      }
    }
  }
  return Status::Error(cfg.path + ": tensor '" + hf + "' has no GGUF name for model_type '" +
                       cfg.model_type + "'");
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

std::string CountLabel(int64_t n) {
  const char* suffix = "";
  double scaled = static_cast<double>(n);
  if (n >= 1000000000000LL) { scaled /= 1e12; suffix = "T"; }
  else if (n >= 1000000000LL) { scaled /= 1e9; suffix = "B"; }
  else if (n >= 1000000LL) { scaled /= 1e6; suffix = "M"; }
  else if (n >= 1000LL) { scaled /= 1e3; suffix = "K"; }
  return std::to_string(static_cast<int64_t>(std::llround(scaled))) + suffix;
}

}  // namespace

ModelCard ModelCardFromFolder(const std::string& folder, int64_t n_params) {
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
  if (card.size_label.empty() && n_params > 0) card.size_label = CountLabel(n_params);
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
  const double base = c.rope_theta.value_or(10000.0);
  const int64_t dim = c.HeadDim();
  const double factor = rs.factor != 1.0 ? rs.factor : 8.0;
  const double old_ctx = static_cast<double>(rs.original_context.value_or(8192));
  const double low_wavelen = old_ctx / rs.low_freq_factor;
  const double high_wavelen = old_ctx / rs.high_freq_factor;
  std::vector<float> out;
  for (int64_t k = 0; k < dim / 2; ++k) {
    const float freq = static_cast<float>(std::pow(base, -2.0 * static_cast<double>(k) / static_cast<double>(dim)));
    const double wavelen = 2.0 * M_PI / freq;
    double v;
    if (wavelen < high_wavelen) v = 1.0;
    else if (wavelen > low_wavelen) v = factor;
    else {
      const double smooth = (old_ctx / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
      v = 1.0 / ((1.0 - smooth) / factor + smooth);
    }
    out.push_back(static_cast<float>(v));
  }
  return out;
}

const std::vector<std::vector<std::string>>& LayerLinearSets() {
  static const std::vector<std::vector<std::string>> kSets = {
      {"attn_q", "attn_k", "attn_v"}, {"attn_output"}, {"ffn_gate", "ffn_up"}, {"ffn_down"}};
  return kSets;
}

std::vector<std::string> LayerLinears(int64_t l) {
  std::vector<std::string> out;
  for (const auto& set : LayerLinearSets())
    for (const auto& n : set) out.push_back("blk." + std::to_string(l) + "." + n + ".weight");
  return out;
}

}  // namespace qforge
