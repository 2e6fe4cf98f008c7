#include "pipeline/layerwise.h"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <map>
#include <set>

#include "arch/llama_family.h"
#include "base/clock.h"
#include "codecs/block_quantizer.h"
#include "engine/llama_engine.h"
#include "pipeline/awq_layer.h"
#include "plan/int_plan.h"

namespace qforge {
namespace {

using Weights = std::map<std::string, std::vector<float>>;

std::pair<int64_t, int64_t> ShapeOf(const Model& model, const std::string& name) {
  const ModelTensor* t = model.Find(name);
  return {t->n_rows(), t->ne[0]};
}

bool Wanted(const LayerwiseOptions& opts, const std::string& name) { return !opts.quantize || opts.quantize(name); }

std::optional<LayerwiseOptions::BlockTarget> BlockTargetOf(const LayerwiseOptions& opts, const std::string& name) {
  if (!opts.block_target) return std::nullopt;
  return opts.block_target(name);
}

// Every linear to quantize exists and fits its target's grouping (a group
// size that does not divide inputs names them all).
Status CheckLinears(const Model& model, const BlockLayout& block, int64_t n_layer, const LayerwiseOptions& opts) {
  if (model.expert_count > 0) {
    return Status::Error(model.path + ": a mixture-of-experts model (" + std::to_string(model.expert_count) +
                         " experts per layer): layer-by-layer GPTQ/AWQ of MoE models is not supported yet; "
                         "quantize it with -f TYPE (and --imatrix) instead");
  }
  GroupSizeMisfits misfits;
  for (int64_t l = 0; l < n_layer; ++l) {
    for (const auto& name : LayerLinears(block, l)) {
      const ModelTensor* t = model.Find(name);
      if (t == nullptr) return Status::Error(model.path + ": tensor '" + name + "': missing");
      if (!Wanted(opts, name)) continue;
      if (auto bt = BlockTargetOf(opts, name)) {
        if (BlockGridOf(bt->type) == nullptr || t->ne[0] % TraitsOf(bt->type).block_elems != 0) {
          return Status::Error(model.path + ": tensor '" + t->source_name + "': GPTQ cannot fill " +
                               GgmlTypeName(bt->type) + " blocks of it");
        }
        continue;
      }
      misfits.Check(opts.spec.group_size, t->ne[0], t->source_name);
      const int64_t g = opts.spec.group_size;
      QF_RETURN_IF_ERROR(opts.spec.Check(g > 0 && t->ne[0] % g != 0 ? g : t->ne[0])
                             .WithContext(model.path + ": tensor '" + t->source_name + "'"));
    }
  }
  return misfits.ToStatus(model.path, opts.spec.group_size);
}

// A NaN or Inf would spread through GPTQ's error feedback (or AWQ's scales)
// into every later column; refuse it, as the plain encoders do.
// w is in GGUF row order; the message gives the source's row.
Status CheckFinite(const Model& model, const ModelTensor& t, const std::vector<float>& w) {
  const int64_t K = t.ne[0];
  for (size_t i = 0; i < w.size(); ++i) {
    if (!std::isfinite(w[i])) {
      int64_t row = static_cast<int64_t>(i) / K;
      if (t.permute_heads > 0) row = SourceRowOf(row, t.n_rows(), t.permute_heads);
      return Status::Error(model.path + ": tensor '" + t.source_name + "': row " + std::to_string(row) +
                           " contains NaN or Inf; refusing to quantize it");
    }
  }
  return Status::Ok();
}

// What GPTQ could not do as asked on one linear, for the run's warnings.
void ReportGptq(const std::string& name, int64_t K, const GptqStats& st, LayerOutput* out) {
  if (st.dead_columns == K) {
    out->warnings.push_back(name + ": no calibration input reached it (all-zero Hessian); rounded to nearest");
  } else if (st.dead_columns > 0) {
    out->warnings.push_back(name + ": " + std::to_string(st.dead_columns) + " of " + std::to_string(K) +
                            " inputs were never non-zero in the calibration; those columns were rounded to nearest");
  }
  if (st.fell_back_to_rtn) {
    out->warnings.push_back(name + ": the Hessian stayed singular with the highest damping; rounded to nearest");
  }
}

// GPTQ on one linear: takes its weights w and returns, in the same storage
// (one layer's weights are never held twice), the weights it ends with, as
// the next passes see them. Into ggml blocks when the linear has a block
// target.
std::vector<float> GptqLinear(const std::string& name, std::vector<float> w, int64_t N, int64_t K, std::vector<float> h,
                              const LayerwiseOptions& opts, LayerOutput* out) {
  if (auto bt = BlockTargetOf(opts, name)) {
    std::vector<float> importance;
    if (bt->importance != nullptr) {
      importance = *bt->importance;
    } else {
      importance.resize(static_cast<size_t>(K));
      for (int64_t k = 0; k < K; ++k) importance[static_cast<size_t>(k)] = h[static_cast<size_t>(k * K + k)];
    }
    const GgmlTypeTraits& tr = TraitsOf(bt->type);
    GgmlBlockQuantizer q(bt->type, N, K, importance, opts.threads);
    std::vector<uint8_t> bytes;
    GptqStats st;
    const bool solved = GptqSolve(w.data(), N, K, std::move(h), opts.gptq, &q, opts.threads, &st);
    ReportGptq(name, K, st, out);
    if (solved) {
      bytes = q.Take();
    } else {  // H never positive definite: the type's own encoding
      bytes.resize(static_cast<size_t>(N) * RowBytes(bt->type, K));
      for (int64_t n = 0; n < N; ++n)
        tr.encode(w.data() + n * K, bt->importance ? importance.data() : nullptr, bytes.data() + n * RowBytes(bt->type, K), K);
    }
    tr.decode(bytes.data(), w.data(), N * K);
    out->encoded.emplace_back(name, std::move(bytes));
    return w;
  }
  GptqStats st;
  IntQuantized q = GptqQuantize(w.data(), N, K, std::move(h), opts.spec, opts.gptq, opts.threads, &st);
  ReportGptq(name, K, st, out);
  q.DequantizeRows(0, N, w.data());
  out->quantized.emplace_back(name, std::move(q));
  return w;
}

// The sets GPTQ solves in turn: true sequential (each set's Hessians taken
// with the earlier sets already quantized) or the whole layer at once.
std::vector<std::vector<std::string>> GptqSets(const BlockLayout& block, bool true_sequential) {
  if (true_sequential) return block.input_sets;
  std::vector<std::vector<std::string>> sets(1);
  for (const auto& set : block.input_sets) sets[0].insert(sets[0].end(), set.begin(), set.end());
  return sets;
}

// The first linear of the input set a linear belongs to: the one whose input
// (and so Hessian) it shares.
std::string InputOf(const BlockLayout& block, const std::string& short_name) {
  for (const auto& set : block.input_sets) {
    if (std::find(set.begin(), set.end(), short_name) != set.end()) return set.front();
  }
  return short_name;
}

class LayerwiseRun {
 public:
  LayerwiseRun(const Model& model, LlamaEngine& engine, const LayerwiseOptions& opts, LayerwiseTimings& tm)
      : model_(model), block_(BlockOfArch(model.architecture)), engine_(engine), opts_(opts), tm_(tm),
        E_(engine.hparams().n_embd) {}

