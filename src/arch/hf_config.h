// A Hugging Face config.json of a family qforge converts (LLaMA, Gemma 2/3):
// every hyper-parameter llama.cpp records, checked for presence and range
// with errors that name the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qforge/status.h"

namespace qforge {

struct RopeScaling {
  std::string type;  // "", "linear", "yarn", "llama3", "longrope", "dynamic"
  double factor = 1.0;
  bool factor_stated = false;  // "factor" present in rope_scaling
  std::optional<int64_t> original_context;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;
  std::optional<double> attn_factor, beta_fast, beta_slow;
  std::vector<double> long_factor, short_factor;  // LongRoPE ("longrope", "su"): one per rotated pair
};

struct HfConfig {
  std::string path;        // config.json path, for messages
  std::string model_type;  // "llama", "mistral", "qwen2", "qwen3"
  int64_t n_layer = 0;
  int64_t n_ctx = 0;
  int64_t n_embd = 0;
  int64_t n_ff = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  std::optional<int64_t> head_dim;  // only when config.json states it
  std::optional<double> rope_theta;
  double rms_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  std::optional<int64_t> vocab_size;
  RopeScaling rope_scaling;
  std::optional<int64_t> sliding_window;
  // Top-level original_max_position_embeddings (not rope_scaling's).
  std::optional<int64_t> original_max_position_embeddings;
  // Gemma 2/3: tanh soft-capping of the attention scores and of the final
  // logits (absent or null: none), the rope base of the sliding-window
  // layers (Gemma 3's rope_local_base_freq) and the local:global period.
  std::optional<double> attn_logit_softcapping, final_logit_softcapping;
  std::optional<double> rope_local_base_freq;
  std::optional<int64_t> sliding_window_pattern;
  // Mixture of experts: num_local_experts (Mixtral) or num_experts (Qwen),
  // num_experts_per_tok, and the Qwen experts' and shared expert's widths.
  int64_t n_expert = 0, n_expert_used = 0;
  std::optional<int64_t> moe_intermediate_size, shared_expert_intermediate_size;
  double partial_rotary_factor = 1.0;  // Phi-3/4: share of each head's dimensions RoPE rotates
  // Read from text_config of a multimodal wrapper: the other towers'
  // tensors are left out, as the converter's text GGUF leaves them.
  bool multimodal = false;

  int64_t HeadDim() const { return head_dim ? *head_dim : n_embd / n_head; }
};

Result<HfConfig> ReadHfConfig(const std::string& folder);

}  // namespace qforge
