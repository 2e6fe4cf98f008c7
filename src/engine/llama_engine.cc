#include "engine/llama_engine.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "arch/arch_spec.h"
#include "base/parallel.h"
#include "codecs/simd_kernels.h"
#include "codecs/scale_search.h"
#include "engine/matmul.h"
#include "numeric/gemm.h"
#include "numeric/half.h"


namespace qforge {
namespace {

const GgufValue* Key(const Model& m, const std::string& suffix) { return m.metadata.Find(m.architecture + "." + suffix); }

float FloatKey(const Model& m, const std::string& suffix, float def) {
  const GgufValue* v = Key(m, suffix);
  return v && (v->is_float() || v->is_integer()) ? static_cast<float>(v->AsF64()) : def;
}

void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* y) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

// The rotation of every pair at position pos, as ggml's rope computes it:
// pair i turns by pos * base^(-2i/n_rot), divided by freq_factors[i] when
// given (llama3 and LongRoPE scaling), times freq_scale (linear scaling);
// mscale multiplies the rotated dimensions (LongRoPE's attention factor).
// cs gets (cos, sin) * mscale for each of the n_rot / 2 pairs; every head at
// that position uses the same table.
void RopeTable(int64_t n_rot, int64_t pos, float base, float freq_scale, const float* freq_factors, float mscale,
               float* cs) {
  const float theta_scale = std::pow(base, -2.0f / static_cast<float>(n_rot));
  float theta_extrap = static_cast<float>(pos);
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const float theta = freq_scale * (freq_factors ? theta_extrap / freq_factors[i] : theta_extrap);
    cs[2 * i] = std::cos(theta) * mscale;
    cs[2 * i + 1] = std::sin(theta) * mscale;
    theta_extrap *= theta_scale;
  }
}

// Rotates one head's vector in place by a RopeTable: neox rotates the
// halves' pairs (i, i + n_rot/2), otherwise adjacent pairs (2i, 2i + 1).
void Rope(float* v, int64_t n_rot, bool neox, const float* cs) {
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
    const int64_t a = neox ? i : 2 * i;
    const int64_t b = neox ? i + n_rot / 2 : 2 * i + 1;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
  }
}

// x <- fp16(x), through the SIMD encoder and decoder.
void RoundThroughF16(float* x, int64_t n, std::vector<uint16_t>* tmp) {
  tmp->resize(static_cast<size_t>(n));
  simd::EncodeF16(x, tmp->data(), n);
  simd::DecodeF16(tmp->data(), x, n);
}

// GELU with the tanh approximation, as ggml computes it in F32.
float GeluTanh(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f, kCoefA = 0.044715f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCoefA * x * x)));
}

// ggml's CPU GELU (GGML_GELU_FP16, its default): the input rounded to F16
// indexes a table of F16-rounded GELU values; inputs <= -10 give 0 and
// inputs >= 10 pass through.
float GeluLikeGgml(float x) {
  static const std::vector<uint16_t> table = [] {
    std::vector<uint16_t> t(65536);
    for (uint32_t i = 0; i < 65536; ++i) t[i] = FloatToHalf(GeluTanh(HalfToFloat(static_cast<uint16_t>(i))));
    return t;
  }();
  if (x <= -10.0f) return 0.0f;
  if (x >= 10.0f) return x;
  return HalfToFloat(table[FloatToHalf(x)]);
}

// cap * tanh(x / cap), as ggml's scale, tanh, scale.
void SoftCap(float* x, int64_t n, float cap) {
  const float inv = 1.0f / cap;
  for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i] * inv) * cap;
}

// rope_freqs.weight: one divisor per rotated pair (n_rot / 2 entries, as
// CheckTensorShapes made sure), finite and positive.
Result<std::vector<float>> ReadRopeFactors(const Model& model, const ModelTensor& t, int64_t n_rot) {
  const std::string where = model.path + ": tensor '" + t.name + "': ";
  if (t.n_elements() != n_rot / 2) {
    return Status::Error(where + std::to_string(t.n_elements()) + " entries (expected " + std::to_string(n_rot / 2) +
                         ", one factor per rotated pair)");
  }
  std::vector<float> f(static_cast<size_t>(n_rot / 2));
  QF_RETURN_IF_ERROR(ReadRowsF32(t, 0, 1, f.data()));
  for (size_t i = 0; i < f.size(); ++i) {
    if (!std::isfinite(f[i]) || f[i] <= 0.0f) {
      return Status::Error(where + "entry " + std::to_string(i) + " is " + std::to_string(f[i]) +
                           " (expected a finite positive factor)");
    }
  }
  return f;
}

}  // namespace