  Status Embed(const std::vector<std::vector<int32_t>>& calib) {
    x_.resize(calib.size());
    auto t0 = Clock::now();
    for (size_t s = 0; s < calib.size(); ++s) QF_RETURN_IF_ERROR(engine_.Embed(calib[s], &x_[s]));
    tm_.forward_s += SecondsSince(t0);
    return Status::Ok();
  }

  Status Layer(int64_t l, LayerOutput* out) {
    Weights weights;
    for (const auto& name : LayerLinears(block_, l)) {
      QF_ASSIGN_OR_RETURN(weights[name], ReadTensorF32(*model_.Find(name)));
      if (Wanted(opts_, name)) QF_RETURN_IF_ERROR(CheckFinite(model_, *model_.Find(name), weights[name]));
    }
    switch (opts_.method) {
      case Method::kRtn: return RtnLayer(l, weights, out);
      case Method::kGptq: return GptqLayer(l, weights, out);
      case Method::kAwq: return AwqLayer(engine_, model_, l, opts_, &weights, &x_, out, &tm_);
      default: break;
    }
    return Status::Error(std::string("internal: ") + MethodName(opts_.method) + " is not a layer-by-layer method");
  }

  // The output head: GPTQ on the final normed hidden states, otherwise round
  // to nearest (AutoAWQ never scales lm_head).
  Status Head(LayerOutput* out) {
    const ModelTensor* t = model_.Find("output.weight");
    const int64_t N = t->n_rows(), K = t->ne[0];
    QF_RETURN_IF_ERROR(opts_.spec.Check(K).WithContext(model_.path + ": lm_head"));
    QF_ASSIGN_OR_RETURN(std::vector<float> w, ReadTensorF32(*t));
    QF_RETURN_IF_ERROR(CheckFinite(model_, *t, w));
    out->layer = -1;
    if (opts_.method != Method::kGptq) {
      out->quantized.emplace_back("output.weight", QuantizeRtn(w.data(), N, K, opts_.spec));
      return Status::Ok();
    }
    Hessian h(K);
    std::vector<float> normed;
    auto h0 = Clock::now();
    for (const auto& xs : x_) {
      normed.resize(xs.size());
      QF_RETURN_IF_ERROR(engine_.Norm("output_norm.weight", xs.data(), Tokens(xs), normed.data()));
      h.Add(normed.data(), Tokens(xs));
    }
    tm_.hessian_s += SecondsSince(h0);
    auto s0 = Clock::now();
    GptqStats st;
    out->quantized.emplace_back("output.weight", GptqQuantize(w.data(), N, K, h.Matrix(), opts_.spec, opts_.gptq, opts_.threads, &st));
    ReportGptq("output.weight", K, st, out);
    tm_.solve_s += SecondsSince(s0);
    return Status::Ok();
  }

