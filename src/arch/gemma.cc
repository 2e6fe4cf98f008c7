// Gemma 2 and Gemma 3 as llama.cpp converts and runs them
// (convert_hf_to_gguf.py's Gemma2Model / Gemma3Model, llama.cpp's gemma2 /
// gemma3 graphs at the pinned commit): sandwich norms around attention and
// FFN, norm weights stored as 1 + w, tied output (lm_head dropped), NEOX
// RoPE, sliding-window attention on the local layers.
#include "arch/families.h"
#include "arch/hf_config.h"
#include "io/gguf.h"

namespace qforge {
namespace {

std::vector<LayerTensorName> GemmaLayerNames() {
  return {{"input_layernorm", "attn_norm"},
          {"self_attn.q_proj", "attn_q"},
          {"self_attn.k_proj", "attn_k"},
          {"self_attn.v_proj", "attn_v"},
          {"self_attn.o_proj", "attn_output"},
          {"self_attn.q_norm", "attn_q_norm"},
          {"self_attn.k_norm", "attn_k_norm"},
          {"post_attention_layernorm", "post_attention_norm"},
          {"pre_feedforward_layernorm", "ffn_norm"},
          {"post_feedforward_layernorm", "post_ffw_norm"},
          {"mlp.gate_proj", "ffn_gate"},
          {"mlp.up_proj", "ffn_up"},
          {"mlp.down_proj", "ffn_down"}};
}

ArchSpec GemmaBase(std::string gguf_arch, std::vector<std::string> model_types) {
  ArchSpec s;
  s.gguf_arch = std::move(gguf_arch);
  s.model_types = std::move(model_types);
  s.rope_neox = true;
  s.global_names = {{"model.embed_tokens.weight", "token_embd.weight"}, {"model.norm.weight", "output_norm.weight"}};
  s.layer_names = GemmaLayerNames();
  // The LLaMA block's linears and scaling groups; the FFN's pre-norm is
  // ffn_norm (Gemma's pre_feedforward_layernorm).
  s.block = LlamaBlock();
  s.norm_shift = 1.0f;
  s.dropped = {"lm_head.weight"};
  s.no_space_prefix = true;
  s.tied_by_default = true;
  s.gemma_block = true;
  return s;
}

GgufValue U32(int64_t v) { return GgufValue::U32(static_cast<uint32_t>(v)); }
GgufValue F32(double v) { return GgufValue::F32(static_cast<float>(v)); }

// Gemma2Model.set_gguf_parameters: no rope keys, no vocab_size.
void AddGemma2Hparams(const HfConfig& c, uint32_t file_type, int64_t /*vocab_size*/, GgufMetadata* md) {
  const std::string a = "gemma2.";
  md->Append(a + "context_length", U32(c.n_ctx));
  md->Append(a + "embedding_length", U32(c.n_embd));
  md->Append(a + "block_count", U32(c.n_layer));
  md->Append(a + "feed_forward_length", U32(c.n_ff));
  md->Append(a + "attention.head_count", U32(c.n_head));
  md->Append(a + "attention.head_count_kv", U32(c.n_head_kv));
  md->Append(a + "attention.layer_norm_rms_epsilon", F32(c.rms_eps));
  md->Append(a + "attention.key_length", U32(c.HeadDim()));
  md->Append(a + "attention.value_length", U32(c.HeadDim()));
  md->Append("general.file_type", GgufValue::U32(file_type));
  if (c.attn_logit_softcapping) md->Append(a + "attn_logit_softcapping", F32(*c.attn_logit_softcapping));
  if (c.final_logit_softcapping) md->Append(a + "final_logit_softcapping", F32(*c.final_logit_softcapping));
  if (c.sliding_window) md->Append(a + "attention.sliding_window", U32(*c.sliding_window));
}

// Gemma3Model.set_gguf_parameters over the generic text-model keys.
void AddGemma3Hparams(const HfConfig& c, uint32_t file_type, int64_t /*vocab_size*/, GgufMetadata* md) {
  const std::string a = "gemma3.";
  md->Append(a + "block_count", U32(c.n_layer));
  md->Append(a + "context_length", U32(c.n_ctx));
  md->Append(a + "embedding_length", U32(c.n_embd));
  md->Append(a + "feed_forward_length", U32(c.n_ff));
  md->Append(a + "attention.head_count", U32(c.n_head));
  md->Append(a + "attention.head_count_kv", U32(c.n_head_kv));
  md->Append(a + "rope.freq_base", F32(c.rope_theta.value_or(1000000.0)));
  if (c.rope_local_base_freq) md->Append(a + "rope.freq_base_swa", F32(*c.rope_local_base_freq));
  md->Append(a + "attention.layer_norm_rms_epsilon", F32(c.rms_eps));
  md->Append(a + "attention.key_length", U32(c.HeadDim()));
  md->Append(a + "attention.value_length", U32(c.HeadDim()));
  md->Append("general.file_type", GgufValue::U32(file_type));
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type == "linear" && rs.factor != 1.0) {
    md->Append(a + "rope.scaling.type", GgufValue::Str("linear"));
    md->Append(a + "rope.scaling.factor", F32(rs.factor));
  }
  if (c.final_logit_softcapping && *c.final_logit_softcapping != 0.0) {
    md->Append(a + "final_logit_softcapping", F32(*c.final_logit_softcapping));
  }
  if (c.sliding_window && c.sliding_window_pattern.value_or(6) != 1) {
    md->Append(a + "attention.sliding_window", U32(*c.sliding_window));
  }
}

}  // namespace

ArchSpec Gemma2Spec() {
  ArchSpec s = GemmaBase("gemma2", {"gemma2"});
  s.add_hparams = AddGemma2Hparams;
  s.gemma_27b_layers = 46;
  s.swa_period = 2;
  return s;
}

ArchSpec Gemma3Spec() {
  ArchSpec s = GemmaBase("gemma3", {"gemma3_text", "gemma3"});
  s.add_hparams = AddGemma3Hparams;
  s.truncate_embeddings = true;
  s.gemma_27b_layers = 62;
  s.swa_period = 6;
  s.swa_rope_base = 10000.0f;
  s.swa_rope_unscaled = true;
  return s;
}

}  // namespace qforge
