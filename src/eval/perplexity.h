// Perplexity with llama-perplexity's method: the text is cut into
// non-overlapping chunks of n_ctx tokens, each evaluated from an empty cache
// with BOS as its first token, and only the second half of each chunk
// (positions n_ctx/2 .. n_ctx-2 predicting the next token) is scored.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/llama_engine.h"
#include "qforge/status.h"

namespace qforge {

struct PerplexityOptions {
  int64_t n_ctx = 512;
  int64_t max_chunks = -1;  // -1: as many as the text holds
  int32_t bos = -1;         // replaces each chunk's first token when >= 0
  std::function<void(int64_t chunk, int64_t n_chunks, double ppl_so_far)> on_chunk;
};

struct PerplexityResult {
  double ppl = 0, ppl_stderr = 0;
  int64_t n_chunks = 0, n_scored = 0, n_evaluated = 0;
  double seconds = 0;
  double tokens_per_second() const { return seconds > 0 ? static_cast<double>(n_evaluated) / seconds : 0; }
};

// Mean and its standard error from sums, as llama.cpp reports them.
void MeanAndUncertainty(double sum, double sum2, int64_t n, double* mean, double* unc);

Result<PerplexityResult> RunPerplexity(LlamaEngine& engine, const std::vector<int32_t>& tokens,
                                       const PerplexityOptions& opts);

}  // namespace qforge
