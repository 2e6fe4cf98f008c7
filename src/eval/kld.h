// KL divergence of a model against a base model, with llama-perplexity's
// definitions (spec 6): the base's log-probabilities are stored per scored
// position in llama.cpp's 16-bit "_logits_" file, so a base computed by
// qforge or by `llama-perplexity --kl-divergence-base` serves either tool.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/llama_engine.h"
#include "eval/perplexity.h"
#include "qforge/status.h"

namespace qforge {

struct KldBase {
  int32_t n_ctx = 0, n_vocab = 0, n_chunk = 0;
  std::vector<int32_t> tokens;   // n_chunk * n_ctx, before BOS substitution
  std::vector<uint16_t> records; // n_chunk * (n_ctx - 1 - n_ctx/2) records of RecordWords() words
  size_t RecordWords() const { return 2 * ((static_cast<size_t>(n_vocab) + 1) / 2) + 4; }
  size_t PredictionsPerChunk() const { return static_cast<size_t>(n_ctx - 1 - n_ctx / 2); }
};

// Runs the base model over the chunks and encodes its log-probabilities.
// Also returns the base's perplexity.
Result<KldBase> ComputeKldBase(LlamaEngine& engine, const std::vector<int32_t>& tokens, const PerplexityOptions& opts,
                               PerplexityResult* base_ppl);
Status WriteKldBase(const KldBase& base, const std::string& path);
// Checks magic, sizes and that token ids fit the vocabulary.
Result<KldBase> ReadKldBase(const std::string& path);

struct KldStats {
  double ppl = 0, ppl_stderr = 0, ppl_base = 0, ppl_ratio = 0;
  double kld_mean = 0, kld_stderr = 0, kld_median = 0, kld_p90 = 0, kld_p99 = 0, kld_p999 = 0, kld_max = 0;
  double top1 = 0, rms_dp = 0;
  int64_t n = 0;
  double seconds = 0;
};

Result<KldStats> EvaluateKld(LlamaEngine& engine, const KldBase& base, int32_t bos,
                             const std::function<void(int64_t, int64_t)>& on_chunk = nullptr);

}  // namespace qforge
