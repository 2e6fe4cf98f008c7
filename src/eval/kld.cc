#include "eval/kld.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "numeric/rounding.h"
#include "io/mapped_file.h"
#include "io/output_file.h"

namespace qforge {
namespace {

// One base record from the logits of a position (spec 6.1).
void EncodeRecord(const float* l, int64_t V, uint16_t* rec) {
  float max_l = l[0], min_l = l[0];
  for (int64_t i = 1; i < V; ++i) {
    max_l = std::max(max_l, l[i]);
    min_l = std::min(min_l, l[i]);
  }
  min_l = std::max(min_l, max_l - 16.0f);
  double sum_exp = 0.0;
  for (int64_t i = 0; i < V; ++i) sum_exp += std::exp(l[i] - max_l);
  const float lse = static_cast<float>(std::log(sum_exp));
  const float min_log_prob = min_l - max_l - lse;
  const float scale = (max_l - min_l) / 65535.0f;
  std::memcpy(rec, &scale, 4);
  std::memcpy(rec + 2, &min_log_prob, 4);
  uint16_t* q = rec + 4;
  if (scale != 0.0f) {
    const float inv = 1.0f / scale;
    for (int64_t i = 0; i < V; ++i) q[i] = l[i] > min_l ? static_cast<uint16_t>(NearestInt(inv * (l[i] - min_l))) : 0;
  } else {
    for (int64_t i = 0; i < V; ++i) q[i] = 0;
  }
}

double Percentile(const std::vector<float>& v, float f) {
  if (v.empty()) return 0;
  if (f <= 0.0f) return v.front();
  if (f >= 1.0f) return v.back();
  const float pos = f * static_cast<float>(v.size() - 1);
  const size_t k = static_cast<size_t>(std::floor(pos));
  const float frac = pos - static_cast<float>(k);
  return (1.0f - frac) * v[k] + frac * v[std::min(k + 1, v.size() - 1)];
}

}  // namespace

Result<KldBase> ComputeKldBase(LlamaEngine& engine, const std::vector<int32_t>& tokens, const PerplexityOptions& opts,
                               PerplexityResult* base_ppl) {
  const int64_t n_ctx = opts.n_ctx;
  int64_t n_chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (opts.max_chunks >= 0) n_chunks = std::min(n_chunks, opts.max_chunks);
  if (n_chunks < 1) {
    return Status::Error("--text: the text has " + std::to_string(tokens.size()) + " tokens, fewer than one chunk of " +
                         std::to_string(n_ctx));
  }
  KldBase b;
  b.n_ctx = static_cast<int32_t>(n_ctx);
  b.n_vocab = static_cast<int32_t>(engine.hparams().n_vocab);
  b.n_chunk = static_cast<int32_t>(n_chunks);
  b.tokens.assign(tokens.begin(), tokens.begin() + n_chunks * n_ctx);
  const int64_t first = n_ctx / 2;
  engine.SetContextLength(n_ctx);  // as llama-perplexity -c
  const size_t words = b.RecordWords();
  b.records.assign(static_cast<size_t>(n_chunks) * b.PredictionsPerChunk() * words, 0);
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  std::vector<float> logits;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> chunk(b.tokens.begin() + c * n_ctx, b.tokens.begin() + (c + 1) * n_ctx);
    if (opts.bos >= 0) chunk[0] = opts.bos;
    QF_RETURN_IF_ERROR(engine.Forward(chunk, first, &logits));
    for (int64_t p = first; p < n_ctx - 1; ++p) {
      const float* l = logits.data() + (p - first) * b.n_vocab;
      uint16_t* rec = b.records.data() + (static_cast<size_t>(c) * b.PredictionsPerChunk() + static_cast<size_t>(p - first)) * words;
      EncodeRecord(l, b.n_vocab, rec);
      float mx = l[0];
      for (int64_t i = 1; i < b.n_vocab; ++i) mx = std::max(mx, l[i]);
      double se = 0;
      for (int64_t i = 0; i < b.n_vocab; ++i) se += std::exp(l[i] - mx);
      const double v = -(static_cast<double>(l[chunk[static_cast<size_t>(p + 1)]] - mx) - std::log(se));
      nll += v;
      nll2 += v * v;
      ++count;
    }
    if (opts.on_chunk) opts.on_chunk(c + 1, n_chunks, std::exp(nll / static_cast<double>(count)));
  }
  if (base_ppl) {
    double mean, unc;
    MeanAndUncertainty(nll, nll2, count, &mean, &unc);
    base_ppl->ppl = std::exp(mean);
    base_ppl->ppl_stderr = unc * base_ppl->ppl;
    base_ppl->n_chunks = n_chunks;
    base_ppl->n_scored = count;
    base_ppl->n_evaluated = n_chunks * n_ctx;
    base_ppl->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return b;
}

Status WriteKldBase(const KldBase& b, const std::string& path) {
  QF_ASSIGN_OR_RETURN(auto out, OutputFile::Create(path));
  QF_RETURN_IF_ERROR(out->Write("_logits_", 8));
  QF_RETURN_IF_ERROR(out->Write(&b.n_ctx, 4));
  QF_RETURN_IF_ERROR(out->Write(&b.n_vocab, 4));
  QF_RETURN_IF_ERROR(out->Write(&b.n_chunk, 4));
  QF_RETURN_IF_ERROR(out->Write(b.tokens.data(), b.tokens.size() * 4));
  QF_RETURN_IF_ERROR(out->Write(b.records.data(), b.records.size() * 2));
  return out->Commit();
}

Result<KldBase> ReadKldBase(const std::string& path) {
  QF_ASSIGN_OR_RETURN(auto f, MappedFile::Open(path));
  if (f->size() < 20 || std::memcmp(f->data(), "_logits_", 8) != 0) {
    return Status::Error(path + ": magic: expected '_logits_' (a llama.cpp KL-divergence base file)");
  }
  KldBase b;
  std::memcpy(&b.n_ctx, f->data() + 8, 4);
  std::memcpy(&b.n_vocab, f->data() + 12, 4);
  std::memcpy(&b.n_chunk, f->data() + 16, 4);
  if (b.n_ctx < 4 || b.n_ctx > (1 << 24) || b.n_vocab < 1 || b.n_vocab > (1 << 24) || b.n_chunk < 1 ||
      b.n_chunk > (1 << 24)) {
    return Status::Error(path + ": header: n_ctx " + std::to_string(b.n_ctx) + ", n_vocab " + std::to_string(b.n_vocab) +
                         ", n_chunk " + std::to_string(b.n_chunk) + " are not plausible");
  }
  const uint64_t n_tokens = static_cast<uint64_t>(b.n_chunk) * static_cast<uint64_t>(b.n_ctx);
  const uint64_t n_words = static_cast<uint64_t>(b.n_chunk) * b.PredictionsPerChunk() * b.RecordWords();
  const uint64_t expected = 20 + 4 * n_tokens + 2 * n_words;
  if (f->size() != expected) {
    return Status::Error(path + ": size: " + std::to_string(f->size()) + " bytes, expected " + std::to_string(expected) +
                         " for " + std::to_string(b.n_chunk) + " chunks of " + std::to_string(b.n_ctx) +
                         " tokens over a vocabulary of " + std::to_string(b.n_vocab));
  }
  b.tokens.resize(n_tokens);
  std::memcpy(b.tokens.data(), f->data() + 20, 4 * n_tokens);
  for (int32_t t : b.tokens) {
    if (t < 0 || t >= b.n_vocab) {
      return Status::Error(path + ": tokens: id " + std::to_string(t) + " is outside the vocabulary of " +
                           std::to_string(b.n_vocab));
    }
  }
  b.records.resize(n_words);
  std::memcpy(b.records.data(), f->data() + 20 + 4 * n_tokens, 2 * n_words);
  return b;
}

namespace {

// One predicted token compared with the base's stored log-probabilities.
struct TokenComparison {
  float nll = 0, nll_base = 0;
  double kld = 0;
  bool same_top = false;
};

// l: the model's V logits; rec: the base's record (scale, min log-prob,
// then V 16-bit levels); tok: the token that followed.
TokenComparison CompareToken(const float* l, int64_t V, const uint16_t* rec, int32_t tok) {
  float scale, min_log_prob;
  std::memcpy(&scale, rec, 4);
  std::memcpy(&min_log_prob, rec + 2, 4);
  const uint16_t* q = rec + 4;
  float max_l = l[0];
  int64_t imax = 0;
  for (int64_t i = 1; i < V; ++i) {
    if (l[i] > max_l) {
      max_l = l[i];
      imax = i;
    }
  }
  double sum_exp = 0;
  for (int64_t i = 0; i < V; ++i) sum_exp += std::exp(l[i] - max_l);
  const float lse = static_cast<float>(std::log(sum_exp));
  TokenComparison r;
  r.nll = max_l + lse - l[tok];
  r.nll_base = -(scale * q[tok] + min_log_prob);
  int64_t imax_base = 0;
  float best = scale * q[0] + min_log_prob;
  for (int64_t i = 0; i < V; ++i) {
    const float lp = scale * q[i] + min_log_prob;
    if (lp > best) {
      best = lp;
      imax_base = i;
    }
    if (lp > -16.0f) r.kld += std::exp(lp) * (lp - (l[i] - (max_l + lse)));
  }
  r.same_top = imax == imax_base;
  return r;
}

// Sums over every compared token, and the statistics llama-perplexity prints.
class KldAccumulator {
 public:
  void Add(const TokenComparison& t) {
    const float pq = std::exp(-t.nll), pb = std::exp(-t.nll_base);
    const float dp = pq - pb;
    s_nll_ += t.nll;
    s_nll2_ += static_cast<double>(t.nll) * t.nll;
    s_nb_ += t.nll_base;
    s_nb2_ += static_cast<double>(t.nll_base) * t.nll_base;
    s_kld_ += t.kld;
    s_kld2_ += t.kld * t.kld;
    s_dp2_ += static_cast<double>(dp) * dp;
    same_top_ += t.same_top;
    klds_.push_back(static_cast<float>(t.kld));
    ++n_;
  }

