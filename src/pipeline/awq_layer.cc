#include "pipeline/awq_layer.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "algorithms/awq.h"
#include "arch/llama_family.h"
#include "base/clock.h"
#include "numeric/gemm.h"

namespace qforge {
namespace {

// W (rows x cols) <- W diag(s): the readers of a scaled input.
void ScaleColumns(float* w, int64_t rows, int64_t cols, const std::vector<float>& s) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k) w[r * cols + k] *= s[static_cast<size_t>(k)];
}

// W (rows x cols) <- diag(s)^-1 W: a linear producer of the scaled input.
void DivideRows(float* w, int64_t rows, int64_t cols, const std::vector<float>& s) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) w[r * cols + c] /= s[static_cast<size_t>(r)];
}

// Input rows (n x K, flattened) as the scaled layers see them: x diag(s)^-1.
void DivideInputs(std::vector<float>* x, const std::vector<float>& s) {
  for (size_t j = 0; j < x->size(); ++j) (*x)[j] /= s[j % s.size()];
}

// AutoAWQ's grid: 20 ratios, the scales whose loss is lowest.
Result<std::vector<float>> BestScales(const std::vector<float>& x_mean, const std::vector<float>& w_mean,
                                      const std::function<Result<double>(const std::vector<float>&)>& loss_of) {
  std::vector<float> best_scales;
  double best = INFINITY;
  for (int i = 0; i < 20; ++i) {
    std::vector<float> s = AwqScales(x_mean, w_mean, static_cast<float>(i) / 20.0f, true);
    QF_ASSIGN_OR_RETURN(const double loss, loss_of(s));
    if (loss < best) {
      best = loss;
      best_scales = std::move(s);
    }
  }
  return best_scales;
}

// Mean squared difference of two sets of outputs.
double MeanSquaredError(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  double loss = 0.0;
  size_t count = 0;
  for (size_t q = 0; q < a.size(); ++q) {
    for (size_t j = 0; j < a[q].size(); ++j) {
      const double d = static_cast<double>(a[q][j]) - b[q][j];
      loss += d * d;
    }
    count += a[q].size();
  }
  return loss / static_cast<double>(std::max<size_t>(1, count));
}

// What the float layer's pass records for each input a set of linears
// reads (keyed by the set's first linear).
struct AwqRecordings {
  std::map<std::string, std::vector<double>> abs_sum;                 // sum of |x| over every token
  std::map<std::string, std::vector<std::vector<float>>> search_in;   // whole sequences of the search subset
  std::map<std::string, std::vector<float>> clip_in;                  // every step-th token, rows of K
  std::map<std::string, int64_t> clip_rows;
  int64_t total_tokens = 0;
  // Stacked experts, per input key and expert: the rows routed to it.
  struct Expert {
    std::vector<double> abs_sum;
    std::vector<float> search_in;  // rows of the search sequences
    std::vector<float> clip_in;    // every stride-th row, at most ~512
    int64_t rows = 0, clip_rows = 0;
  };
  std::map<std::string, std::vector<Expert>> experts;
};

class AwqLayerRun {
 public:
  AwqLayerRun(LlamaEngine& engine, const Model& model, int64_t l, const LayerwiseOptions& opts,
              std::map<std::string, std::vector<float>>* weights, LayerwiseTimings* tm)
      : engine_(engine), model_(model), block_(BlockOfModel(model)), l_(l), opts_(opts),
        p_("blk." + std::to_string(l) + "."), weights_(*weights), tm_(*tm) {}