Result<std::unique_ptr<LlamaEngine>> LlamaEngine::Create(const Model& model, int threads, uint64_t weight_cache_bytes) {
  const std::string& a = model.architecture;
  const ArchSpec* spec = ArchOfGguf(a);
  if (spec == nullptr) {
    return Status::Error(model.path + ": general.architecture: '" + a + "' has no forward pass in qforge yet (expected " +
                         KnownGgufArchitectures() + ")");
  }
  LlamaHparams hp;
  hp.arch = a;
  hp.n_layer = model.ArchInt("block_count", 0);
  hp.n_embd = model.ArchInt("embedding_length", 0);
  hp.n_head = model.ArchInt("attention.head_count", 0);
  hp.n_head_kv = model.ArchInt("attention.head_count_kv", hp.n_head);
  hp.n_ff = model.ArchInt("feed_forward_length", 0);
  if (hp.n_layer <= 0 || hp.n_embd <= 0 || hp.n_head <= 0 || hp.n_head_kv <= 0 || hp.n_head % hp.n_head_kv != 0) {
    return Status::Error(model.path + ": metadata '" + a + ".block_count/embedding_length/attention.head_count*': "
                                      "missing or inconsistent hyper-parameters");
  }
  hp.head_dim = model.ArchInt("attention.key_length", hp.n_embd / hp.n_head);
  hp.n_rot = model.ArchInt("rope.dimension_count", hp.head_dim);
  hp.rms_eps = FloatKey(model, "attention.layer_norm_rms_epsilon", 1e-5f);
  hp.rope_base = FloatKey(model, "rope.freq_base", 10000.0f);
  if (const GgufValue* t = Key(model, "rope.scaling.type"); t && t->type() == GgufType::STRING && t->AsString() == "linear") {
    const float f = FloatKey(model, "rope.scaling.factor", 1.0f);
    if (f > 0.0f) hp.rope_freq_scale = 1.0f / f;
  }
  hp.rope_neox = spec->rope_neox;
  hp.rope_base_swa = hp.rope_base;
  hp.rope_freq_scale_swa = hp.rope_freq_scale;
  if (spec->gemma_block) {
    hp.gemma = true;
    hp.embed_scale = std::sqrt(static_cast<float>(hp.n_embd));
    hp.q_scale = 1.0f / std::sqrt(static_cast<float>(hp.n_layer == spec->gemma_27b_layers ? hp.n_embd / hp.n_head
                                                                                          : hp.head_dim));
    hp.attn_softcap = FloatKey(model, "attn_logit_softcapping", 0.0f);
    hp.final_softcap = FloatKey(model, "final_logit_softcapping", 0.0f);
  }
  if (spec->prescale_q) hp.q_scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
  hp.rope_attn_factor = FloatKey(model, "rope.scaling.attn_factor", 1.0f);
  hp.n_expert = model.ArchInt("expert_count", 0);
  hp.n_expert_used = model.ArchInt("expert_used_count", 0);
  hp.n_ctx_train = model.ArchInt("context_length", 0);
  hp.n_ctx_orig = model.ArchInt("rope.scaling.original_context_length", hp.n_ctx_train);
  if (spec->swa_period > 0) {
    hp.n_swa = model.ArchInt("attention.sliding_window", 0);
    hp.swa_period = spec->swa_period;
    if (spec->swa_rope_base > 0.0f) hp.rope_base_swa = spec->swa_rope_base;
    if (spec->swa_rope_unscaled) hp.rope_freq_scale_swa = 1.0f;
    hp.rope_base_swa = FloatKey(model, "rope.freq_base_swa", hp.rope_base_swa);
  }
  for (float v : {hp.rope_base, hp.rope_base_swa, hp.attn_softcap, hp.final_softcap, hp.rope_attn_factor}) {
    if (!std::isfinite(v) || v < 0.0f) {
      return Status::Error(model.path + ": metadata '" + a + ".rope.freq_base*/*softcapping': " + std::to_string(v) +
                           " (expected a finite, non-negative number)");
    }
  }
  if (hp.n_swa < 0) {
    return Status::Error(model.path + ": metadata '" + a + ".attention.sliding_window': " + std::to_string(hp.n_swa) +
                         " (expected >= 0)");
  }
  const ModelTensor* emb = model.Find("token_embd.weight");
  if (emb == nullptr || emb->ne.size() < 2 || emb->ne[0] != hp.n_embd) {
    return Status::Error(model.path + ": tensor 'token_embd.weight': missing or not [n_embd, n_vocab]");
  }
  hp.n_vocab = emb->ne[1];
  if (hp.n_rot <= 0 || hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0) {
    return Status::Error(model.path + ": metadata '" + a + ".rope.dimension_count': " + std::to_string(hp.n_rot) +
                         " (expected an even number of dimensions, at most the head size " + std::to_string(hp.head_dim) +
                         ")");
  }
  std::vector<float> rope_factors, rope_long, rope_short;
  if (const ModelTensor* rf = model.Find("rope_freqs.weight")) {
    QF_ASSIGN_OR_RETURN(rope_factors, ReadRopeFactors(model, *rf, hp.n_rot));
  }
  const ModelTensor* rl = model.Find("rope_factors_long.weight");
  const ModelTensor* rs = model.Find("rope_factors_short.weight");
  if ((rl == nullptr) != (rs == nullptr)) {
    return Status::Error(model.path + ": tensor 'rope_factors_" + (rl ? "short" : "long") +
                         ".weight': missing (LongRoPE needs both factor tables)");
  }
  if (rl != nullptr) {
    QF_ASSIGN_OR_RETURN(rope_long, ReadRopeFactors(model, *rl, hp.n_rot));
    QF_ASSIGN_OR_RETURN(rope_short, ReadRopeFactors(model, *rs, hp.n_rot));
  }
  UseSingleThreadedBlas();
  auto engine = std::unique_ptr<LlamaEngine>(new LlamaEngine(model, hp, std::max(1, threads)));
  engine->rope_factors_ = std::move(rope_factors);
  engine->expert_weights_norm_ = spec->expert_weights_norm;
  engine->rope_long_ = std::move(rope_long);
  engine->rope_short_ = std::move(rope_short);
  engine->SetContextLength(hp.n_ctx_train);
  engine->cache_weights_ = weight_cache_bytes > 0 && static_cast<uint64_t>(model.n_params()) * 4 <= weight_cache_bytes;
  return engine;
}

