#include "engine/generate.h"

#include <chrono>
#include <cmath>
#include <random>

namespace qforge {

Result<GenerateResult> Generate(LlamaEngine& engine, const Tokenizer& tok, const std::string& prompt,
                                const GenerateOptions& opts) {
  GenerateResult r;
  const auto t0 = std::chrono::steady_clock::now();
  KvCache cache;
  std::vector<float> logits;
  std::vector<int32_t> next = tok.Encode(prompt, true);
  if (next.empty()) return Status::Error("generate: the prompt produced no tokens");
  std::mt19937_64 rng(opts.seed);
  const int64_t V = engine.hparams().n_vocab;
  for (int i = 0; i < opts.n_predict; ++i) {
    QF_RETURN_IF_ERROR(engine.Decode(next, &cache, &logits));
    int32_t id = 0;
    if (opts.temperature <= 0.0f) {
      for (int64_t j = 1; j < V; ++j) {
        if (logits[static_cast<size_t>(j)] > logits[static_cast<size_t>(id)]) id = static_cast<int32_t>(j);
      }
    } else {
      float mx = logits[0];
      for (int64_t j = 1; j < V; ++j) mx = std::max(mx, logits[static_cast<size_t>(j)]);
      std::vector<double> p(static_cast<size_t>(V));
      for (int64_t j = 0; j < V; ++j) p[static_cast<size_t>(j)] = std::exp((logits[static_cast<size_t>(j)] - mx) / opts.temperature);
      std::discrete_distribution<int32_t> dist(p.begin(), p.end());
      id = dist(rng);
    }
    if (id == tok.eos_id()) break;
    r.tokens.push_back(id);
    const std::string piece = tok.TokenPiece(id);
    r.text += piece;
    if (opts.on_piece) opts.on_piece(piece);
    next = {id};
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace qforge
