// A plain, correct CPU forward pass of the LLaMA family (llama, mistral,
// qwen2 with q/k/v biases, qwen3 with q/k norms) and of Gemma 2/3 (sandwich
// norms, GELU-tanh, soft-capping, sliding-window layers), as llama.cpp's
// graphs compute them: GQA, RoPE in the orientation the GGUF names imply,
// RMSNorm, gated FFN, tied or untied output.
// Activations are F32. Weights multiply as stored (engine/matmul.h):
// quantized GGUF rows through ggml's integer kernels, other types a decoded
// 256-row panel at a time through BLAS, so memory never holds an F32 copy of
// a weight (unless weight_cache_bytes asks to keep small models decoded).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/model.h"
#include "qforge/status.h"

namespace qforge {

struct LlamaHparams {
  std::string arch;
  int64_t n_layer = 0, n_embd = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0, n_vocab = 0;
  int64_t n_rot = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  float rope_freq_scale = 1.0f;
  bool rope_neox = false;  // qwen2/qwen3: rotate halves; llama: interleaved pairs
  // The Gemma block (ArchSpec::gemma_block): embeddings times embed_scale,
  // queries times q_scale after RoPE, GELU-tanh FFN, post-norms.
  bool gemma = false;
  float embed_scale = 1.0f, q_scale = 0.0f;  // q_scale 0: scores scaled by 1/sqrt(head_dim)
  float attn_softcap = 0.0f, final_softcap = 0.0f;  // 0: none
  // Sliding-window layers (l % swa_period < swa_period - 1 when n_swa > 0):
  // a query at position p sees keys p - n_swa + 1 ... p, with its own rope.
  int64_t n_swa = 0;
  int swa_period = 0;
  float rope_base_swa = 10000.0f, rope_freq_scale_swa = 1.0f;
  float rope_attn_factor = 1.0f;      // rope.scaling.attn_factor: scales the rotated dims (LongRoPE)
  int64_t n_ctx_train = 0;            // context_length
  int64_t n_expert = 0, n_expert_used = 0;  // expert_count, expert_used_count (0: dense)
  int64_t n_ctx_orig = 0;             // rope.scaling.original_context_length (LongRoPE's switch point)
  bool IsSwaLayer(int64_t l) const { return n_swa > 0 && swa_period > 0 && l % swa_period < swa_period - 1; }
};

// Keys and values of the positions evaluated so far, per layer (F16-rounded,
// as llama.cpp's cache holds them).
struct KvCache {
  int64_t n_past = 0;
  std::vector<std::vector<float>> k, v;  // per layer: n_past x n_head_kv x head_dim
};

class LlamaEngine {
 public:
  // The model must outlive the engine.
  // weight_cache_bytes > 0 keeps decoded weights between passes when the
  // whole model's F32 form fits that budget; by default memory holds one
  // layer's weights at a time.
  static Result<std::unique_ptr<LlamaEngine>> Create(const Model& model, int threads, uint64_t weight_cache_bytes = 0);

  const LlamaHparams& hparams() const { return hp_; }
  int threads() const { return threads_; }

  // The context the caller evaluates with, as llama.cpp's -c (per
  // sequence); by default the trained context, as llama.cpp's default.
  // LongRoPE models (Phi-3) use their long factor table above the original
  // context and the short one otherwise, so logits depend on it.
  void SetContextLength(int64_t n_ctx);
  int64_t context_length() const { return n_ctx_; }

  // Sees the input of every linear layer: (GGUF weight name, rows x cols
  // activations, row-major). For importance matrices and calibration.
  using ActivationHook = std::function<void(const std::string& weight, const float* x, int64_t rows, int64_t cols)>;
  void SetActivationHook(ActivationHook hook) { hook_ = std::move(hook); }
  // Sees the input of each expert of a mixture-of-experts layer: (GGUF name
  // of the stacked weight, expert index, the rows routed to it x cols).
  using ExpertActivationHook =
      std::function<void(const std::string& weight, int64_t expert, const float* x, int64_t rows, int64_t cols)>;
  void SetExpertActivationHook(ExpertActivationHook hook) { expert_hook_ = std::move(hook); }

  // Evaluates one sequence from position 0 (no cache) and returns the logits
  // of positions [first_logit, tokens.size()) as rows of n_vocab floats.
  Status Forward(const std::vector<int32_t>& tokens, int64_t first_logit, std::vector<float>* logits);