void LlamaEngine::SetContextLength(int64_t n_ctx) {
  n_ctx_ = n_ctx;
  if (rope_long_.empty()) return;
  // llama.cpp's choice: the long factors when the context per sequence
  // exceeds the original (pre-extension) context.
  rope_factors_ = n_ctx > hp_.n_ctx_orig ? rope_long_ : rope_short_;
}

Result<const std::vector<float>*> LlamaEngine::Weight(const std::string& name, std::vector<float>* scratch) const {
  if (auto it = overrides_.find(name); it != overrides_.end()) return it->second;
  if (cache_weights_) {
    auto it = cache_.find(name);
    if (it != cache_.end()) return &it->second;
  }
  const ModelTensor* t = Find(name);
  if (t == nullptr) return Status::Error(model_.path + ": tensor '" + name + "': missing");
  const int64_t r = t->ne.size() == 1 ? 1 : t->n_rows();
  const int64_t c = t->ne[0];
  std::vector<float>* out = cache_weights_ ? &cache_[name] : scratch;
  out->resize(static_cast<size_t>(r * c));
  if (t->ne.size() == 1 && t->permute_heads > 0) {
    QF_RETURN_IF_ERROR(ReadRowsF32(*t, 0, 1, out->data()));
  } else {
    std::mutex mu;
    Status first_error = Status::Ok();
    ParallelFor(r, threads_, [&](int64_t b, int64_t e) {
      Status s = ReadRowsF32(*t, b, e - b, out->data() + b * c);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = s;
      }
    });
    if (!first_error.ok()) {
      if (cache_weights_) cache_.erase(name);
      return first_error;
    }
  }
  return out;
}

Status LlamaEngine::Linear(const std::string& name, const float* x, int64_t T, int64_t K, float* y, int64_t N) {
  if (stopped_) return Status::Ok();  // past the stop point: no more inputs to report
  if (hook_) hook_(name, x, T, K);
  if (!stop_at_.empty() && name == stop_at_) {
    stopped_ = true;  // the caller wanted this input, not what follows
    return Status::Ok();
  }
  // A tied output matrix is the token embedding.
  const std::string stored = name == "output.weight" && !Find(name) ? "token_embd.weight" : name;
  const ModelTensor* t = Find(stored);
  const bool overridden = overrides_.count(stored) > 0;
  if (t == nullptr && !overridden) return Status::Error(model_.path + ": tensor '" + stored + "': missing");
  if (t != nullptr && (t->ne.empty() || t->ne[0] != K || (t->ne.size() == 1 ? 1 : t->n_rows()) != N)) {
    return Status::Error(model_.path + ": tensor '" + stored + "': shape [" + std::to_string(t->ne.empty() ? 0 : t->ne[0]) +
                         ", " + std::to_string(t->ne.size() == 1 ? 1 : t->n_rows()) + "] (expected [" +
                         std::to_string(K) + ", " + std::to_string(N) + "])");
  }
  if (overridden || (cache_weights_ && !(model_.source == ModelSource::kGguf && HasIntegerProduct(*t)))) {
    std::vector<float> scratch;
    QF_ASSIGN_OR_RETURN(const std::vector<float>* w, Weight(stored, &scratch));
    if (static_cast<int64_t>(w->size()) != N * K) {
      return Status::Error("internal: the weights of '" + stored + "' hold " + std::to_string(w->size()) +
                           " values, not " + std::to_string(N * K));
    }
    Product(t, x, T, K, y, N, w->data());
    return Status::Ok();
  }
  return MultiplyRows(*t, 0, N, x, T, K, y, threads_, model_.source == ModelSource::kGguf);
}

