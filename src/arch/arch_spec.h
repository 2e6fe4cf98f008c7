// What an architecture is, in one place: its names (Hugging Face <-> GGUF,
// with the row transform the converter applies), the engine's variant
// flags, and the block layout every layer-by-layer method reads — which
// linears a decoder layer has, which share an input, and which operation
// precedes each group (what AWQ folds its scales into). Adding a family is
// one file in src/arch/ defining an ArchSpec.
#pragma once

#include <string>
#include <vector>

namespace qforge {

// A tensor of a decoder layer: HF name relative to "model.layers.N." (no
// ".weight"/".bias") and its GGUF short name (relative to "blk.N.").
struct LayerTensorName {
  const char* hf;
  const char* gguf;
  // Rows the converter permutes from rotate-half to interleaved pairs, over
  // the query heads (kQ) or the key/value heads (kK), on families that do.
  enum Permute { kNone, kQ, kK } permute = kNone;
};

// A group of linears reading one input and the operation producing it.
struct ScalingGroup {
  std::string prev;               // GGUF short name of the producer: a norm weight or a linear
  bool prev_is_norm = false;
  std::vector<std::string> linears;  // GGUF short names of the readers; the first sees the input first
  // What maps the producer's output to the readers' outputs, for AWQ's
  // search loss: the attention block, the MLP block, or the single linear.
  enum Module { kAttention, kMlp, kLinear } module = kLinear;
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
  std::vector<std::string> expert_linears;
  std::string router;
};

struct ArchSpec {
  std::string gguf_arch;                 // general.architecture: "llama", "qwen2", "qwen3"
  std::vector<std::string> model_types;  // config.json model_type values that map here
  bool permutes_qk = false;              // converter interleaves Q/K rows (llama, mistral)
  bool rope_neox = false;                // engine: RoPE rotates halves (no permutation)
  std::vector<std::pair<const char*, const char*>> global_names;  // HF -> GGUF, outside the layers
  std::vector<LayerTensorName> layer_names;
  BlockLayout block;
};

// The spec of a config.json model_type or of a GGUF general.architecture;
// null when qforge does not know it.
const ArchSpec* ArchOfModelType(const std::string& model_type);
const ArchSpec* ArchOfGguf(const std::string& gguf_arch);
// "llama, mistral, qwen2 or qwen3": for error messages.
std::string KnownModelTypes();
std::string KnownGgufArchitectures();

}  // namespace qforge
