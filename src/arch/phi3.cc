// Phi-3, Phi-3.5 and Phi-4 (Phi3ForCausalLM) as llama.cpp converts and runs
// them (convert_hf_to_gguf.py's Phi3MiniModel, the phi3 graph at the pinned
// commit): fused qkv_proj -> attn_qkv (Q, K, V rows in that order) and
// gate_up_proj -> ffn_up (gate rows, then up rows), NEOX RoPE over
// partial_rotary_factor of each head, LongRoPE factor tables chosen by the
// context length with their attention factor. llama.cpp disables Phi's
// sliding window ("Phi SWA is currently disabled"), so the engine does too.
#include <cmath>

#include "arch/families.h"
#include "arch/hf_config.h"
#include "io/gguf.h"

namespace qforge {
namespace {

BlockLayout Phi3Block() {
  BlockLayout b;
  b.input_sets = {{"attn_qkv"}, {"attn_output"}, {"ffn_up"}, {"ffn_down"}};
  // The fused producers' rows are not their readers' inputs (qkv -> o,
  // gate|up -> down), so only the norms take AWQ scales.
  b.scaling = {{"attn_norm", true, {"attn_qkv"}, ScalingGroup::kAttention, {}},
               {"ffn_norm", true, {"ffn_up"}, ScalingGroup::kMlp, {}}};
  b.clip = {{"attn_output", "attn_output"}, {"ffn_down", "ffn_down"}};
  return b;
}

int64_t RopeDims(const HfConfig& c) {
  return static_cast<int64_t>(c.partial_rotary_factor * static_cast<double>(c.n_embd)) / c.n_head;
}

// The scale LongRoPE's attention factor comes from: trained over original context.
double LongRopeScale(const HfConfig& c) {
  const int64_t orig = c.original_max_position_embeddings.value_or(c.n_ctx);
  return static_cast<double>(c.n_ctx) / static_cast<double>(orig);
}

void AddPhi3Hparams(const HfConfig& c, uint32_t file_type, int64_t /*vocab_size*/, GgufMetadata* md) {
  const std::string a = "phi3.";
  auto u32 = [](int64_t v) { return GgufValue::U32(static_cast<uint32_t>(v)); };
  md->Append(a + "context_length", u32(c.n_ctx));
  md->Append(a + "rope.scaling.original_context_length", u32(c.original_max_position_embeddings.value_or(c.n_ctx)));
  md->Append(a + "embedding_length", u32(c.n_embd));
  md->Append(a + "feed_forward_length", u32(c.n_ff));
  md->Append(a + "block_count", u32(c.n_layer));
  md->Append(a + "attention.head_count", u32(c.n_head));
  md->Append(a + "attention.head_count_kv", u32(c.n_head_kv));
  md->Append(a + "attention.layer_norm_rms_epsilon", GgufValue::F32(static_cast<float>(c.rms_eps)));
  md->Append(a + "rope.dimension_count", u32(RopeDims(c)));
  md->Append(a + "rope.freq_base", GgufValue::F32(static_cast<float>(c.rope_theta.value_or(10000.0))));
  md->Append("general.file_type", GgufValue::U32(file_type));
  // 0 marks "no sliding window" (Phi-4), as the converter writes it.
  md->Append(a + "attention.sliding_window", u32(c.sliding_window.value_or(0)));
  const std::string& type = c.rope_scaling.type;
  if (type.empty()) return;
  const double scale = LongRopeScale(c);
  const int64_t orig = c.original_max_position_embeddings.value_or(c.n_ctx);
  double attn_factor = 1.0;
  if (scale > 1.0 && (type == "longrope" || type == "su")) {
    attn_factor = std::sqrt(1.0 + std::log(scale) / std::log(static_cast<double>(orig)));
  } else if (scale > 1.0 && type == "yarn") {
    attn_factor = 0.1 * std::log(scale) + 1.0;
  }
  md->Append(a + "rope.scaling.attn_factor", GgufValue::F32(static_cast<float>(attn_factor)));
}

// rope_factors_long / rope_factors_short: the LongRoPE tables as F32.
std::string Phi3Generated(const HfConfig& c, std::vector<GeneratedTensor>* out) {
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type.empty()) return "";
  if (rs.type != "longrope" && rs.type != "su" && rs.type != "yarn") {
    return "rope_scaling.type: '" + rs.type + "' is not supported for phi3 (expected longrope, su or yarn, as llama.cpp)";
  }
  const int64_t orig = c.original_max_position_embeddings.value_or(0);
  if (orig < 2 || orig > c.n_ctx) {
    return "original_max_position_embeddings: " + std::to_string(orig) + " (LongRoPE needs the original context, 2.." +
           std::to_string(c.n_ctx) + " = max_position_embeddings)";
  }
  const size_t half = static_cast<size_t>(RopeDims(c) / 2);
  if (rs.long_factor.size() != half || rs.short_factor.size() != half) {
    return "rope_scaling.long_factor/short_factor: " + std::to_string(rs.long_factor.size()) + " and " +
           std::to_string(rs.short_factor.size()) + " entries (expected " + std::to_string(half) +
           ", one per rotated pair)";
  }
  for (auto [name, src] : {std::pair{"rope_factors_long.weight", &rs.long_factor},
                           std::pair{"rope_factors_short.weight", &rs.short_factor}}) {
    GeneratedTensor t{name, {}};
    for (double v : *src) {
      if (!(v > 0.0) || !std::isfinite(v)) return std::string("rope_scaling: ") + name + " has a factor " + std::to_string(v) + " (expected finite and positive)";
      t.values.push_back(static_cast<float>(v));
    }
    out->push_back(std::move(t));
  }
  return "";
}

}  // namespace

ArchSpec Phi3Spec() {
  ArchSpec s;
  s.gguf_arch = "phi3";
  s.model_types = {"phi3"};
  s.rope_neox = true;
  s.global_names = {{"model.embed_tokens.weight", "token_embd.weight"},
                    {"model.norm.weight", "output_norm.weight"},
                    {"lm_head.weight", "output.weight"}};
  s.layer_names = {{"input_layernorm", "attn_norm"},
                   {"self_attn.qkv_proj", "attn_qkv"},
                   {"self_attn.o_proj", "attn_output"},
                   {"post_attention_layernorm", "ffn_norm"},
                   {"mlp.gate_up_proj", "ffn_up"},
                   {"mlp.down_proj", "ffn_down"}};
  s.block = Phi3Block();
  s.add_hparams = AddPhi3Hparams;
  s.generated = Phi3Generated;
  s.prescale_q = true;
  return s;
}

}  // namespace qforge
