// Facts of the LLaMA-family architectures qforge converts (llama, mistral,
// qwen2, qwen3): Hugging Face -> GGUF tensor names, which tensors llama.cpp's
// converter permutes, and the hyper-parameter keys it records.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "arch/arch_spec.h"
#include "arch/hf_config.h"
#include "qforge/status.h"

namespace qforge {

// The GGUF architecture of a model_type ("llama" for llama and mistral), or
// the model_type itself when qforge does not know it.
std::string GgufArchitecture(const std::string& model_type);

// Whether Q/K rows are permuted from rotate-half to interleaved pairs.
bool PermutesQK(const std::string& model_type);

struct MappedName {
  std::string gguf_name;
  int permute_heads = 0;  // > 0: rows permuted with this many heads
  // One expert's part of a stacked tensor (gguf_name is the stack's:
  // "blk.3.ffn_up_exps.weight"); -1 for an ordinary tensor.
  int expert = -1;
};

// Maps a Hugging Face tensor name. Returns nullopt for tensors the converter
// drops (rotary inv_freq caches); an error for names it cannot place.
Result<std::optional<MappedName>> MapHfTensorName(const HfConfig& cfg, const std::string& hf_name);

// Model-card keys derived from the folder name, as the converter derives them:
// "house-14m" -> name "House 14m", basename "house", size label "14M".
struct ModelCard {
  std::string name, basename, size_label, finetune, version;
};
// For a mixture of experts (expert_count > 0) the label is the converter's
// "<experts>x<size>", size = n_params counting one expert's share of each
// stacked tensor: Mixtral 8x7B.
ModelCard ModelCardFromFolder(const std::string& folder, int64_t n_params, int64_t expert_count = 0);

// Appends the architecture keys in the converter's order. file_type is
// written where the converter writes it.
void AddHyperParameters(const HfConfig& cfg, uint32_t file_type, int64_t vocab_size, GgufMetadata* md);

// The block layout of a GGUF architecture (the LLaMA family's when
// unknown); experts: the model has expert_count > 0 (Mixtral is "llama"
// with experts).
const BlockLayout& BlockOfArch(const std::string& gguf_arch, bool experts);

// The linear weights of decoder layer l, in full GGUF names, set by set.
std::vector<std::string> LayerLinears(const BlockLayout& block, int64_t l);

// Whether a GGUF name ("blk.3.ffn_up.weight") is one of a layer's linears.
bool IsLayerLinear(const BlockLayout& block, const std::string& gguf_name);

// rope_freqs for "llama3" RoPE scaling (one divisor per frequency), or empty.
std::vector<float> Llama3RopeFactors(const HfConfig& cfg);

}  // namespace qforge