void LlamaEngine::Product(const ModelTensor* t, const float* x, int64_t T, int64_t K, float* y, int64_t N,
                          const float* w) {
  // HF sources are F32 to the engine (the converter's view), so only GGUF
  // weights carry a storage type whose arithmetic llama.cpp would use.
  if (t != nullptr && model_.source == ModelSource::kGguf && t->type != GgmlType::F32) {
    act_.assign(x, x + T * K);
    RoundActivationsLikeLlamaCpp(t->type, act_.data(), T, K);
    x = act_.data();
  }
  GemmNT(x, T, K, w, N, y, threads_);
}

Status LlamaEngine::ExpertProduct(const ModelTensor& t, int64_t e, const float* x, int64_t T, int64_t K, float* y,
                                  int64_t N) {
  const int64_t row0 = e * N;
  auto it = overrides_.find(t.name);
  if (it == overrides_.end()) return MultiplyRows(t, row0, N, x, T, K, y, threads_, model_.source == ModelSource::kGguf);
  const std::vector<float>& w = *it->second;
  const size_t begin = static_cast<size_t>(row0 * K), count = static_cast<size_t>(N * K);
  if (w.size() < begin + count) {
    return Status::Error("internal: the override of '" + t.name + "' holds " + std::to_string(w.size()) + " values, not " +
                         std::to_string(t.n_elements()));
  }
  Product(&t, x, T, K, y, N, w.data() + begin);
  return Status::Ok();
}

