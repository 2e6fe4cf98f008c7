#include "pipeline/awq_layer.h"

#include <algorithm>
#include <cmath>

#include "algorithms/awq.h"
#include "arch/llama_family.h"
#include "base/clock.h"
#include "numeric/gemm.h"

namespace qforge {

Status AwqLayer(LlamaEngine& engine, const Model& model, int64_t l, const LayerwiseOptions& opts,
                std::map<std::string, std::vector<float>>* weights, std::vector<std::vector<float>>* x,
                LayerOutput* out, LayerwiseTimings* tm) {
  const LlamaHparams& hp = engine.hparams();
  const int64_t E = hp.n_embd;
  const std::string p = "blk." + std::to_string(l) + ".";
  auto W = [&](const std::string& s) -> std::vector<float>& { return (*weights)[p + s + ".weight"]; };
  auto rows_of = [&](const std::string& s) { return model.Find(p + s + ".weight")->n_rows(); };
  auto cols_of = [&](const std::string& s) { return model.Find(p + s + ".weight")->ne[0]; };
  auto wanted = [&](const std::string& s) { return !opts.quantize || opts.quantize(p + s + ".weight"); };

  // 1. The float layer on the calibration inputs; its outputs are the next
  // layer's inputs. On the way, for each input a group of linears reads
  // (keyed by its first linear): the sum of |x| over every token, whole
  // sequences for the scale search's evenly spaced subset, and every
  // step-th token for the clipping search. Memory so grows with the subset,
  // not with the calibration set.
  const std::vector<std::string> keys = {"attn_q", "attn_output", "ffn_gate", "ffn_down"};
  const size_t n_all = x->size();
  const size_t n_use = opts.awq_search_samples > 0 ? std::min(n_all, static_cast<size_t>(opts.awq_search_samples)) : n_all;
  std::vector<char> in_search(n_all, 0);
  for (size_t i = 0; i < n_use; ++i) in_search[i * n_all / n_use] = 1;
  int64_t total_tokens = 0;
  for (const auto& xs : *x) total_tokens += static_cast<int64_t>(xs.size()) / E;
  const int64_t clip_step = std::max<int64_t>(1, total_tokens / 512);
  std::map<std::string, std::vector<double>> abs_sum;
  std::map<std::string, std::vector<std::vector<float>>> search_in;
  std::map<std::string, std::vector<float>> clip_in;  // rows of K
  std::map<std::string, int64_t> clip_rows;
  size_t seq = 0;
  int64_t token0 = 0;  // global index of the sequence's first token
  engine.ClearWeightOverrides();
  engine.SetActivationHook([&](const std::string& name, const float* a, int64_t rows, int64_t cols) {
    for (const auto& key : keys) {
      if (name != p + key + ".weight") continue;
      auto& sum = abs_sum[key];
      sum.resize(static_cast<size_t>(cols), 0.0);
      for (int64_t t = 0; t < rows; ++t)
        for (int64_t k = 0; k < cols; ++k) sum[static_cast<size_t>(k)] += std::fabs(a[t * cols + k]);
      if (in_search[seq]) search_in[key].emplace_back(a, a + rows * cols);
      auto& c = clip_in[key];
      for (int64_t t = 0; t < rows; ++t) {
        if ((token0 + t) % clip_step != 0) continue;
        c.insert(c.end(), a + t * cols, a + (t + 1) * cols);
        ++clip_rows[key];
      }
    }
  });
  auto f0 = Clock::now();
  for (seq = 0; seq < n_all; ++seq) {
    auto& xs = (*x)[seq];
    const int64_t T = static_cast<int64_t>(xs.size()) / E;
    QF_RETURN_IF_ERROR(engine.ForwardLayer(l, xs.data(), T));
    token0 += T;
  }
  engine.SetActivationHook(nullptr);
  tm->forward_s += SecondsSince(f0);

  struct Group {
    std::string prev;  // norm weight name (full) or linear short name
    bool prev_is_norm;
    std::vector<std::string> layers;
    std::string input;  // the first linear reading the input (key of the recordings)
    enum Kind { kAttn, kMlp, kLinear } kind;
  };
  std::vector<Group> groups;
  groups.push_back({p + "attn_norm.weight", true, {"attn_q", "attn_k", "attn_v"}, "attn_q", Group::kAttn});
  if (rows_of("attn_v") == rows_of("attn_output") && cols_of("attn_v") == cols_of("attn_output")) {
    groups.push_back({"attn_v", false, {"attn_output"}, "attn_output", Group::kLinear});
  }
  groups.push_back({p + "ffn_norm.weight", true, {"ffn_gate", "ffn_up"}, "ffn_gate", Group::kMlp});
  groups.push_back({"ffn_up", false, {"ffn_down"}, "ffn_down", Group::kLinear});

  // 2. Scale search for each group, all against the original weights.
  auto s0 = Clock::now();
  std::vector<std::vector<float>> best_scales(groups.size());
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const Group& g = groups[gi];
    if (!std::all_of(g.layers.begin(), g.layers.end(), wanted)) continue;
    const auto& inputs = search_in[g.input];
    const int64_t K = cols_of(g.layers[0]);
    std::vector<float> x_mean(static_cast<size_t>(K));
    const auto& sum = abs_sum[g.input];
    for (int64_t k = 0; k < K; ++k) x_mean[static_cast<size_t>(k)] = static_cast<float>(sum[static_cast<size_t>(k)] / static_cast<double>(std::max<int64_t>(1, total_tokens)));
    std::vector<const std::vector<float>*> ws;
    for (const auto& s : g.layers) ws.push_back(&W(s));
    const std::vector<float> w_mean = AwqWeightMean(ws, K, opts.spec.GroupLen(K));

    // The module's output for every sequence, with whatever weights are set.
    auto module = [&](std::vector<std::vector<float>>* ys, const std::vector<std::vector<float>>* lin_w) -> Status {
      ys->resize(inputs.size());
      for (size_t i = 0; i < inputs.size(); ++i) {
        const int64_t T = static_cast<int64_t>(inputs[i].size()) / K;
        if (g.kind == Group::kLinear) {
          const int64_t N = rows_of(g.layers[0]);
          (*ys)[i].resize(static_cast<size_t>(T * N));
          GemmNT(inputs[i].data(), T, K, (lin_w ? (*lin_w)[0] : W(g.layers[0])).data(), N, (*ys)[i].data(), opts.threads);
        } else {
          (*ys)[i].resize(static_cast<size_t>(T * E));
          if (g.kind == Group::kAttn) {
            QF_RETURN_IF_ERROR(engine.AttentionBlock(l, inputs[i].data(), T, (*ys)[i].data()));
          } else {
            QF_RETURN_IF_ERROR(engine.MlpBlock(l, inputs[i].data(), T, (*ys)[i].data()));
          }
        }
      }
      return Status::Ok();
    };
    std::vector<std::vector<float>> y_ref, y;
    QF_RETURN_IF_ERROR(module(&y_ref, nullptr));
    std::vector<std::vector<float>> pseudo(g.layers.size());
    double best = INFINITY;
    for (int i = 0; i < 20; ++i) {
      const float ratio = static_cast<float>(i) / 20.0f;
      std::vector<float> s = AwqScales(x_mean, w_mean, ratio, true);
      for (size_t li = 0; li < g.layers.size(); ++li) {
        const std::string& name = g.layers[li];
        pseudo[li].resize(W(name).size());
        AwqPseudoQuantize(W(name).data(), rows_of(name), K, &s, opts.spec, pseudo[li].data());
        engine.SetWeightOverride(p + name + ".weight", &pseudo[li]);
      }
      QF_RETURN_IF_ERROR(module(&y, &pseudo));
      double loss = 0.0;
      size_t count = 0;
      for (size_t q = 0; q < y.size(); ++q) {
        for (size_t j = 0; j < y[q].size(); ++j) {
          const double d = static_cast<double>(y_ref[q][j]) - y[q][j];
          loss += d * d;
        }
        count += y[q].size();
      }
      loss /= static_cast<double>(std::max<size_t>(1, count));
      if (loss < best) {
        best = loss;
        best_scales[gi] = std::move(s);
      }
    }
    engine.ClearWeightOverrides();
  }

