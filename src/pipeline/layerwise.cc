#include "pipeline/layerwise.h"
#include "base/clock.h"

#include <map>

#include "arch/llama_family.h"
#include "engine/llama_engine.h"
#include "pipeline/awq_layer.h"

namespace qforge {

std::vector<std::vector<int32_t>> CalibrationChunks(const std::vector<int32_t>& tokens, int64_t seqlen,
                                                    int64_t max_samples, int32_t bos) {
  std::vector<std::vector<int32_t>> out;
  if (seqlen <= 0) return out;
  for (size_t b = 0; b + static_cast<size_t>(seqlen) <= tokens.size(); b += static_cast<size_t>(seqlen)) {
    if (max_samples >= 0 && static_cast<int64_t>(out.size()) >= max_samples) break;
    out.emplace_back(tokens.begin() + static_cast<std::ptrdiff_t>(b),
                     tokens.begin() + static_cast<std::ptrdiff_t>(b) + seqlen);
    if (bos >= 0) out.back()[0] = bos;
  }
  return out;
}

Status QuantizeLayerwise(const Model& model, const std::vector<std::vector<int32_t>>& calib,
                         const LayerwiseOptions& opts, const LayerSink& sink, LayerwiseTimings* timings) {
  LayerwiseTimings local;
  LayerwiseTimings& tm = timings ? *timings : local;
  tm = LayerwiseTimings{};
  if (opts.method != IntMethod::kRtn && calib.empty()) {
    return Status::Error(std::string(IntMethodName(opts.method)) +
                         ": no calibration sequences (the text is shorter than one sequence)");
  }
  QF_ASSIGN_OR_RETURN(std::unique_ptr<LlamaEngine> engine, LlamaEngine::Create(model, opts.threads));
  const int64_t n_layer = engine->hparams().n_layer, E = engine->hparams().n_embd;
  for (int64_t l = 0; l < n_layer; ++l) {
    for (const auto& name : LayerLinears(l)) {
      const ModelTensor* t = model.Find(name);
      if (t == nullptr) return Status::Error(model.path + ": tensor '" + name + "': missing");
      if (opts.quantize && !opts.quantize(name)) continue;
      if (std::string why = opts.spec.Check(t->ne[0]); !why.empty()) {
        return Status::Error(model.path + ": tensor '" + t->source_name + "': " + why);
      }
    }
  }
  // The activations entering the current layer, one buffer per sequence.
  std::vector<std::vector<float>> x(calib.size());
  auto t0 = Clock::now();
  for (size_t s = 0; s < calib.size(); ++s) QF_RETURN_IF_ERROR(engine->Embed(calib[s], &x[s]));
  tm.forward_s += SecondsSince(t0);

  for (int64_t l = 0; l < n_layer; ++l) {
    LayerOutput out;
    out.layer = l;
    std::map<std::string, std::vector<float>> weights;
    for (const auto& name : LayerLinears(l)) {
      QF_ASSIGN_OR_RETURN(weights[name], ReadTensorF32(*model.Find(name)));
    }
    auto wanted = [&](const std::string& name) { return !opts.quantize || opts.quantize(name); };
    auto shape = [&](const std::string& name) {
      const ModelTensor* t = model.Find(name);
      return std::pair<int64_t, int64_t>{t->n_rows(), t->ne[0]};
    };
    const std::string p = "blk." + std::to_string(l) + ".";
    if (opts.method == IntMethod::kRtn) {
      for (const auto& name : LayerLinears(l)) {
        if (!wanted(name)) continue;
        auto [N, K] = shape(name);
        auto s0 = Clock::now();
        out.quantized.emplace_back(name, QuantizeRtn(weights[name].data(), N, K, opts.spec));
        tm.solve_s += SecondsSince(s0);
      }
    } else if (opts.method == IntMethod::kGptq) {
      std::vector<std::vector<std::string>> sets;
      if (opts.true_sequential) {
        sets = LayerLinearSets();
      } else {
        sets.emplace_back();
        for (const auto& set : LayerLinearSets()) sets.back().insert(sets.back().end(), set.begin(), set.end());
      }
      std::map<std::string, std::vector<float>> dequant;  // quantized weights, as the next passes see them
      for (const auto& set : sets) {
        // One Hessian per distinct input: the first linear reading it.
        std::map<std::string, Hessian> hessians;
        std::map<std::string, std::string> hessian_of;
        std::string last_first;
        for (const auto& short_name : set) {
          const std::string name = p + short_name + ".weight";
          const bool shares = short_name == "attn_k" || short_name == "attn_v" || short_name == "ffn_up";
          if (!shares || last_first.empty()) {
            last_first = name;
            hessians.emplace(name, Hessian(shape(name).second));
          }
          hessian_of[name] = last_first;
        }
        engine->SetActivationHook([&](const std::string& name, const float* a, int64_t rows, int64_t cols) {
          auto it = hessians.find(name);
          if (it == hessians.end() || cols != it->second.dim()) return;
          auto h0 = Clock::now();
          it->second.Add(a, rows);
          tm.hessian_s += SecondsSince(h0);
        });
        std::vector<float> scratch;
        // The pass can stop once the last distinct input of the set is seen.
        const std::string stop_at = last_first;
        auto f0 = Clock::now();
        const double hessian_before = tm.hessian_s;
        for (const auto& xs : x) {
          scratch = xs;
          QF_RETURN_IF_ERROR(engine->ForwardLayer(l, scratch.data(), static_cast<int64_t>(xs.size()) / E, stop_at));
        }
        tm.forward_s += SecondsSince(f0) - (tm.hessian_s - hessian_before);  // the hook's Hessian time is its own
        engine->SetActivationHook(nullptr);
        for (const auto& short_name : set) {
          const std::string name = p + short_name + ".weight";
          if (!wanted(name)) continue;
          auto [N, K] = shape(name);
          auto s0 = Clock::now();
          IntQuantized q = GptqQuantize(weights[name].data(), N, K, hessians.at(hessian_of[name]).Matrix(), opts.spec,
                                        opts.gptq, opts.threads, nullptr);
          tm.solve_s += SecondsSince(s0);
          auto& dq = dequant[name];
          dq.resize(static_cast<size_t>(N * K));
          q.DequantizeRows(0, N, dq.data());
          engine->SetWeightOverride(name, &dq);
          out.quantized.emplace_back(name, std::move(q));
        }
      }
      // The layer's outputs with its quantized weights feed the next layer.
      auto f0 = Clock::now();
      for (auto& xs : x) QF_RETURN_IF_ERROR(engine->ForwardLayer(l, xs.data(), static_cast<int64_t>(xs.size()) / E));
      tm.forward_s += SecondsSince(f0);
      engine->ClearWeightOverrides();
    } else {
      auto s0 = Clock::now();
      QF_RETURN_IF_ERROR(AwqLayer(*engine, model, l, opts, &weights, &x, &out, &tm));
      (void)s0;
    }
    QF_RETURN_IF_ERROR(sink(std::move(out)));
    if (opts.on_layer) opts.on_layer(l + 1, n_layer);
  }
  // The output head, when asked: GPTQ on the final normed hidden states,
  // otherwise round to nearest (AutoAWQ never scales lm_head).
  if (opts.quantize && opts.quantize("output.weight") && model.Find("output.weight") != nullptr) {
    const ModelTensor* t = model.Find("output.weight");
    const int64_t N = t->n_rows(), K = t->ne[0];
    if (std::string why = opts.spec.Check(K); !why.empty()) return Status::Error(model.path + ": lm_head: " + why);
    QF_ASSIGN_OR_RETURN(std::vector<float> w, ReadTensorF32(*t));
    LayerOutput out;
    out.layer = -1;
    if (opts.method == IntMethod::kGptq) {
      Hessian h(K);
      std::vector<float> normed;
      auto h0 = Clock::now();
      for (const auto& xs : x) {
        normed.resize(xs.size());
        QF_RETURN_IF_ERROR(engine->Norm("output_norm.weight", xs.data(), static_cast<int64_t>(xs.size()) / E, normed.data()));
        h.Add(normed.data(), static_cast<int64_t>(xs.size()) / E);
      }
      tm.hessian_s += SecondsSince(h0);
      auto s0 = Clock::now();
      out.quantized.emplace_back("output.weight", GptqQuantize(w.data(), N, K, h.Matrix(), opts.spec, opts.gptq, opts.threads, nullptr));
      tm.solve_s += SecondsSince(s0);
    } else {
      out.quantized.emplace_back("output.weight", QuantizeRtn(w.data(), N, K, opts.spec));
    }
    QF_RETURN_IF_ERROR(sink(std::move(out)));
  }
  return Status::Ok();
}

}  // namespace qforge