Status LlamaEngine::Moe(int64_t l, const float* h, int64_t T, float* out) {
  const int64_t E = hp_.n_embd;
  const std::string p = "blk." + std::to_string(l) + ".";
  const ModelTensor* gate_exps = Find(p + "ffn_gate_exps.weight");
  const ModelTensor* up_exps = Find(p + "ffn_up_exps.weight");
  const ModelTensor* down_exps = Find(p + "ffn_down_exps.weight");
  if (gate_exps == nullptr || up_exps == nullptr || down_exps == nullptr || gate_exps->ne.size() != 3 ||
      up_exps->ne != gate_exps->ne || down_exps->ne.size() != 3 || gate_exps->ne[0] != E ||
      down_exps->ne[0] != gate_exps->ne[1] || down_exps->ne[1] != E || down_exps->ne[2] != gate_exps->ne[2]) {
    return Status::Error(model_.path + ": layer " + std::to_string(l) +
                         ": ffn_{gate,up,down}_exps missing or not [n_embd, n_ff, n_expert] / [n_ff, n_embd, n_expert]");
  }
  const int64_t F = gate_exps->ne[1], NE = gate_exps->ne[2], K = hp_.n_expert_used;
  if (NE != hp_.n_expert) {
    return Status::Error(model_.path + ": metadata '" + hp_.arch + ".expert_count': " + std::to_string(hp_.n_expert) +
                         " (the tensor '" + gate_exps->name + "' stacks " + std::to_string(NE) + " experts)");
  }
  if (K < 1 || K > NE) {
    return Status::Error(model_.path + ": metadata '" + hp_.arch + ".expert_used_count': " + std::to_string(K) +
                         " (expected 1.." + std::to_string(NE) + ")");
  }
  // Router: softmax over every expert, the top K, their probabilities
  // (renormalised to sum 1 where the architecture does, as llama.cpp with
  // its sum clamped to >= 2^-14).
  std::vector<float> w, logits(static_cast<size_t>(T * NE));
  QF_RETURN_IF_ERROR(Linear(p + "ffn_gate_inp.weight", h, T, E, logits.data(), NE));
  if (stopped_) return Status::Ok();
  std::vector<int32_t> chosen(static_cast<size_t>(T * K));
  std::vector<float> weight(static_cast<size_t>(T * K));
  std::vector<int32_t> order(static_cast<size_t>(NE));
  for (int64_t i = 0; i < T; ++i) {
    float* lg = logits.data() + i * NE;
    float mx = lg[0];
    for (int64_t e = 1; e < NE; ++e) mx = std::max(mx, lg[e]);
    double sum = 0.0;
    for (int64_t e = 0; e < NE; ++e) {
      lg[e] = std::exp(lg[e] - mx);
      sum += lg[e];
    }
    for (int64_t e = 0; e < NE; ++e) lg[e] = static_cast<float>(lg[e] / sum);
    for (int64_t e = 0; e < NE; ++e) order[static_cast<size_t>(e)] = static_cast<int32_t>(e);
    std::partial_sort(order.begin(), order.begin() + K, order.end(),
                      [&](int32_t a, int32_t b) { return lg[a] > lg[b] || (lg[a] == lg[b] && a < b); });
    float wsum = 0.0f;
    for (int64_t k = 0; k < K; ++k) {
      chosen[static_cast<size_t>(i * K + k)] = order[static_cast<size_t>(k)];
      weight[static_cast<size_t>(i * K + k)] = lg[order[static_cast<size_t>(k)]];
      wsum += lg[order[static_cast<size_t>(k)]];
    }
    if (expert_weights_norm_) {
      wsum = std::max(wsum, 6.103515625e-5f);
      for (int64_t k = 0; k < K; ++k) weight[static_cast<size_t>(i * K + k)] /= wsum;
    }
  }
  // Each expert on the tokens routed to it; results kept per (token, slot)
  // and summed in slot order, as llama.cpp adds its expert views.
  std::vector<float> slot_out(static_cast<size_t>(T * K * E), 0.0f);
  for (int64_t e = 0; e < NE; ++e) {
    std::vector<int64_t> rows;  // (token * K + slot) routed to e
    for (int64_t j = 0; j < T * K; ++j) {
      if (chosen[static_cast<size_t>(j)] == e) rows.push_back(j);
    }
    if (rows.empty()) continue;
    const int64_t n = static_cast<int64_t>(rows.size());
    std::vector<float> x(static_cast<size_t>(n * E)), g(static_cast<size_t>(n * F)), u(g.size()), y(x.size());
    for (int64_t r = 0; r < n; ++r) std::copy_n(h + (rows[static_cast<size_t>(r)] / K) * E, E, x.data() + r * E);
    if (expert_hook_) {
      for (const ModelTensor* t : {gate_exps, up_exps}) expert_hook_(t->name, e, x.data(), n, E);
    }
    QF_RETURN_IF_ERROR(ExpertProduct(*gate_exps, e, x.data(), n, E, g.data(), F));
    QF_RETURN_IF_ERROR(ExpertProduct(*up_exps, e, x.data(), n, E, u.data(), F));
    for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    if (expert_hook_) expert_hook_(down_exps->name, e, g.data(), n, F);
    QF_RETURN_IF_ERROR(ExpertProduct(*down_exps, e, g.data(), n, F, y.data(), E));
    for (int64_t r = 0; r < n; ++r) {
      const int64_t j = rows[static_cast<size_t>(r)];
      const float wt = weight[static_cast<size_t>(j)];
      float* dst = slot_out.data() + j * E;
      for (int64_t c = 0; c < E; ++c) dst[c] = y[static_cast<size_t>(r * E + c)] * wt;
    }
  }
  for (int64_t i = 0; i < T; ++i) {
    float* o = out + i * E;
    std::copy_n(slot_out.data() + i * K * E, E, o);
    for (int64_t k = 1; k < K; ++k) {
      const float* src = slot_out.data() + (i * K + k) * E;
      for (int64_t c = 0; c < E; ++c) o[c] += src[c];
    }
  }
  // Qwen2-MoE's shared expert, gated per token by sigmoid(ffn_gate_inp_shexp . x).
  if (Find(p + "ffn_gate_inp_shexp.weight") != nullptr) {
    const ModelTensor* gs = Find(p + "ffn_gate_shexp.weight");
    const ModelTensor* us = Find(p + "ffn_up_shexp.weight");
    const ModelTensor* ds = Find(p + "ffn_down_shexp.weight");
    if (gs == nullptr || us == nullptr || ds == nullptr || gs->ne.size() != 2 || gs->ne[0] != E || gs->ne[1] < 1 ||
        us->ne != gs->ne || ds->ne != std::vector<int64_t>{gs->ne[1], E}) {
      return Status::Error(model_.path + ": layer " + std::to_string(l) +
                           ": ffn_{gate,up,down}_shexp missing or not [n_embd, n_ff_shexp] / [n_ff_shexp, n_embd]");
    }
    const int64_t FS = gs->ne[1];
    std::vector<float> sg(static_cast<size_t>(T)), a(static_cast<size_t>(T * FS)), b(a.size()), y(static_cast<size_t>(T * E));
    QF_RETURN_IF_ERROR(Linear(p + "ffn_gate_inp_shexp.weight", h, T, E, sg.data(), 1));
    QF_RETURN_IF_ERROR(Linear(p + "ffn_gate_shexp.weight", h, T, E, a.data(), FS));
    QF_RETURN_IF_ERROR(Linear(p + "ffn_up_shexp.weight", h, T, E, b.data(), FS));
    for (size_t i = 0; i < a.size(); ++i) a[i] = a[i] / (1.0f + std::exp(-a[i])) * b[i];
    QF_RETURN_IF_ERROR(Linear(p + "ffn_down_shexp.weight", a.data(), T, FS, y.data(), E));
    for (int64_t i = 0; i < T; ++i) {
      const float gate = 1.0f / (1.0f + std::exp(-sg[static_cast<size_t>(i)]));
      for (int64_t c = 0; c < E; ++c) out[i * E + c] += y[static_cast<size_t>(i * E + c)] * gate;
    }
  }
  return Status::Ok();
}

Status LlamaEngine::Forward(const std::vector<int32_t>& tokens, int64_t first_logit, std::vector<float>* logits) {
  KvCache cache;
  return Run(tokens, &cache, first_logit, logits);
}