  // 1. The float layer on the calibration inputs (x becomes its outputs, the
  // next layer's inputs), recording what the searches need. Memory grows
  // with the search subset, not with the calibration set.
  Status Record(std::vector<std::vector<float>>* x) {
    const int64_t E = engine_.hparams().n_embd;
    const size_t n_all = x->size();
    const size_t n_use = opts_.awq_search_samples > 0 ? std::min(n_all, static_cast<size_t>(opts_.awq_search_samples)) : n_all;
    std::vector<char> in_search(n_all, 0);
    for (size_t i = 0; i < n_use; ++i) in_search[i * n_all / n_use] = 1;
    for (const auto& xs : *x) rec_.total_tokens += static_cast<int64_t>(xs.size()) / E;
    const int64_t clip_step = std::max<int64_t>(1, rec_.total_tokens / 512);
    std::vector<std::string> keys;
    for (const auto& set : block_.input_sets) keys.push_back(set.front());
    // The experts' gate/up read the router's input: the whole-block search
    // records it there; each expert's own rows come through the expert hook.
    std::string router_key;
    for (const auto& g : block_.scaling) {
      if (g.prev_is_norm && block_.IsExpertStack(g.linears[0])) router_key = g.linears[0];
    }
    const int64_t NE = engine_.hparams().n_expert;
    for (const auto& key : keys) {
      if (block_.IsExpertStack(key)) rec_.experts[key].resize(static_cast<size_t>(NE));
    }
    // Per-expert scale searches (down on its own intermediate) need the
    // expert's mean |x| and search rows; the others only clipping rows.
    std::set<std::string> searched;
    for (const auto& g : block_.scaling) {
      if (!g.prev_is_norm && block_.IsExpertStack(g.linears[0])) searched.insert(block_.InputOf(g.linears[0]));
    }
    // Each expert keeps every stride-th routed row for clipping, about 512
    // when the routing is even.
    const int64_t expert_rows = NE > 0 ? rec_.total_tokens * engine_.hparams().n_expert_used / NE : 0;
    const int64_t expert_step = std::max<int64_t>(1, expert_rows / 512);
    size_t seq = 0;
    int64_t token0 = 0;  // global index of the sequence's first token
    engine_.ClearWeightOverrides();
    engine_.SetActivationHook([&](const std::string& name, const float* a, int64_t rows, int64_t cols) {
      for (const auto& key : keys) {
        if (name == p_ + key + ".weight") RecordInput(key, a, rows, cols, in_search[seq] != 0, token0, clip_step);
      }
      if (!router_key.empty() && name == p_ + block_.router + ".weight") {
        RecordInput(router_key, a, rows, cols, in_search[seq] != 0, token0, clip_step);
      }
    });
    engine_.SetExpertActivationHook([&](const std::string& name, int64_t e, const float* a, int64_t rows, int64_t cols) {
      for (auto& [key, per] : rec_.experts) {
        if (name != p_ + key + ".weight" || e < 0 || e >= static_cast<int64_t>(per.size())) continue;
        auto& x = per[static_cast<size_t>(e)];
        if (searched.count(key)) {
          x.abs_sum.resize(static_cast<size_t>(cols), 0.0);
          for (int64_t t = 0; t < rows; ++t)
            for (int64_t k = 0; k < cols; ++k) x.abs_sum[static_cast<size_t>(k)] += std::fabs(a[t * cols + k]);
          if (in_search[seq] != 0) x.search_in.insert(x.search_in.end(), a, a + rows * cols);
        }
        for (int64_t t = 0; t < rows; ++t) {
          if ((x.rows + t) % expert_step != 0) continue;
          x.clip_in.insert(x.clip_in.end(), a + t * cols, a + (t + 1) * cols);
          ++x.clip_rows;
        }
        x.rows += rows;
      }
    });
    auto f0 = Clock::now();
    Status s = Status::Ok();
    for (seq = 0; seq < n_all && s.ok(); ++seq) {
      auto& xs = (*x)[seq];
      const int64_t T = static_cast<int64_t>(xs.size()) / E;
      s = engine_.ForwardLayer(l_, xs.data(), T);
      token0 += T;
    }
    engine_.SetActivationHook(nullptr);
    engine_.SetExpertActivationHook(nullptr);
    tm_.forward_s += SecondsSince(f0);
    return s;
  }

  // Calibration tokens routed to each expert (empty for a dense layer).
  std::vector<int64_t> ExpertTokens() const {
    std::vector<int64_t> out;
    if (rec_.experts.empty()) return out;
    for (const auto& x : rec_.experts.begin()->second) out.push_back(x.rows);
    return out;
  }

