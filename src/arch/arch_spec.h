// What an architecture is, in one place: its names (Hugging Face <-> GGUF,
// with the row transform the converter applies), the engine's variant
// flags, and the block layout every layer-by-layer method reads — which
// linears a decoder layer has, which share an input, and which operation
// precedes each group (what AWQ folds its scales into). Adding a family is
// one file in src/arch/ defining an ArchSpec.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qforge {

struct HfConfig;
class GgufMetadata;

// A tensor the converter computes from config.json rather than reads
// (rope_freqs for llama3 RoPE scaling, Phi-3's LongRoPE factor tables):
// F32 values, written before the checkpoint's tensors.
struct GeneratedTensor {
  std::string name;
  std::vector<float> values;
};

// A tensor of a decoder layer: HF name relative to "model.layers.N." (no
// ".weight"/".bias") and its GGUF short name (relative to "blk.N.").
struct LayerTensorName {
  const char* hf;
  const char* gguf;
  // Rows the converter permutes from rotate-half to interleaved pairs, over
  // the query heads (kQ) or the key/value heads (kK), on families that do.
  enum Permute { kNone, kQ, kK } permute = kNone;
};

// One expert's linear of a mixture-of-experts layer: HF name relative to
// "model.layers.N." with "{e}" for the expert index ("mlp.experts.{e}.
// up_proj"), and the GGUF short name of the tensor stacking all experts
// ("ffn_up_exps"; ggml shape [cols, rows, n_expert]).
struct ExpertTensorName {
  const char* hf;
  const char* gguf;
};

// A group of linears reading one input and the operation producing it.
struct ScalingGroup {
  std::string prev;               // GGUF short name of the producer: a norm weight or a linear
  bool prev_is_norm = false;
  std::vector<std::string> linears;  // GGUF short names of the readers; the first sees the input first
  // What maps the producer's output to the readers' outputs, for AWQ's
  // search loss: the attention block, the MLP block, or the single linear.
  enum Module { kAttention, kMlp, kLinear } module = kLinear;
  // Float tensors that read the same input and stay float (the MoE router,
  // Qwen2-MoE's shared-expert gate): their columns are multiplied by the
  // scales the producer is divided by, so they compute exactly what they did.
  std::vector<std::string> followers;
};

struct BlockLayout {
  // The layer's linears as sets sharing one input, in the order their inputs
  // become final (each set's first name is the one the engine reports first).
  std::vector<std::vector<std::string>> input_sets;
  // AWQ's scaling groups; a kLinear group applies only when the producer's
  // output rows equal the readers' input columns (not under GQA for v -> o).
  std::vector<ScalingGroup> scaling;
  // AWQ's clipping: each linear clipped, and the first linear of the input
  // set whose recorded input it is scored on. q and k are never clipped.
  std::vector<std::pair<std::string, std::string>> clip;
  // Mixture-of-experts layers: the GGUF short names of the tensors stacked
  // per expert ("ffn_gate_exps", ...) and the router; empty for dense layers.
  // A stacked linear appears in input_sets like any other; each expert is
  // calibrated on the tokens routed to it (its input set's Hessian or AWQ
  // statistics are per expert), and an input set never mixes stacked and
  // plain linears. The experts' gate/up read the router's input, so their
  // statistics are the router's input rows chosen for each expert.
  std::vector<std::string> expert_linears;
  std::string router;
  // Whether a linear (GGUF short name) is a stacked expert tensor.
  bool IsExpertStack(const std::string& short_name) const {
    for (const auto& e : expert_linears) {
      if (e == short_name) return true;
    }
    return false;
  }
  // The first linear of the input set a linear belongs to: the one whose
  // input (Hessian, AWQ statistics) it shares; itself when in no set.
  const std::string& InputOf(const std::string& short_name) const {
    for (const auto& set : input_sets) {
      for (const auto& n : set) {
        if (n == short_name) return set.front();
      }
    }
    return short_name;
  }
};

struct ArchSpec {
  std::string gguf_arch;                 // general.architecture: "llama", "qwen2", "gemma3", ...
  std::vector<std::string> model_types;  // config.json model_type values that map here
  bool permutes_qk = false;              // converter interleaves Q/K rows (llama, mistral)
  bool rope_neox = false;                // engine: RoPE rotates halves (no permutation)
  std::vector<std::pair<const char*, const char*>> global_names;  // HF -> GGUF, outside the layers
  std::vector<LayerTensorName> layer_names;
  BlockLayout block;
  // Mixture of experts: the stacked expert tensors in the order the
  // converter writes them once a layer's experts are all read.
  std::vector<ExpertTensorName> expert_names;
  // Router: softmax over all experts, top-k, then the chosen weights
  // renormalised to sum 1 (Mixtral, Qwen3-MoE) or not (Qwen2-MoE).
  bool expert_weights_norm = false;

  // Conversion. A constant added to every tensor whose HF name ends in
  // "norm.weight" (Gemma's RMSNorm multiplies by 1 + w; GGUF stores 1 + w).
  float norm_shift = 0.0f;
  std::vector<std::string> dropped;   // HF tensors the converter skips (Gemma: lm_head.weight)
  bool truncate_embeddings = false;   // token_embd rows cut to the tokenizer's size (Gemma 3)
  bool no_space_prefix = false;       // writes tokenizer.ggml.add_space_prefix = false (Gemma)
  bool tied_by_default = false;       // tie_word_embeddings when config.json omits it (Gemma)
  // Appends the hyper-parameter keys the converter writes for this family,
  // in its order; vocab_size is the tokenizer's (or config's) size.
  void (*add_hparams)(const HfConfig& cfg, uint32_t file_type, int64_t vocab_size, GgufMetadata* md) = nullptr;
  // The generated tensors, in the converter's order; an error string when
  // config.json's values cannot make them (empty: fine).
  std::string (*generated)(const HfConfig& cfg, std::vector<GeneratedTensor>* out) = nullptr;

  // Engine. The Gemma block: embeddings scaled by sqrt(n_embd), GELU-tanh
  // gated FFN, post-attention and post-FFN norms, queries scaled by
  // 1/sqrt(head_dim) (1/sqrt(n_embd/n_head) on the 27B shapes), optional
  // soft-capping of the attention scores and of the final logits.
  bool gemma_block = false;
  int64_t gemma_27b_layers = 0;  // block_count of the 27B shape (its query scale differs)
  // Sliding-window layers, llama.cpp's pattern: layer il is local when
  // il % swa_period < swa_period - 1 (0: no sliding window).
  int swa_period = 0;
  // Their rope base when the GGUF has no rope.freq_base_swa; 0: the global base.
  float swa_rope_base = 0.0f;
  bool swa_rope_unscaled = false;  // local layers ignore rope scaling (Gemma 3)
  // Queries scaled by 1/sqrt(head_dim) after RoPE instead of the scores
  // (Phi-3's graph; the Gemma block does it with its own factor).
  bool prescale_q = false;
};

// The spec of a config.json model_type or of a GGUF general.architecture;
// null when qforge does not know it.
const ArchSpec* ArchOfModelType(const std::string& model_type);
const ArchSpec* ArchOfGguf(const std::string& gguf_arch);
// "llama, mistral, qwen2 or qwen3": for error messages.
std::string KnownModelTypes();
std::string KnownGgufArchitectures();

}  // namespace qforge