Status LlamaEngine::Decode(const std::vector<int32_t>& tokens, KvCache* cache, std::vector<float>* last_logits) {
  if (tokens.empty()) return Status::Error("decode: no tokens");
  return Run(tokens, cache, static_cast<int64_t>(tokens.size()) - 1, last_logits);
}

Status LlamaEngine::Embed(const std::vector<int32_t>& tokens, std::vector<float>* x) const {
  const int64_t E = hp_.n_embd;
  for (int32_t t : tokens) {
    if (t < 0 || t >= hp_.n_vocab) return Status::Error("token id " + std::to_string(t) + " is outside the vocabulary");
  }
  x->resize(tokens.size() * static_cast<size_t>(E));
  const ModelTensor* emb = Find("token_embd.weight");
  for (size_t i = 0; i < tokens.size(); ++i) QF_RETURN_IF_ERROR(ReadRowsF32(*emb, tokens[i], 1, x->data() + i * E));
  if (hp_.embed_scale != 1.0f) {
    for (float& v : *x) v *= hp_.embed_scale;
  }
  return Status::Ok();
}

Status LlamaEngine::Attention(int64_t l, const float* h, int64_t T, KvCache* cache, float* out) {
  const int64_t E = hp_.n_embd, H = hp_.n_head, HKV = hp_.n_head_kv, D = hp_.head_dim;
  const std::string p = "blk." + std::to_string(l) + ".";
  const int64_t n_past = cache->n_past;
  std::vector<float> aux;
  std::vector<float> q(static_cast<size_t>(T * H * D)), k(static_cast<size_t>(T * HKV * D)),
      v(static_cast<size_t>(T * HKV * D)), att(static_cast<size_t>(T * H * D));
  auto add_bias = [&](const std::string& name, float* y, int64_t n) -> Status {
    if (Find(name) == nullptr && !overrides_.count(name)) return Status::Ok();
    QF_ASSIGN_OR_RETURN(const std::vector<float>* b, Weight(name, &aux));
    if (static_cast<int64_t>(b->size()) != n) {
      return Status::Error(model_.path + ": tensor '" + name + "': " + std::to_string(b->size()) + " values (expected " +
                           std::to_string(n) + ")");
    }
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < n; ++j) y[i * n + j] += (*b)[static_cast<size_t>(j)];
    return Status::Ok();
  };
  auto head_norm = [&](const std::string& name, float* y, int64_t heads) -> Status {
    if (Find(name) == nullptr) return Status::Ok();
    QF_ASSIGN_OR_RETURN(const std::vector<float>* nw, Weight(name, &aux));
    ParallelFor(T * heads, threads_, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) RmsNorm(y + i * D, nw->data(), D, hp_.rms_eps, y + i * D);
    });
    return Status::Ok();
  };
  if (Find(p + "attn_qkv.weight") != nullptr) {
    // Phi-3's fused projection: each token's row holds Q, then K, then V.
    const int64_t nq = H * D, nk = HKV * D, n = nq + 2 * nk;
    std::vector<float> qkv(static_cast<size_t>(T * n));
    QF_RETURN_IF_ERROR(Linear(p + "attn_qkv.weight", h, T, E, qkv.data(), n));
    if (stopped_) return Status::Ok();
    QF_RETURN_IF_ERROR(add_bias(p + "attn_qkv.bias", qkv.data(), n));
    for (int64_t i = 0; i < T; ++i) {
      const float* row = qkv.data() + i * n;
      std::copy_n(row, nq, q.data() + i * nq);
      std::copy_n(row + nq, nk, k.data() + i * nk);
      std::copy_n(row + nq + nk, nk, v.data() + i * nk);
    }
  } else {
    const std::pair<const char*, std::vector<float>*> projections[] = {{"attn_q", &q}, {"attn_k", &k}, {"attn_v", &v}};
    for (const auto& [name, y] : projections) {
      const int64_t n = static_cast<int64_t>(y->size()) / T;
      QF_RETURN_IF_ERROR(Linear(p + name + ".weight", h, T, E, y->data(), n));
      if (stopped_) return Status::Ok();
      QF_RETURN_IF_ERROR(add_bias(p + name + ".bias", y->data(), n));
    }
  }
  QF_RETURN_IF_ERROR(head_norm(p + "attn_q_norm.weight", q.data(), H));
  QF_RETURN_IF_ERROR(head_norm(p + "attn_k_norm.weight", k.data(), HKV));
  const bool swa = hp_.IsSwaLayer(l);
  const float base = swa ? hp_.rope_base_swa : hp_.rope_base;
  const float freq_scale = swa ? hp_.rope_freq_scale_swa : hp_.rope_freq_scale;
  const float* ff = rope_factors_.empty() ? nullptr : rope_factors_.data();
  ParallelFor(T, threads_, [&](int64_t b, int64_t e) {
    std::vector<float> cs(static_cast<size_t>(hp_.n_rot));
    for (int64_t i = b; i < e; ++i) {
      RopeTable(hp_.n_rot, n_past + i, base, freq_scale, ff, hp_.rope_attn_factor, cs.data());
      for (int64_t hh = 0; hh < H; ++hh) Rope(q.data() + (i * H + hh) * D, hp_.n_rot, hp_.rope_neox, cs.data());
      for (int64_t hh = 0; hh < HKV; ++hh) Rope(k.data() + (i * HKV + hh) * D, hp_.n_rot, hp_.rope_neox, cs.data());
    }
  });
  // Gemma and Phi-3 scale the queries after RoPE and the scores not at all.
  if (hp_.q_scale > 0.0f) {
    for (float& x : q) x *= hp_.q_scale;
  }
  // llama.cpp keeps K and V in an F16 cache and multiplies Q against it in
  // F16 (and the attention weights against V likewise); rounding the same
  // operands to F16 makes activations agree with its to ~1e-5.
  for (auto* buf : {&q, &k, &v}) {
    const int64_t n = static_cast<int64_t>(buf->size()) / T;
    ParallelFor(T, threads_, [&](int64_t b, int64_t e) {
      std::vector<uint16_t> f16;
      RoundThroughF16(buf->data() + b * n, (e - b) * n, &f16);
    });
  }
  if (cache->k.size() < static_cast<size_t>(hp_.n_layer)) {  // a fresh cache
    cache->k.resize(static_cast<size_t>(hp_.n_layer));
    cache->v.resize(static_cast<size_t>(hp_.n_layer));
  }
  auto& ck = cache->k[static_cast<size_t>(l)];
  auto& cv = cache->v[static_cast<size_t>(l)];
  ck.insert(ck.end(), k.begin(), k.end());
  cv.insert(cv.end(), v.begin(), v.end());
  const int64_t S = n_past + T;  // keys visible to the last query
  const float kq_scale = hp_.q_scale > 0.0f ? 1.0f : 1.0f / std::sqrt(static_cast<float>(D));
  const int64_t window = swa ? hp_.n_swa : 0;  // keys a query sees, itself included (0: all before it)
  // Causal attention per head: scores = Q K^T by BLAS, masked softmax,
  // then P V by BLAS. Heads run in parallel.
  const int64_t group = H / HKV;
  ParallelFor(H, threads_, [&](int64_t hb, int64_t he) {
    std::vector<float> scores(static_cast<size_t>(T * S));
    std::vector<uint16_t> tmp;
    for (int64_t hh = hb; hh < he; ++hh) {
      const int64_t kvh = hh / group;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(T), static_cast<int>(S), static_cast<int>(D),
                  kq_scale, q.data() + hh * D, static_cast<int>(H * D), ck.data() + kvh * D, static_cast<int>(HKV * D),
                  0.0f, scores.data(), static_cast<int>(S));
      for (int64_t i = 0; i < T; ++i) {
        float* row = scores.data() + i * S;
        const int64_t visible = n_past + i + 1;
        const int64_t first = window > 0 ? std::max<int64_t>(0, visible - window) : 0;
        float* live = row + first;
        const int64_t n_live = visible - first;
        if (hp_.attn_softcap > 0.0f) SoftCap(live, n_live, hp_.attn_softcap);
        float mx = live[0];
        for (int64_t j = 1; j < n_live; ++j) mx = std::max(mx, live[j]);
        const float inv = 1.0f / simd::ExpShifted(live, n_live, mx);
        for (int64_t j = 0; j < n_live; ++j) live[j] *= inv;
        RoundThroughF16(live, n_live, &tmp);
        std::fill(row, live, 0.0f);
        std::fill(row + visible, row + S, 0.0f);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(T), static_cast<int>(D), static_cast<int>(S),
                  1.0f, scores.data(), static_cast<int>(S), cv.data() + kvh * D, static_cast<int>(HKV * D), 0.0f,
                  att.data() + hh * D, static_cast<int>(H * D));
    }
  });
  QF_RETURN_IF_ERROR(Linear(p + "attn_output.weight", att.data(), T, H * D, out, E));
  return Status::Ok();
}

