// Builds small Hugging Face folders (config.json, safetensors, tokenizer) of
// each supported architecture, so conversion can be tested where no real
// checkpoint is at hand.
#pragma once

#include <cstdint>
#include <string>

namespace qforge::test {

struct SyntheticSpec {
  std::string model_type = "llama";  // llama, mistral, qwen2, qwen3
  int layers = 2, hidden = 64, ffn = 128, heads = 4, kv_heads = 2, vocab = 8;
  bool tied = false;          // no lm_head.weight
  int config_tie = -1;        // tie_word_embeddings written: -1 as `tied`, else 0/1 (mismatch tests)
  bool lm_head_is_embedding = false;  // an untied lm_head.weight equal to the embedding
  bool biases = false;        // q/k/v biases (qwen2)
  bool qk_norm = false;       // q_norm/k_norm (qwen3)
  bool bpe_tokenizer = true;  // byte-level tokenizer.json (else copy the house tokenizer.model)
  bool numbered_rows = false; // every weight row r holds the value r (to trace permutations)
  bool sharded = false;
};

// Writes the folder; returns an empty string or an error message.
std::string WriteSyntheticModel(const std::string& dir, const SyntheticSpec& spec);

}  // namespace qforge::test