  KldStats Finish() {
    KldStats s;
    s.n = n_;
    double mean, unc;
    MeanAndUncertainty(s_nll_, s_nll2_, n_, &mean, &unc);
    s.ppl = std::exp(mean);
    s.ppl_stderr = unc * s.ppl;
    double mean_b, unc_b;
    MeanAndUncertainty(s_nb_, s_nb2_, n_, &mean_b, &unc_b);
    s.ppl_base = std::exp(mean_b);
    s.ppl_ratio = std::exp(mean - mean_b);
    MeanAndUncertainty(s_kld_, s_kld2_, n_, &s.kld_mean, &s.kld_stderr);
    std::sort(klds_.begin(), klds_.end());
    s.kld_max = klds_.empty() ? 0 : klds_.back();
    s.kld_median = klds_.empty() ? 0
                   : klds_.size() % 2 == 0 ? 0.5 * (klds_[klds_.size() / 2] + klds_[klds_.size() / 2 - 1])
                                           : klds_[klds_.size() / 2];
    s.kld_p90 = Percentile(klds_, 0.900f);
    s.kld_p99 = Percentile(klds_, 0.990f);
    s.kld_p999 = Percentile(klds_, 0.999f);
    s.top1 = n_ ? static_cast<double>(same_top_) / static_cast<double>(n_) : 0;
    s.rms_dp = n_ ? std::sqrt(s_dp2_ / static_cast<double>(n_)) : 0;
    return s;
  }