Status LlamaEngine::Mlp(int64_t l, const float* h, int64_t T, float* out) {
  const int64_t E = hp_.n_embd, F = hp_.n_ff;
  const std::string p = "blk." + std::to_string(l) + ".";
  if (Find(p + "ffn_gate_inp.weight") != nullptr) return Moe(l, h, T, out);
  // Buffers kept between layers (resizing to the same size touches nothing).
  std::vector<float>& gate = mlp_gate_;
  std::vector<float>& up = mlp_up_;
  gate.resize(static_cast<size_t>(T * F));
  up.resize(gate.size());
  if (Find(p + "ffn_gate.weight") == nullptr) {
    // Phi-3's fused ffn_up: each token's 2F outputs are the gate, then up.
    std::vector<float> both(static_cast<size_t>(T * 2 * F));
    QF_RETURN_IF_ERROR(Linear(p + "ffn_up.weight", h, T, E, both.data(), 2 * F));
    if (stopped_) return Status::Ok();
    for (int64_t i = 0; i < T; ++i) {
      std::copy_n(both.data() + i * 2 * F, F, gate.data() + i * F);
      std::copy_n(both.data() + i * 2 * F + F, F, up.data() + i * F);
    }
  } else {
    QF_RETURN_IF_ERROR(Linear(p + "ffn_gate.weight", h, T, E, gate.data(), F));
    if (stopped_) return Status::Ok();
    QF_RETURN_IF_ERROR(Linear(p + "ffn_up.weight", h, T, E, up.data(), F));
  }
  ParallelFor(T, threads_, [&](int64_t b, int64_t e) {
    for (size_t i = static_cast<size_t>(b * F); i < static_cast<size_t>(e * F); ++i) {
      const float g = gate[i];
      gate[i] = hp_.gemma ? GeluLikeGgml(g) * up[i] : g / (1.0f + std::exp(-g)) * up[i];
    }
  });
  QF_RETURN_IF_ERROR(Linear(p + "ffn_down.weight", gate.data(), T, F, out, E));
  return Status::Ok();
}