  // Whether a layer read back from the journal fits this run: each entry a
  // linear of layer l that this run quantizes, in the form it would write
  // (grid or blocks), with the model's shape and this run's grid; each
  // changed tensor the model's size. Replay and the sink rely on it.
  Status CheckJournaled(int64_t l, const LayerOutput& out) const {
    if (out.layer != l) return Status::Error("holds layer " + std::to_string(out.layer) + ", expected " + std::to_string(l));
    std::set<std::string> linears, seen;
    for (const auto& name : LayerLinears(block_, l)) {
      if (Wanted(opts_, name)) linears.insert(name);
    }
    auto linear = [&](const std::string& name, bool blocks) -> Status {
      if (!linears.count(name) || BlockTargetOf(opts_, name).has_value() != blocks || !seen.insert(name).second) {
        return Status::Error("'" + name + "' is not a linear of layer " + std::to_string(l) + " this run quantizes " +
                             (blocks ? "into blocks" : "into the integer grid") + " (or appears twice)");
      }
      return Status::Ok();
    };
    for (const auto& [name, q] : out.quantized) {
      QF_RETURN_IF_ERROR(linear(name, false));
      auto [N, K] = ShapeOf(model_, name);
      const IntQuantSpec& a = q.spec;
      const IntQuantSpec& b = opts_.spec;
      if (q.rows != N || q.cols != K || q.n_groups != b.Groups(K) || a.bits != b.bits || a.group_size != b.group_size ||
          a.symmetric != b.symmetric || a.scale_dtype != b.scale_dtype || a.zero_at_least_one != b.zero_at_least_one) {
        return Status::Error("'" + name + "' is [" + std::to_string(q.rows) + ", " + std::to_string(q.cols) + "] at " +
                             std::to_string(a.bits) + " bits, group " + std::to_string(a.group_size) + "; this run has [" +
                             std::to_string(N) + ", " + std::to_string(K) + "] at " + std::to_string(b.bits) + " bits, group " +
                             std::to_string(b.group_size));
      }
    }
    for (const auto& [name, bytes] : out.encoded) {
      QF_RETURN_IF_ERROR(linear(name, true));
      auto [N, K] = ShapeOf(model_, name);
      const size_t expected = static_cast<size_t>(N) * RowBytes(BlockTargetOf(opts_, name)->type, K);
      if (bytes.size() != expected) {
        return Status::Error("'" + name + "' holds " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(expected));
      }
    }
    for (const auto& [name, v] : out.changed) {
      const ModelTensor* t = model_.Find(name);
      if (t == nullptr || static_cast<int64_t>(v.size()) != t->n_elements() || !seen.insert(name).second) {
        return Status::Error("changed tensor '" + name + "' is not the model's, or not its size (" + std::to_string(v.size()) +
                             " values)");
      }
    }
    return Status::Ok();
  }

  // A layer read back from the journal (after CheckJournaled): carries the
  // calibration activations through it exactly as the run that computed it did (GPTQ: through the
  // quantized weights it produced; AWQ: through the float layer; RTN needs
  // no activations).
  Status Replay(int64_t l, const LayerOutput& out) {
    if (opts_.method == Method::kRtn) return Status::Ok();
    Weights dequant;
    if (opts_.method == Method::kGptq) {
      for (const auto& [name, q] : out.quantized) {
        auto& d = dequant[name];
        d.resize(static_cast<size_t>(q.rows * q.cols));
        q.DequantizeRows(0, q.rows, d.data());
      }
      for (const auto& [name, bytes] : out.encoded) {
        auto [N, K] = ShapeOf(model_, name);
        auto& d = dequant[name];
        d.resize(static_cast<size_t>(N * K));
        TraitsOf(BlockTargetOf(opts_, name)->type).decode(bytes.data(), d.data(), N * K);
      }
      for (auto& [name, d] : dequant) engine_.SetWeightOverride(name, &d);
    } else {
      engine_.ClearWeightOverrides();  // AWQ passes the float layer's outputs on
    }
    auto f0 = Clock::now();
    Status s = Status::Ok();
    for (auto& xs : x_) {
      s = engine_.ForwardLayer(l, xs.data(), Tokens(xs));
      if (!s.ok()) break;
    }
    tm_.forward_s += SecondsSince(f0);
    engine_.ClearWeightOverrides();
    return s;
  }