 private:
  double s_nll_ = 0, s_nll2_ = 0, s_nb_ = 0, s_nb2_ = 0, s_kld_ = 0, s_kld2_ = 0, s_dp2_ = 0;
  int64_t n_ = 0, same_top_ = 0;
  std::vector<float> klds_;
};

}  // namespace

Result<KldStats> EvaluateKld(LlamaEngine& engine, const KldBase& b, int32_t bos,
                             const std::function<void(int64_t, int64_t)>& on_chunk) {
  if (engine.hparams().n_vocab != b.n_vocab) {
    return Status::Error("base logits: vocabulary of " + std::to_string(b.n_vocab) + " tokens, the model has " +
                         std::to_string(engine.hparams().n_vocab));
  }
  const int64_t n_ctx = b.n_ctx, V = b.n_vocab, first = n_ctx / 2;
  engine.SetContextLength(n_ctx);  // the base file's -c
  const size_t words = b.RecordWords();
  KldAccumulator acc;
  std::vector<float> logits;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t c = 0; c < b.n_chunk; ++c) {
    std::vector<int32_t> chunk(b.tokens.begin() + c * n_ctx, b.tokens.begin() + (c + 1) * n_ctx);
    if (bos >= 0) chunk[0] = bos;
    QF_RETURN_IF_ERROR(engine.Forward(chunk, first, &logits));
    for (int64_t p = first; p < n_ctx - 1; ++p) {
      const uint16_t* rec = b.records.data() + (static_cast<size_t>(c) * b.PredictionsPerChunk() + static_cast<size_t>(p - first)) * words;
      acc.Add(CompareToken(logits.data() + (p - first) * V, V, rec, chunk[static_cast<size_t>(p + 1)]));
    }
    if (on_chunk) on_chunk(c + 1, b.n_chunk);
  }
  KldStats s = acc.Finish();
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return s;
}

}  // namespace qforge