Status LlamaEngine::Norm(const std::string& name, const float* x, int64_t T, float* h) {
  std::vector<float> scratch;
  QF_ASSIGN_OR_RETURN(const std::vector<float>* nw, Weight(name, &scratch));
  const int64_t E = hp_.n_embd;
  ParallelFor(T, threads_, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) RmsNorm(x + i * E, nw->data(), E, hp_.rms_eps, h + i * E);
  });
  return Status::Ok();
}

Status LlamaEngine::Layer(int64_t l, float* x, int64_t T, KvCache* cache) {
  const std::string p = "blk." + std::to_string(l) + ".";
  const size_t n = static_cast<size_t>(T * hp_.n_embd);
  std::vector<float> h(n), proj(n);
  QF_RETURN_IF_ERROR(Norm(p + "attn_norm.weight", x, T, h.data()));
  QF_RETURN_IF_ERROR(Attention(l, h.data(), T, cache, proj.data()));
  if (stopped_) return Status::Ok();
  if (hp_.gemma) QF_RETURN_IF_ERROR(Norm(p + "post_attention_norm.weight", proj.data(), T, proj.data()));
  for (size_t i = 0; i < n; ++i) x[i] += proj[i];
  QF_RETURN_IF_ERROR(Norm(p + "ffn_norm.weight", x, T, h.data()));
  QF_RETURN_IF_ERROR(Mlp(l, h.data(), T, proj.data()));
  if (stopped_) return Status::Ok();
  if (hp_.gemma) QF_RETURN_IF_ERROR(Norm(p + "post_ffw_norm.weight", proj.data(), T, proj.data()));
  for (size_t i = 0; i < n; ++i) x[i] += proj[i];
  return Status::Ok();
}

Status LlamaEngine::ForwardLayer(int64_t l, float* x, int64_t T, const std::string& stop_at) {
  KvCache cache;
  stop_at_ = stop_at;
  stopped_ = false;
  Status s = Layer(l, x, T, &cache);
  stop_at_.clear();
  stopped_ = false;
  return s;
}

Status LlamaEngine::AttentionBlock(int64_t l, const float* h, int64_t T, float* out) {
  KvCache cache;
  return Attention(l, h, T, &cache, out);
}

Status LlamaEngine::MlpBlock(int64_t l, const float* h, int64_t T, float* out) {
  return Mlp(l, h, T, out);
}

Status LlamaEngine::Run(const std::vector<int32_t>& tokens, KvCache* cache, int64_t first_logit,
                        std::vector<float>* logits) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t E = hp_.n_embd, V = hp_.n_vocab;
  std::vector<float> x;
  QF_RETURN_IF_ERROR(Embed(tokens, &x));
  for (int64_t l = 0; l < hp_.n_layer; ++l) QF_RETURN_IF_ERROR(Layer(l, x.data(), T, cache));
  cache->n_past += T;
  const int64_t n_out = T - first_logit;
  if (n_out <= 0) {
    logits->clear();
    return Status::Ok();
  }
  std::vector<float> h(static_cast<size_t>(n_out * E)), w;
  QF_RETURN_IF_ERROR(Norm("output_norm.weight", x.data() + first_logit * E, n_out, h.data()));
  logits->resize(static_cast<size_t>(n_out * V));
  QF_RETURN_IF_ERROR(Linear("output.weight", h.data(), n_out, E, logits->data(), V));
  if (hp_.final_softcap > 0.0f) SoftCap(logits->data(), n_out * V, hp_.final_softcap);
  return Status::Ok();
}

}  // namespace qforge