 private:
  int64_t Tokens(const std::vector<float>& xs) const { return static_cast<int64_t>(xs.size()) / E_; }

  Status RtnLayer(int64_t l, Weights& weights, LayerOutput* out) {
    for (const auto& name : LayerLinears(block_, l)) {
      if (!Wanted(opts_, name)) continue;
      auto [N, K] = ShapeOf(model_, name);
      auto s0 = Clock::now();
      out->quantized.emplace_back(name, QuantizeRtn(weights[name].data(), N, K, opts_.spec));
      tm_.solve_s += SecondsSince(s0);
    }
    // RTN needs no activations: the next layer's inputs are never read.
    return Status::Ok();
  }

  // One Hessian per distinct input of the set: the first linear reading it.
  // Fills hessian_of (linear -> the linear whose Hessian it uses) and
  // returns the linear after whose input the pass can stop.
  std::string SetHessians(const std::string& p, const std::vector<std::string>& set, std::map<std::string, Hessian>* hessians,
                          std::map<std::string, std::string>* hessian_of) const {
    std::string last_first;
    for (const auto& short_name : set) {
      const std::string name = p + short_name + ".weight";
      const std::string input = p + InputOf(block_, short_name) + ".weight";
      if (hessians->find(input) == hessians->end()) {
        last_first = input;
        hessians->emplace(input, Hessian(ShapeOf(model_, input).second));
      }
      (*hessian_of)[name] = input;
    }
    return last_first;
  }

  // Runs the layer on every sequence up to stop_at, accumulating Hessians.
  Status CollectHessians(int64_t l, const std::string& stop_at, std::map<std::string, Hessian>* hessians) {
    engine_.SetActivationHook([&](const std::string& name, const float* a, int64_t rows, int64_t cols) {
      auto it = hessians->find(name);
      if (it == hessians->end() || cols != it->second.dim()) return;
      auto h0 = Clock::now();
      it->second.Add(a, rows);
      tm_.hessian_s += SecondsSince(h0);
    });
    std::vector<float> scratch;
    auto f0 = Clock::now();
    const double hessian_before = tm_.hessian_s;
    Status s = Status::Ok();
    for (const auto& xs : x_) {
      scratch = xs;
      s = engine_.ForwardLayer(l, scratch.data(), Tokens(xs), stop_at);
      if (!s.ok()) break;
    }
    tm_.forward_s += SecondsSince(f0) - (tm_.hessian_s - hessian_before);  // the hook's Hessian time is its own
    engine_.SetActivationHook(nullptr);
    return s;
  }

  Status GptqLayer(int64_t l, Weights& weights, LayerOutput* out) {
    const std::string p = "blk." + std::to_string(l) + ".";
    Weights dequant;  // quantized weights, as the next passes see them
    for (const auto& set : GptqSets(block_, opts_.true_sequential)) {
      std::map<std::string, Hessian> hessians;
      std::map<std::string, std::string> hessian_of;
      // The pass can stop once the last distinct input of the set is seen.
      const std::string stop_at = SetHessians(p, set, &hessians, &hessian_of);
      QF_RETURN_IF_ERROR(CollectHessians(l, stop_at, &hessians));
      std::map<std::string, int> users;  // Hessian -> linears still to read it
      for (const auto& short_name : set) {
        const std::string name = p + short_name + ".weight";
        if (Wanted(opts_, name)) ++users[hessian_of[name]];
      }
      for (const auto& short_name : set) {
        const std::string name = p + short_name + ".weight";
        if (!Wanted(opts_, name)) continue;
        auto [N, K] = ShapeOf(model_, name);
        auto s0 = Clock::now();
        // The last linear reading a Hessian takes it (no copy of a K x K matrix).
        const std::string& input = hessian_of[name];
        std::vector<float> h = --users[input] == 0 ? hessians.at(input).TakeMatrix() : hessians.at(input).Matrix();
        dequant[name] = GptqLinear(name, std::move(weights[name]), N, K, std::move(h), opts_, out);
        tm_.solve_s += SecondsSince(s0);
        engine_.SetWeightOverride(name, &dequant[name]);
      }
    }
    // The layer's outputs with its quantized weights feed the next layer.
    auto f0 = Clock::now();
    for (auto& xs : x_) QF_RETURN_IF_ERROR(engine_.ForwardLayer(l, xs.data(), Tokens(xs)));
    tm_.forward_s += SecondsSince(f0);
    engine_.ClearWeightOverrides();
    return Status::Ok();
  }

