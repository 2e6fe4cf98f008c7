// Text generation with the KV cache: greedy at temperature 0, otherwise
// sampling from the softmax at temperature T with a seeded generator.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/llama_engine.h"
#include "tokenizer/tokenizer.h"

namespace qforge {

struct GenerateOptions {
  int n_predict = 64;
  float temperature = 0.0f;
  uint64_t seed = 0;
  std::function<void(const std::string& piece)> on_piece;  // streamed as tokens come
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (prompt excluded)
  std::string text;             // their text
  double seconds = 0;
};

Result<GenerateResult> Generate(LlamaEngine& engine, const Tokenizer& tok, const std::string& prompt,
                                const GenerateOptions& opts);

}  // namespace qforge