  // 3. Fold the scales: the operation before divides, the linears multiply.
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const std::vector<float>& s = best_scales[gi];
    if (s.empty()) continue;
    const Group& g = groups[gi];
    const int64_t K = static_cast<int64_t>(s.size());
    if (g.prev_is_norm) {
      QF_ASSIGN_OR_RETURN(std::vector<float> nw, ReadTensorF32(*model.Find(g.prev)));
      for (int64_t k = 0; k < K; ++k) nw[static_cast<size_t>(k)] /= s[static_cast<size_t>(k)];
      out->changed.emplace_back(g.prev, std::move(nw));
    } else {
      std::vector<float>& pw = W(g.prev);
      const int64_t cols = cols_of(g.prev);
      for (int64_t r = 0; r < K; ++r)
        for (int64_t c = 0; c < cols; ++c) pw[static_cast<size_t>(r * cols + c)] /= s[static_cast<size_t>(r)];
      if (!wanted(g.prev)) out->changed.emplace_back(p + g.prev + ".weight", pw);
    }
    for (const auto& name : g.layers) {
      std::vector<float>& w = W(name);
      const int64_t rows = rows_of(name);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < K; ++k) w[static_cast<size_t>(r * K + k)] *= s[static_cast<size_t>(k)];
    }
    auto& c = clip_in[g.input];  // the clipping search sees the scaled layers' new inputs
    for (size_t j = 0; j < c.size(); ++j) c[j] /= s[j % static_cast<size_t>(K)];
  }
  tm->search_s += SecondsSince(s0);

  // 4. Clipping, except for q and k (their errors pass through softmax).
  auto c0 = Clock::now();
  for (const auto& [name, input] : std::vector<std::pair<std::string, std::string>>{
           {"attn_v", "attn_q"}, {"attn_output", "attn_output"}, {"ffn_gate", "ffn_gate"}, {"ffn_up", "ffn_gate"}, {"ffn_down", "ffn_down"}}) {
    if (!wanted(name)) continue;
    const int64_t K = cols_of(name);
    const std::vector<float>& xs = clip_in[input];
    const int64_t n = clip_rows[input];
    AwqClip(W(name).data(), rows_of(name), K, xs, n, opts.spec, opts.threads);
  }
  tm->search_s += SecondsSince(c0);

  // 5. Quantize.
  auto q0 = Clock::now();
  for (const auto& name : LayerLinears(l)) {
    if (opts.quantize && !opts.quantize(name)) continue;
    const ModelTensor* t = model.Find(name);
    out->quantized.emplace_back(name, QuantizeRtn((*weights)[name].data(), t->n_rows(), t->ne[0], opts.spec));
  }
  tm->solve_s += SecondsSince(q0);
  return Status::Ok();
}

}  // namespace qforge