  const Model& model_;
  const BlockLayout& block_;
  LlamaEngine& engine_;
  const LayerwiseOptions& opts_;
  LayerwiseTimings& tm_;
  const int64_t E_;
  std::vector<std::vector<float>> x_;  // the activations entering the current layer, one buffer per sequence
};

// Fault injection for the resume tests: QFORGE_TEST_KILL_AFTER_LAYERS=N
// kills the process (SIGKILL, no cleanup) once N layers are journaled, as
// an out-of-memory kill or a power cut would.
void KillForTestAfter(int64_t layers_done) {
  static const char* env = std::getenv("QFORGE_TEST_KILL_AFTER_LAYERS");
  if (env != nullptr && std::atoll(env) == layers_done) std::raise(SIGKILL);
}

}  // namespace

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

Status CheckLayerwise(const Model& model, const LayerwiseOptions& opts) {
  QF_ASSIGN_OR_RETURN(std::unique_ptr<LlamaEngine> engine, LlamaEngine::Create(model, 1));
  return CheckLinears(model, BlockOfArch(model.architecture), engine->hparams().n_layer, opts);
}

Status QuantizeLayerwise(const Model& model, const std::vector<std::vector<int32_t>>& calib,
                         const LayerwiseOptions& opts, const LayerSink& sink, LayerwiseTimings* timings) {
  LayerwiseTimings local;
  LayerwiseTimings& tm = timings ? *timings : local;
  tm = LayerwiseTimings{};
  if (opts.method != Method::kRtn && calib.empty()) {
    return Status::Error(std::string(MethodName(opts.method)) +
                         ": no calibration sequences (the text is shorter than one sequence)");
  }
  QF_ASSIGN_OR_RETURN(std::unique_ptr<LlamaEngine> engine, LlamaEngine::Create(model, opts.threads));
  const int64_t n_layer = engine->hparams().n_layer;
  QF_RETURN_IF_ERROR(CheckLinears(model, BlockOfArch(model.architecture), n_layer, opts));
  // The calibration runs at its sequence length (LongRoPE picks its table by it).
  if (!calib.empty()) engine->SetContextLength(static_cast<int64_t>(calib.front().size()));
  LayerwiseRun run(model, *engine, opts, tm);
  QF_RETURN_IF_ERROR(run.Embed(calib));
  int64_t kept = opts.journal ? std::min(opts.journal->layers_done(), n_layer) : 0;
  std::string dropped;  // why the journal's later layers were not used
  for (int64_t l = 0; l < n_layer; ++l) {
    LayerOutput out;
    if (l < kept) {
      // A layer that does not read back whole, or does not fit this run,
      // is computed again, with the rest after it.
      auto loaded = opts.journal->Load(l);
      const Status fits = loaded.ok() ? run.CheckJournaled(l, *loaded).WithContext(opts.journal->dir()) : loaded.status();
      if (fits.ok()) {
        out = std::move(*loaded);
        QF_RETURN_IF_ERROR(run.Replay(l, out));
      } else {
        kept = l;
        dropped = fits.message();
        QF_RETURN_IF_ERROR(opts.journal->Truncate(l));
      }
    }
    if (l >= kept) {
      out = LayerOutput{};
      out.layer = l;
      QF_RETURN_IF_ERROR(run.Layer(l, &out));
      if (!dropped.empty()) {
        out.warnings.push_back("resume journal: layer " + std::to_string(l) + " could not be used (" + dropped +
                               "); computed again from there");
        dropped.clear();
      }
      if (opts.journal) {
        QF_RETURN_IF_ERROR(opts.journal->Save(out));
        KillForTestAfter(opts.journal->layers_done());
      }
    }
    QF_RETURN_IF_ERROR(sink(std::move(out)));
    if (opts.on_layer) opts.on_layer(l + 1, n_layer);
  }
  if (opts.quantize && opts.quantize("output.weight") && model.Find("output.weight") != nullptr) {
    LayerOutput out;
    QF_RETURN_IF_ERROR(run.Head(&out));
    QF_RETURN_IF_ERROR(sink(std::move(out)));
  }
  return Status::Ok();
}

}  // namespace qforge