  // Appends tokens after the cache's positions and returns the logits of the
  // last one (n_vocab floats). For generation.
  Status Decode(const std::vector<int32_t>& tokens, KvCache* cache, std::vector<float>* last_logits);

  // Pieces of the forward pass, for layer-by-layer calibration. Sequences
  // start at position 0; rows are T x n_embd.
  Status Embed(const std::vector<int32_t>& tokens, std::vector<float>* x) const;
  // One decoder layer, residuals included, on x in place. With stop_at (a
  // linear weight's name) the pass ends once that linear has seen its input
  // (the hook is called), leaving x unspecified: for collecting inputs.
  Status ForwardLayer(int64_t layer, float* x, int64_t T, const std::string& stop_at = "");
  // The attention (from the normed input h to o_proj's output) and the MLP
  // (from the normed input to down_proj's output), without residuals.
  Status AttentionBlock(int64_t layer, const float* h, int64_t T, float* out);
  Status MlpBlock(int64_t layer, const float* h, int64_t T, float* out);
  // RMSNorm with the named weight: x -> h.
  Status Norm(const std::string& weight, const float* x, int64_t T, float* h);

  // While set, the named tensor (GGUF name, rows in GGUF order) is read from
  // *w instead of the model: calibration swaps in quantized or rescaled
  // weights. The vector must outlive the override.
  void SetWeightOverride(const std::string& name, const std::vector<float>* w) { overrides_[name] = w; }
  void ClearWeightOverrides() { overrides_.clear(); }

 private:
  LlamaEngine(const Model& model, LlamaHparams hp, int threads) : model_(model), hp_(std::move(hp)), threads_(threads) {}
  // The weight as F32 rows: from the cache, or decoded into *scratch.
  Result<const std::vector<float>*> Weight(const std::string& name, std::vector<float>* scratch) const;
  const ModelTensor* Find(const std::string& name) const { return model_.Find(name); }
  Status Run(const std::vector<int32_t>& tokens, KvCache* cache, int64_t first_logit, std::vector<float>* logits);
  Status Layer(int64_t l, float* x, int64_t T, KvCache* cache);
  Status Attention(int64_t l, const float* h, int64_t T, KvCache* cache, float* out);
  Status Mlp(int64_t l, const float* h, int64_t T, float* out);
  // The mixture-of-experts FFN (router softmax, top-k, the chosen experts'
  // SwiGLU weighted and summed; Qwen2-MoE's gated shared expert added).
  Status Moe(int64_t l, const float* h, int64_t T, float* out);
  // y (T x N) = x (T x K) times expert e's N rows of a stacked expert tensor
  // (rows [e * N, (e + 1) * N); an override when set).
  Status ExpertProduct(const ModelTensor& t, int64_t e, const float* x, int64_t T, int64_t K, float* y, int64_t N);
  // y (T x N) = x (T x K) times the rows of w, with x rounded as llama.cpp's
  // kernels round it for weight tensor t's type.
  void Product(const ModelTensor* t, const float* x, int64_t T, int64_t K, float* y, int64_t N, const float* w);
  // y (T x N) = x (T x K) times the named weight (an override, the F32
  // cache, or the stored tensor through MultiplyRows), with the activation
  // hook and stop point applied first.
  Status Linear(const std::string& name, const float* x, int64_t T, int64_t K, float* y, int64_t N);

  const Model& model_;
  LlamaHparams hp_;
  int threads_;
  ActivationHook hook_;
  ExpertActivationHook expert_hook_;
  bool expert_weights_norm_ = false;
  bool cache_weights_ = false;
  std::vector<float> rope_factors_;  // the divisors in use (rope_freqs, or a LongRoPE table); empty: none
  std::vector<float> rope_long_, rope_short_;  // LongRoPE's tables; empty: none
  int64_t n_ctx_ = 0;
  std::vector<float> act_;  // activations rounded as llama.cpp would
  std::vector<float> mlp_gate_, mlp_up_;  // the MLP's T x n_ff products, reused by every layer
  mutable std::unordered_map<std::string, std::vector<float>> cache_;
  std::unordered_map<std::string, const std::vector<float>*> overrides_;
  std::string stop_at_;
  bool stopped_ = false;
};

}  // namespace qforge