  // 2-3. Scale search for each group (all against the original weights),
  // then the scales are folded: the producer divides, the readers multiply.
  Status SearchAndFold(LayerOutput* out) {
    auto s0 = Clock::now();
    std::vector<const ScalingGroup*> groups;
    for (const auto& g : block_.scaling) {
      if (!g.prev_is_norm && block_.IsExpertStack(g.linears[0])) {
        experts_linear_.push_back(&g);  // per expert, after the shared groups
        continue;
      }
      // A linear producer folds only when its output rows are the readers' inputs.
      if (!g.prev_is_norm && rows_of(g.prev) != cols_of(g.linears[0])) continue;
      groups.push_back(&g);
    }
    std::vector<std::vector<float>> best(groups.size());
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      if (!std::all_of(groups[gi]->linears.begin(), groups[gi]->linears.end(), [&](const std::string& s) { return wanted(s); })) continue;
      QF_ASSIGN_OR_RETURN(best[gi], SearchScales(*groups[gi]));
    }
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      if (!best[gi].empty()) QF_RETURN_IF_ERROR(Fold(*groups[gi], best[gi], out));
    }
    for (const ScalingGroup* g : experts_linear_) {
      if (wanted(g->linears[0])) QF_RETURN_IF_ERROR(ExpertLinearScales(*g, out));
    }
    tm_.search_s += SecondsSince(s0);
    return Status::Ok();
  }

  // 4. Clipping, except for q and k (their errors pass through softmax).
  // Each expert of a stack on the rows routed to it; an expert below
  // min_expert_tokens is not clipped.
  void Clip() {
    auto c0 = Clock::now();
    for (const auto& [name, input] : block_.clip) {
      if (!wanted(name)) continue;
      if (block_.IsExpertStack(name)) {
        const int64_t NE = experts_of(name), N = rows_of(name) / NE, K = cols_of(name);
        for (int64_t e = 0; e < NE; ++e) {
          auto& x = rec_.experts[input][static_cast<size_t>(e)];
          if (x.rows < opts_.min_expert_tokens || x.clip_rows == 0) continue;
          AwqClip(W(name).data() + e * N * K, N, K, x.clip_in, x.clip_rows, opts_.spec, opts_.threads);
        }
        continue;
      }
      AwqClip(W(name).data(), rows_of(name), cols_of(name), rec_.clip_in[input], rec_.clip_rows[input], opts_.spec, opts_.threads);
    }
    tm_.search_s += SecondsSince(c0);
  }

  // 5. Quantize (a stacked tensor one expert at a time).
  void Quantize(LayerOutput* out) {
    auto q0 = Clock::now();
    for (const auto& name : LayerLinears(block_, l_)) {
      if (opts_.quantize && !opts_.quantize(name)) continue;
      const ModelTensor* t = model_.Find(name);
      const int64_t NE = t->n_experts(), N = t->n_rows() / NE, K = t->ne[0];
      for (int64_t e = 0; e < NE; ++e) {
        out->quantized.emplace_back(name, QuantizeRtn(weights_[name].data() + e * N * K, N, K, opts_.spec));
      }
    }
    const std::vector<int64_t> tokens = ExpertTokens();
    for (size_t e = 0; e < tokens.size(); ++e) {
      if (tokens[e] >= opts_.min_expert_tokens) continue;
      out->warnings.push_back(ExpertFallbackWarning(p_ + "ffn_*_exps.weight expert " + std::to_string(e), tokens[e],
                                                    opts_.min_expert_tokens,
                                                    " without its own scale search or clipping (its gate/up keep the "
                                                    "layer's shared input scales, folded into ffn_norm)"));
    }
    out->expert_tokens = tokens;
    tm_.solve_s += SecondsSince(q0);
  }

 private:
  std::vector<float>& W(const std::string& s) { return weights_[p_ + s + ".weight"]; }
  int64_t experts_of(const std::string& s) const { return model_.Find(p_ + s + ".weight")->n_experts(); }
  int64_t rows_of(const std::string& s) const { return model_.Find(p_ + s + ".weight")->n_rows(); }
  int64_t cols_of(const std::string& s) const { return model_.Find(p_ + s + ".weight")->ne[0]; }
  bool wanted(const std::string& s) const { return !opts_.quantize || opts_.quantize(p_ + s + ".weight"); }

  // A producer -> reader group inside each expert (up -> down): the
  // expert's own scale search on the rows routed to it (AutoAWQ's loss on
  // the single linear), folded into the expert's rows of the producer.
  // Experts below min_expert_tokens keep s = 1.
  Status ExpertLinearScales(const ScalingGroup& g, LayerOutput* out) {
    const std::string& reader = g.linears[0];
    const int64_t NE = experts_of(reader), N = rows_of(reader) / NE, K = cols_of(reader);
    const int64_t P = cols_of(g.prev);  // the producer's columns; its rows per expert are the reader's K
    auto& per = rec_.experts[reader];
    for (int64_t e = 0; e < NE; ++e) {
      auto& x = per[static_cast<size_t>(e)];
      if (x.rows < opts_.min_expert_tokens || x.search_in.empty()) continue;
      float* w = W(reader).data() + e * N * K;
      const std::vector<float> we(w, w + N * K);
      std::vector<float> x_mean(static_cast<size_t>(K));
      for (int64_t k = 0; k < K; ++k) x_mean[static_cast<size_t>(k)] = static_cast<float>(x.abs_sum[static_cast<size_t>(k)] / x.rows);
      const int64_t T = static_cast<int64_t>(x.search_in.size()) / K;
      std::vector<std::vector<float>> y_ref(1, std::vector<float>(static_cast<size_t>(T * N))), y = y_ref;
      GemmNT(x.search_in.data(), T, K, we.data(), N, y_ref[0].data(), opts_.threads);
      std::vector<float> pseudo(we.size());
      auto loss_of = [&](const std::vector<float>& s) -> Result<double> {
        AwqPseudoQuantize(we.data(), N, K, &s, opts_.spec, pseudo.data());
        GemmNT(x.search_in.data(), T, K, pseudo.data(), N, y[0].data(), opts_.threads);
        return MeanSquaredError(y_ref, y);
      };
      QF_ASSIGN_OR_RETURN(const std::vector<float> s, BestScales(x_mean, AwqWeightMean({&we}, K, opts_.spec.GroupLen(K)), loss_of));
      DivideRows(W(g.prev).data() + e * K * P, K, P, s);
      ScaleColumns(w, N, K, s);
      DivideInputs(&x.clip_in, s);
    }
    // A producer left float still carries the scales it was divided by.
    if (!wanted(g.prev)) out->changed.emplace_back(p_ + g.prev + ".weight", W(g.prev));
    return Status::Ok();
  }

  void RecordInput(const std::string& key, const float* a, int64_t rows, int64_t cols, bool in_search, int64_t token0,
                   int64_t clip_step) {
    auto& sum = rec_.abs_sum[key];
    sum.resize(static_cast<size_t>(cols), 0.0);
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t k = 0; k < cols; ++k) sum[static_cast<size_t>(k)] += std::fabs(a[t * cols + k]);
    if (in_search) rec_.search_in[key].emplace_back(a, a + rows * cols);
    auto& c = rec_.clip_in[key];
    for (int64_t t = 0; t < rows; ++t) {
      if ((token0 + t) % clip_step != 0) continue;
      c.insert(c.end(), a + t * cols, a + (t + 1) * cols);
      ++rec_.clip_rows[key];
    }
  }

  // The module's output for every search sequence, with whatever weights are
  // set (lin_w: the pseudo-quantized linear, for a kLinear group).
  Status ModuleOutputs(const ScalingGroup& g, const std::vector<float>* lin_w, std::vector<std::vector<float>>* ys) {
    const auto& inputs = rec_.search_in[g.linears[0]];
    const int64_t K = cols_of(g.linears[0]), E = engine_.hparams().n_embd;
    ys->resize(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      const int64_t T = static_cast<int64_t>(inputs[i].size()) / K;
      if (g.module == ScalingGroup::kLinear) {
        const int64_t N = rows_of(g.linears[0]);
        (*ys)[i].resize(static_cast<size_t>(T * N));
        GemmNT(inputs[i].data(), T, K, (lin_w ? *lin_w : W(g.linears[0])).data(), N, (*ys)[i].data(), opts_.threads);
      } else {
        (*ys)[i].resize(static_cast<size_t>(T * E));
        QF_RETURN_IF_ERROR(g.module == ScalingGroup::kAttention ? engine_.AttentionBlock(l_, inputs[i].data(), T, (*ys)[i].data())
                                                                : engine_.MlpBlock(l_, inputs[i].data(), T, (*ys)[i].data()));
      }
    }
    return Status::Ok();
  }

  // AutoAWQ's grid: 20 ratios, the one whose pseudo-quantized module output
  // is closest (mean squared error) to the float module's.
  Result<std::vector<float>> SearchScales(const ScalingGroup& g) {
    const int64_t K = cols_of(g.linears[0]);
    std::vector<float> x_mean(static_cast<size_t>(K));
    const auto& sum = rec_.abs_sum[g.linears[0]];
    const double tokens = static_cast<double>(std::max<int64_t>(1, rec_.total_tokens));
    for (int64_t k = 0; k < K; ++k) x_mean[static_cast<size_t>(k)] = static_cast<float>(sum[static_cast<size_t>(k)] / tokens);
    std::vector<const std::vector<float>*> ws;
    for (const auto& s : g.linears) ws.push_back(&W(s));
    const std::vector<float> w_mean = AwqWeightMean(ws, K, opts_.spec.GroupLen(K));
    std::vector<std::vector<float>> y_ref, y, pseudo(g.linears.size());
    QF_RETURN_IF_ERROR(ModuleOutputs(g, nullptr, &y_ref));
    // A norm read with an offset (Gemma's 1 + w) is stored without it, so
    // the folded n / s comes back rounded relative to 1, not to n / s: the
    // loss sees input channel k times read_back / (n / s), folded into the
    // pseudo-quantized columns.
    std::vector<float> norm;
    float offset = 0.0f;
    if (g.prev_is_norm && opts_.round_stored) {
      const ModelTensor* nt = model_.Find(p_ + g.prev + ".weight");
      offset = nt->add_on_read;
      if (offset != 0.0f) {
        QF_ASSIGN_OR_RETURN(norm, ReadTensorF32(*nt));
      }
    }
    auto loss_of = [&](const std::vector<float>& s) -> Result<double> {
      std::vector<float> read_back(norm.empty() ? 0 : static_cast<size_t>(K), 1.0f);
      for (size_t k = 0; k < read_back.size(); ++k) {
        const float folded = norm[k] / s[k];
        if (folded != 0.0f) read_back[k] = (opts_.round_stored(folded - offset) + offset) / folded;
      }
      for (size_t li = 0; li < g.linears.size(); ++li) {
        const std::string& name = g.linears[li];
        pseudo[li].resize(W(name).size());
        AwqPseudoQuantize(W(name).data(), rows_of(name), K, &s, opts_.spec, pseudo[li].data());
        if (!read_back.empty()) ScaleColumns(pseudo[li].data(), rows_of(name), K, read_back);
        engine_.SetWeightOverride(p_ + name + ".weight", &pseudo[li]);
      }
      QF_RETURN_IF_ERROR(ModuleOutputs(g, &pseudo[0], &y));
      return MeanSquaredError(y_ref, y);
    };
    auto best_scales = BestScales(x_mean, w_mean, loss_of);
    engine_.ClearWeightOverrides();
    return best_scales;
  }

  Status Fold(const ScalingGroup& g, const std::vector<float>& s, LayerOutput* out) {
    const int64_t K = static_cast<int64_t>(s.size());
    if (g.prev_is_norm) {
      QF_ASSIGN_OR_RETURN(std::vector<float> nw, ReadTensorF32(*model_.Find(p_ + g.prev + ".weight")));
      DivideInputs(&nw, s);
      out->changed.emplace_back(p_ + g.prev + ".weight", std::move(nw));
    } else {
      DivideRows(W(g.prev).data(), K, cols_of(g.prev), s);
      if (!wanted(g.prev)) out->changed.emplace_back(p_ + g.prev + ".weight", W(g.prev));
    }
    for (const auto& name : g.linears) ScaleColumns(W(name).data(), rows_of(name), K, s);
    // Float readers of the same input (the router) take the scales too,
    // so they see exactly what they saw.
    for (const auto& f : g.followers) {
      const ModelTensor* t = model_.Find(p_ + f + ".weight");
      if (t == nullptr) continue;
      QF_ASSIGN_OR_RETURN(std::vector<float> fw, ReadTensorF32(*t));
      ScaleColumns(fw.data(), static_cast<int64_t>(fw.size()) / K, K, s);
      out->changed.emplace_back(t->name, std::move(fw));
    }
    // The clipping searches see the scaled layers' new inputs: every input
    // the group's linears read (the experts' rows per expert).
    std::set<std::string> keys;
    for (const auto& name : g.linears) keys.insert(block_.InputOf(name));
    for (const auto& key : keys) {
      DivideInputs(&rec_.clip_in[key], s);
      if (auto it = rec_.experts.find(key); it != rec_.experts.end()) {
        for (auto& x : it->second) DivideInputs(&x.clip_in, s);
      }
    }
    return Status::Ok();
  }

  LlamaEngine& engine_;
  const Model& model_;
  const BlockLayout& block_;
  const int64_t l_;
  const LayerwiseOptions& opts_;
  const std::string p_;
  std::map<std::string, std::vector<float>>& weights_;
  LayerwiseTimings& tm_;
  AwqRecordings rec_;
  std::vector<const ScalingGroup*> experts_linear_;  // groups searched per expert
};

}  // namespace

Status AwqLayer(LlamaEngine& engine, const Model& model, int64_t l, const LayerwiseOptions& opts,
                std::map<std::string, std::vector<float>>* weights, std::vector<std::vector<float>>* x,
                LayerOutput* out, LayerwiseTimings* tm) {
  AwqLayerRun run(engine, model, l, opts, weights, tm);
  QF_RETURN_IF_ERROR(run.Record(x));
  QF_RETURN_IF_ERROR(run.SearchAndFold(out));
  run.Clip();
  run.Quantize(out);
  return Status::Ok();
}

}  // namespace qforge
