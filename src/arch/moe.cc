// The mixture-of-experts families as llama.cpp converts and runs them
// (convert_hf_to_gguf.py's LlamaModel for Mixtral, Qwen2MoeModel,
// Qwen3MoeModel; the llama / qwen2moe / qwen3moe graphs at the pinned
// commit). Each layer's experts are stacked into 3-D ffn_{gate,up,down}_exps
// tensors, the router is ffn_gate_inp (kept F32), and Qwen2-MoE adds a
// shared expert whose output is gated by sigmoid(ffn_gate_inp_shexp . x).
#include "arch/families.h"
#include "arch/hf_config.h"
#include "io/gguf.h"

namespace qforge {
namespace {

// The MoE block: attention as the dense layout, then the router and the
// experts' gate/up on the normed input, each expert's down on its own
// intermediate; Qwen2-MoE's shared expert as a dense MLP beside them. AWQ
// folds the experts' (and shared expert's) gate/up scales into ffn_norm and
// multiplies the router's columns by them; each expert's down is scaled
// through its own up rows.
BlockLayout MoeBlock(bool shared_expert) {
  BlockLayout b;
  b.input_sets = {{"attn_q", "attn_k", "attn_v"}, {"attn_output"}, {"ffn_gate_exps", "ffn_up_exps"}};
  if (shared_expert) b.input_sets.push_back({"ffn_gate_shexp", "ffn_up_shexp"});
  b.input_sets.push_back({"ffn_down_exps"});
  if (shared_expert) b.input_sets.push_back({"ffn_down_shexp"});
  ScalingGroup ffn{"ffn_norm", true, {"ffn_gate_exps", "ffn_up_exps"}, ScalingGroup::kMlp, {"ffn_gate_inp"}};
  if (shared_expert) {
    ffn.linears.insert(ffn.linears.end(), {"ffn_gate_shexp", "ffn_up_shexp"});
    ffn.followers.push_back("ffn_gate_inp_shexp");
  }
  b.scaling = {{"attn_norm", true, {"attn_q", "attn_k", "attn_v"}, ScalingGroup::kAttention, {}},
               {"attn_v", false, {"attn_output"}, ScalingGroup::kLinear, {}},
               std::move(ffn),
               {"ffn_up_exps", false, {"ffn_down_exps"}, ScalingGroup::kLinear, {}}};
  if (shared_expert) b.scaling.push_back({"ffn_up_shexp", false, {"ffn_down_shexp"}, ScalingGroup::kLinear, {}});
  b.clip = {{"attn_v", "attn_q"}, {"attn_output", "attn_output"}, {"ffn_gate_exps", "ffn_gate_exps"},
            {"ffn_up_exps", "ffn_gate_exps"}, {"ffn_down_exps", "ffn_down_exps"}};
  if (shared_expert) {
    b.clip.insert(b.clip.end(), {{"ffn_gate_shexp", "ffn_gate_shexp"}, {"ffn_up_shexp", "ffn_gate_shexp"},
                                 {"ffn_down_shexp", "ffn_down_shexp"}});
  }
  b.expert_linears = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
  b.router = "ffn_gate_inp";
  return b;
}

// Qwen2MoeModel / Qwen3MoeModel.set_gguf_parameters: the generic text-model
// keys plus the expert widths (no rope.dimension_count, no vocab_size).
void AddQwenMoeHparams(const HfConfig& c, uint32_t file_type, int64_t /*vocab_size*/, GgufMetadata* md) {
  const std::string a = c.model_type == "qwen2_moe" ? "qwen2moe." : "qwen3moe.";
  auto u32 = [](int64_t v) { return GgufValue::U32(static_cast<uint32_t>(v)); };
  md->Append(a + "block_count", u32(c.n_layer));
  md->Append(a + "context_length", u32(c.n_ctx));
  md->Append(a + "embedding_length", u32(c.n_embd));
  md->Append(a + "feed_forward_length", u32(c.n_ff));
  md->Append(a + "attention.head_count", u32(c.n_head));
  md->Append(a + "attention.head_count_kv", u32(c.n_head_kv));
  if (c.rope_theta) md->Append(a + "rope.freq_base", GgufValue::F32(static_cast<float>(*c.rope_theta)));
  md->Append(a + "attention.layer_norm_rms_epsilon", GgufValue::F32(static_cast<float>(c.rms_eps)));
  md->Append(a + "expert_count", u32(c.n_expert));
  md->Append(a + "expert_used_count", u32(c.n_expert_used));
  if (c.head_dim) {
    md->Append(a + "attention.key_length", u32(*c.head_dim));
    md->Append(a + "attention.value_length", u32(*c.head_dim));
  }
  md->Append("general.file_type", GgufValue::U32(file_type));
  if (c.moe_intermediate_size) md->Append(a + "expert_feed_forward_length", u32(*c.moe_intermediate_size));
  if (c.shared_expert_intermediate_size) {
    md->Append(a + "expert_shared_feed_forward_length", u32(*c.shared_expert_intermediate_size));
  }
}

// A dense spec's layer names without its MLP (ffn_norm stays), plus `extra`.
std::vector<LayerTensorName> WithoutDenseMlp(const std::vector<LayerTensorName>& names,
                                             std::vector<LayerTensorName> extra) {
  std::vector<LayerTensorName> out;
  for (const auto& n : names) {
    if (std::string(n.gguf).rfind("ffn_", 0) != 0 || std::string(n.gguf) == "ffn_norm") out.push_back(n);
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

ArchSpec QwenMoe(std::string gguf_arch, std::string model_type, bool shared_expert) {
  ArchSpec s = LlamaFamily(std::move(gguf_arch), {std::move(model_type)}, false);
  s.generated = nullptr;
  s.add_hparams = AddQwenMoeHparams;
  // The experts, router and shared expert replace the dense MLP's names.
  std::vector<LayerTensorName> extra = {{"mlp.gate", "ffn_gate_inp"}};
  if (shared_expert) {
    extra.insert(extra.end(), {{"mlp.shared_expert.gate_proj", "ffn_gate_shexp"},
                               {"mlp.shared_expert.up_proj", "ffn_up_shexp"},
                               {"mlp.shared_expert.down_proj", "ffn_down_shexp"},
                               {"mlp.shared_expert_gate", "ffn_gate_inp_shexp"}});
  }
  s.layer_names = WithoutDenseMlp(s.layer_names, std::move(extra));
  s.expert_names = {{"mlp.experts.{e}.down_proj", "ffn_down_exps"},
                    {"mlp.experts.{e}.gate_proj", "ffn_gate_exps"},
                    {"mlp.experts.{e}.up_proj", "ffn_up_exps"}};
  s.block = MoeBlock(shared_expert);
  return s;
}

}  // namespace

ArchSpec MixtralSpec() {
  ArchSpec s = LlamaFamily("llama", {"mixtral"}, true);
  s.layer_names = WithoutDenseMlp(s.layer_names, {{"block_sparse_moe.gate", "ffn_gate_inp"}});
  s.expert_names = {{"block_sparse_moe.experts.{e}.w1", "ffn_gate_exps"},
                    {"block_sparse_moe.experts.{e}.w2", "ffn_down_exps"},
                    {"block_sparse_moe.experts.{e}.w3", "ffn_up_exps"}};
  s.expert_weights_norm = true;
  s.block = MoeBlock(false);
  return s;
}

ArchSpec Qwen2MoeSpec() { return QwenMoe("qwen2moe", "qwen2_moe", true); }

ArchSpec Qwen3MoeSpec() {
  ArchSpec s = QwenMoe("qwen3moe", "qwen3_moe", false);
  s.expert_weights_norm = true;
  return s;
}

}  // namespace qforge
