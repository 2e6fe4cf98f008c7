#include "eval/perplexity.h"

#include <chrono>
#include <cmath>

#include "base/parallel.h"

namespace qforge {

void MeanAndUncertainty(double sum, double sum2, int64_t n, double* mean, double* unc) {
  if (n < 1) {
    *mean = *unc = 0;
    return;
  }
  *mean = sum / static_cast<double>(n);
  const double var = sum2 / static_cast<double>(n) - *mean * *mean;
  *unc = var > 0 && n > 10 ? std::sqrt(var / static_cast<double>(n - 1)) : 0.0;
}

Result<PerplexityResult> RunPerplexity(LlamaEngine& engine, const std::vector<int32_t>& tokens,
                                       const PerplexityOptions& opts) {
  const int64_t n_ctx = opts.n_ctx;
  if (n_ctx < 4) return Status::Error("--ctx: " + std::to_string(n_ctx) + " is too small (need at least 4 tokens)");
  int64_t n_chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (opts.max_chunks >= 0) n_chunks = std::min(n_chunks, opts.max_chunks);
  if (n_chunks < 1) {
    return Status::Error("--text: the text has " + std::to_string(tokens.size()) + " tokens, fewer than one chunk of " +
                         std::to_string(n_ctx) + " (use a longer text or a smaller --ctx)");
  }
  const int64_t first = n_ctx / 2;
  engine.SetContextLength(n_ctx);  // as llama-perplexity -c
  const int64_t V = engine.hparams().n_vocab;
  PerplexityResult r;
  r.n_chunks = n_chunks;
  double nll = 0, nll2 = 0;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<float> logits;
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
    if (opts.bos >= 0) chunk[0] = opts.bos;
    QF_RETURN_IF_ERROR(engine.Forward(chunk, first, &logits));
    // Each position's negative log-likelihood on the engine's threads, then
    // summed in position order (the same sum whatever the thread count).
    std::vector<double> nlls(static_cast<size_t>(n_ctx - 1 - first));
    ParallelFor(n_ctx - 1 - first, engine.threads(), [&](int64_t b, int64_t e) {
      for (int64_t p = first + b; p < first + e; ++p) {
        const float* l = logits.data() + (p - first) * V;
        float mx = l[0];
        for (int64_t i = 1; i < V; ++i) mx = std::max(mx, l[i]);
        double sum_exp = 0.0;
        for (int64_t i = 0; i < V; ++i) sum_exp += std::exp(l[i] - mx);
        const int32_t tok = tokens[static_cast<size_t>(c * n_ctx + p + 1)];
        nlls[static_cast<size_t>(p - first)] = -(static_cast<double>(l[tok] - mx) - std::log(sum_exp));
      }
    });
    for (double v : nlls) {
      nll += v;
      nll2 += v * v;
      ++r.n_scored;
    }
    r.n_evaluated += n_ctx;
    if (opts.on_chunk) opts.on_chunk(c + 1, n_chunks, std::exp(nll / static_cast<double>(r.n_scored)));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double mean = 0, unc = 0;
  MeanAndUncertainty(nll, nll2, r.n_scored, &mean, &unc);
  r.ppl = std::exp(mean);
  r.ppl_stderr = unc * r.ppl;
  return r;
}

}  // namespace qforge
