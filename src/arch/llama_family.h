// Facts of the LLaMA-family architectures qforge converts (llama, mistral,
// qwen2, qwen3): Hugging Face -> GGUF tensor names, which tensors llama.cpp's
// converter permutes, and the hyper-parameter keys it records.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "io/hf_config.h"
#include "qforge/status.h"

namespace qforge {

// "llama" for llama and mistral, else the model_type itself.
std::string GgufArchitecture(const std::string& model_type);

// Whether Q/K rows are permuted from rotate-half to interleaved pairs.
bool PermutesQK(const std::string& model_type);

struct MappedName {
  std::string gguf_name;
  int permute_heads = 0;  // > 0: rows permuted with this many heads
};

// Maps a Hugging Face tensor name. Returns nullopt for tensors the converter
// drops (rotary inv_freq caches); an error for names it cannot place.
Result<std::optional<MappedName>> MapHfTensorName(const HfConfig& cfg, const std::string& hf_name);

// Model-card keys derived from the folder name, as the converter derives them:
// "house-14m" -> name "House 14m", basename "house", size label "14M".
struct ModelCard {
  std::string name, basename, size_label, finetune, version;
};
ModelCard ModelCardFromFolder(const std::string& folder, int64_t n_params);

// Appends the architecture keys in the converter's order. file_type is
// written where the converter writes it.
void AddHyperParameters(const HfConfig& cfg, uint32_t file_type, int64_t vocab_size, GgufMetadata* md);

// The linear weights of a decoder layer (short GGUF names), as sets that
// share one input, in the order their inputs become final: q,k,v -> o ->
// gate,up -> down. The first name of each set is the one whose input the
// engine reports first.
const std::vector<std::vector<std::string>>& LayerLinearSets();

// The seven linear weights of decoder layer l, in full GGUF names.
std::vector<std::string> LayerLinears(int64_t l);

// rope_freqs for "llama3" RoPE scaling (one divisor per frequency), or empty.
std::vector<float> Llama3RopeFactors(const HfConfig& cfg);

}  // namespace qforge
