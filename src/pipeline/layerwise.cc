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

int64_t ExpertsOf(const Model& model, const std::string& name) { return model.Find(name)->n_experts(); }

// The shape of one LayerOutput entry of a linear: [rows, cols] of the
// linear, or of one expert of a stacked tensor.
std::pair<int64_t, int64_t> EntryShape(const Model& model, const std::string& name) {
  auto [N, K] = ShapeOf(model, name);
  return {N / ExpertsOf(model, name), K};
}

bool Wanted(const LayerwiseOptions& opts, const std::string& name) { return !opts.quantize || opts.quantize(name); }

std::optional<LayerwiseOptions::BlockTarget> BlockTargetOf(const LayerwiseOptions& opts, const std::string& name) {
  if (!opts.block_target) return std::nullopt;
  return opts.block_target(name);
}

// Every linear to quantize exists and fits its target's grouping (a group
// size that does not divide inputs names them all).
Status CheckLinears(const Model& model, const BlockLayout& block, int64_t n_layer, const LayerwiseOptions& opts) {
  if (model.expert_count > 0 && block.expert_linears.empty()) {
    return Status::Error(model.path + ": architecture '" + model.architecture + "' has " + std::to_string(model.expert_count) +
                         " experts per layer, but qforge knows no expert layout for it");
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

// Round to nearest, into the linear's target (its integer grid or its
// ggml blocks with the imatrix when given), in place; w becomes the values
// the runtime will read.
void RtnLinear(const std::string& name, float* w, int64_t N, int64_t K, const float* imatrix, const LayerwiseOptions& opts,
               LayerOutput* out) {
  if (auto bt = BlockTargetOf(opts, name)) {
    const GgmlTypeTraits& tr = TraitsOf(bt->type);
    std::vector<uint8_t> bytes(static_cast<size_t>(N) * RowBytes(bt->type, K));
    for (int64_t n = 0; n < N; ++n) tr.encode(w + n * K, imatrix, bytes.data() + n * RowBytes(bt->type, K), K);
    tr.decode(bytes.data(), w, N * K);
    out->encoded.emplace_back(name, std::move(bytes));
    return;
  }
  IntQuantized q = QuantizeRtn(w, N, K, opts.spec);
  q.DequantizeRows(0, N, w);
  out->quantized.emplace_back(name, std::move(q));
}

// GPTQ on one linear: takes its weights w and returns, in the same storage
// (one layer's weights are never held twice), the weights it ends with, as
// the next passes see them. Into ggml blocks when the linear has a block
// target.
// label names the linear in warnings (an expert: "<name> expert <e>");
// imatrix: the K importance values of these rows for a block target (null:
// the Hessian's diagonal).
std::vector<float> GptqLinear(const std::string& name, const std::string& label, std::vector<float> w, int64_t N, int64_t K,
                              std::vector<float> h, const float* imatrix, const LayerwiseOptions& opts, LayerOutput* out) {
  if (auto bt = BlockTargetOf(opts, name)) {
    std::vector<float> importance;
    if (imatrix != nullptr) {
      importance.assign(imatrix, imatrix + K);
    } else {
      importance.resize(static_cast<size_t>(K));
      for (int64_t k = 0; k < K; ++k) importance[static_cast<size_t>(k)] = h[static_cast<size_t>(k * K + k)];
    }
    GgmlBlockQuantizer q(bt->type, N, K, importance, opts.threads);
    GptqStats st;
    const bool solved = GptqSolve(w.data(), N, K, std::move(h), opts.gptq, &q, opts.threads, &st);
    ReportGptq(label, K, st, out);
    if (!solved) {  // H never positive definite: the type's own encoding
      RtnLinear(name, w.data(), N, K, imatrix, opts, out);
      return w;
    }
    std::vector<uint8_t> bytes = q.Take();
    TraitsOf(bt->type).decode(bytes.data(), w.data(), N * K);
    out->encoded.emplace_back(name, std::move(bytes));
    return w;
  }
  GptqStats st;
  IntQuantized q = GptqQuantize(w.data(), N, K, std::move(h), opts.spec, opts.gptq, opts.threads, &st);
  ReportGptq(label, K, st, out);
  q.DequantizeRows(0, N, w.data());
  out->quantized.emplace_back(name, std::move(q));
  return w;
}

// The imatrix values of expert e of a block target (a stacked tensor's
// imatrix holds K per expert; a plain one K), or null.
const float* ImatrixOf(const LayerwiseOptions& opts, const std::string& name, int64_t K, int64_t e) {
  auto bt = BlockTargetOf(opts, name);
  if (!bt || bt->importance == nullptr) return nullptr;
  const std::vector<float>& imp = *bt->importance;
  if (static_cast<int64_t>(imp.size()) >= (e + 1) * K) return imp.data() + e * K;
  return static_cast<int64_t>(imp.size()) == K ? imp.data() : nullptr;
}

// The sets GPTQ solves in turn: true sequential (each set's Hessians taken
// with the earlier sets already quantized) or the whole layer at once.
// Without true sequential, the stacked experts come first in one set (a
// layer's plain linears never read what its experts compute, so every
// Hessian is the float layer's).
std::vector<std::vector<std::string>> GptqSets(const BlockLayout& block, bool true_sequential) {
  if (true_sequential) return block.input_sets;
  std::vector<std::string> experts, plain;
  for (const auto& set : block.input_sets) {
    auto& into = block.IsExpertStack(set.front()) ? experts : plain;
    into.insert(into.end(), set.begin(), set.end());
  }
  std::vector<std::vector<std::string>> sets;
  if (!experts.empty()) sets.push_back(std::move(experts));
  sets.push_back(std::move(plain));
  return sets;
}

class LayerwiseRun {
 public:
  LayerwiseRun(const Model& model, LlamaEngine& engine, const LayerwiseOptions& opts, LayerwiseTimings& tm)
      : model_(model), block_(BlockOfModel(model)), engine_(engine), opts_(opts), tm_(tm),
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
    std::map<std::string, int64_t> entries;  // per linear: one, or one per expert
    for (const auto& name : LayerLinears(block_, l)) {
      if (Wanted(opts_, name)) linears.insert(name);
    }
    auto linear = [&](const std::string& name, bool blocks) -> Status {
      if (!linears.count(name) || BlockTargetOf(opts_, name).has_value() != blocks ||
          ++entries[name] > ExpertsOf(model_, name)) {
        return Status::Error("'" + name + "' is not a linear of layer " + std::to_string(l) + " this run quantizes " +
                             (blocks ? "into blocks" : "into the integer grid") + " (or appears too often)");
      }
      return Status::Ok();
    };
    for (const auto& [name, q] : out.quantized) {
      QF_RETURN_IF_ERROR(linear(name, false));
      auto [N, K] = EntryShape(model_, name);
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
      auto [N, K] = EntryShape(model_, name);
      const size_t expected = static_cast<size_t>(N) * RowBytes(BlockTargetOf(opts_, name)->type, K);
      if (bytes.size() != expected) {
        return Status::Error("'" + name + "' holds " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(expected));
      }
    }
    for (const auto& [name, v] : out.changed) {
      const ModelTensor* t = model_.Find(name);
      if (t == nullptr || static_cast<int64_t>(v.size()) != t->n_elements() || entries.count(name) || !seen.insert(name).second) {
        return Status::Error("changed tensor '" + name + "' is not the model's, or not its size (" + std::to_string(v.size()) +
                             " values)");
      }
    }
    for (const auto& [name, n] : entries) {
      if (n != ExpertsOf(model_, name)) {
        return Status::Error("'" + name + "' holds " + std::to_string(n) + " of " + std::to_string(ExpertsOf(model_, name)) +
                             " experts");
      }
    }
    if (!out.expert_tokens.empty() && static_cast<int64_t>(out.expert_tokens.size()) != model_.expert_count) {
      return Status::Error("coverage of " + std::to_string(out.expert_tokens.size()) + " experts, expected " +
                           std::to_string(model_.expert_count));
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
      // A stacked tensor's experts arrive in order: each appends its rows.
      for (const auto& [name, q] : out.quantized) {
        auto& d = dequant[name];
        const size_t at = d.size();
        d.resize(at + static_cast<size_t>(q.rows * q.cols));
        q.DequantizeRows(0, q.rows, d.data() + at);
      }
      for (const auto& [name, bytes] : out.encoded) {
        auto [N, K] = EntryShape(model_, name);
        auto& d = dequant[name];
        const size_t at = d.size();
        d.resize(at + static_cast<size_t>(N * K));
        TraitsOf(BlockTargetOf(opts_, name)->type).decode(bytes.data(), d.data() + at, N * K);
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
      auto [N, K] = EntryShape(model_, name);
      auto s0 = Clock::now();
      for (int64_t e = 0; e < ExpertsOf(model_, name); ++e) {
        out->quantized.emplace_back(name, QuantizeRtn(weights[name].data() + e * N * K, N, K, opts_.spec));
      }
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
      const std::string input = p + block_.InputOf(short_name) + ".weight";
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
    const Status s = PassThrough(l, stop_at);
    engine_.SetActivationHook(nullptr);
    return s;
  }

  Status GptqLayer(int64_t l, Weights& weights, LayerOutput* out) {
    const std::string p = "blk." + std::to_string(l) + ".";
    Weights dequant;  // quantized weights, as the next passes see them
    for (const auto& set : GptqSets(block_, opts_.true_sequential)) {
      if (block_.IsExpertStack(set.front())) {
        QF_RETURN_IF_ERROR(GptqExperts(l, set, weights, &dequant, out));
        continue;
      }
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
        dequant[name] = GptqLinear(name, name, std::move(weights[name]), N, K, std::move(h), ImatrixOf(opts_, name, K, 0),
                                   opts_, out);
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

  // GPTQ on a set of stacked expert linears: each expert on its own
  // Hessian, from the calibration rows routed to it (the expert hook),
  // collected for as many experts at a time as opts.expert_hessian_bytes
  // holds (one pass of the layer per chunk). An expert with fewer than
  // opts.min_expert_tokens rows is rounded to nearest. Each expert's result
  // replaces its rows in weights[name], which then moves to *dequant (one
  // copy of a stack at a time). Fills out->expert_tokens.
  Status GptqExperts(int64_t l, const std::vector<std::string>& set, Weights& weights, Weights* dequant, LayerOutput* out) {
    const std::string p = "blk." + std::to_string(l) + ".";
    std::vector<std::string> names;
    std::map<std::string, std::string> input_of;  // linear -> the Hessian's key (its input set's first linear)
    std::map<std::string, int64_t> cols, users;   // per key: columns, linears reading it
    for (const auto& short_name : set) {
      const std::string name = p + short_name + ".weight";
      if (!Wanted(opts_, name)) continue;
      names.push_back(name);
      const std::string input = p + block_.InputOf(short_name) + ".weight";
      input_of[name] = input;
      cols[input] = ShapeOf(model_, input).second;
      ++users[input];
    }
    if (names.empty()) return Status::Ok();
    const int64_t NE = ExpertsOf(model_, names.front());
    uint64_t per_expert = 0;
    for (const auto& [input, K] : cols) per_expert += static_cast<uint64_t>(K * K) * sizeof(float);
    const int64_t chunk = std::max<int64_t>(1, static_cast<int64_t>(opts_.expert_hessian_bytes / std::max<uint64_t>(1, per_expert)));
    std::vector<int64_t> tokens(static_cast<size_t>(NE), 0);
    for (int64_t e0 = 0; e0 < NE; e0 += chunk) {
      const int64_t e1 = std::min(NE, e0 + chunk);
      std::map<std::string, std::vector<Hessian>> h;
      for (const auto& [input, K] : cols) h[input].assign(static_cast<size_t>(e1 - e0), Hessian(K));
      engine_.SetExpertActivationHook([&](const std::string& name, int64_t e, const float* a, int64_t rows, int64_t c) {
        auto it = h.find(name);
        if (it == h.end() || e < e0 || e >= e1 || c != it->second[static_cast<size_t>(e - e0)].dim()) return;
        auto h0 = Clock::now();
        it->second[static_cast<size_t>(e - e0)].Add(a, rows);
        tm_.hessian_s += SecondsSince(h0);
      });
      const Status pass = PassThrough(l, "");
      engine_.SetExpertActivationHook(nullptr);
      QF_RETURN_IF_ERROR(pass);
      for (int64_t e = e0; e < e1; ++e) {
        const int64_t n = h.begin()->second[static_cast<size_t>(e - e0)].samples();
        tokens[static_cast<size_t>(e)] = n;
        std::map<std::string, int64_t> left = users;  // linears still to read each Hessian of this expert
        for (const auto& name : names) {
          auto [N, K] = EntryShape(model_, name);
          const std::string label = name + " expert " + std::to_string(e);
          const auto at = static_cast<std::ptrdiff_t>(e * N * K);
          std::vector<float> w(weights[name].begin() + at, weights[name].begin() + at + N * K);
          auto s0 = Clock::now();
          const float* imatrix = ImatrixOf(opts_, name, K, e);
          Hessian& he = h[input_of[name]][static_cast<size_t>(e - e0)];
          const bool last = --left[input_of[name]] == 0;
          if (n < opts_.min_expert_tokens) {
            RtnLinear(name, w.data(), N, K, imatrix, opts_, out);
            out->warnings.push_back(ExpertFallbackWarning(label, n, opts_.min_expert_tokens, ""));
          } else {
            w = GptqLinear(name, label, std::move(w), N, K, last ? he.TakeMatrix() : he.Matrix(), imatrix, opts_, out);
          }
          tm_.solve_s += SecondsSince(s0);
          std::copy(w.begin(), w.end(), weights[name].begin() + at);
        }
      }
    }
    for (const auto& name : names) {
      (*dequant)[name] = std::move(weights[name]);
      engine_.SetWeightOverride(name, &(*dequant)[name]);
    }
    out->expert_tokens = std::move(tokens);
    return Status::Ok();
  }

  // The layer on every calibration sequence (a copy: x_ stays), up to
  // stop_at, for the hooks the caller set; the hooks' time is their own.
  Status PassThrough(int64_t l, const std::string& stop_at) {
    std::vector<float> scratch;
    auto f0 = Clock::now();
    const double hessian_before = tm_.hessian_s;
    Status s = Status::Ok();
    for (const auto& xs : x_) {
      scratch = xs;
      s = engine_.ForwardLayer(l, scratch.data(), Tokens(xs), stop_at);
      if (!s.ok()) break;
    }
    tm_.forward_s += SecondsSince(f0) - (tm_.hessian_s - hessian_before);
    return s;
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

std::string ExpertFallbackWarning(const std::string& expert, int64_t tokens, int64_t min_tokens, const std::string& what) {
  return expert + ": " + std::to_string(tokens) + " calibration tokens routed to it (fewer than --min-expert-tokens " +
         std::to_string(min_tokens) + "); rounded to nearest (RTN)" + what;
}

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
  return CheckLinears(model, BlockOfModel(model), engine->hparams().n_layer, opts);
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
  QF_RETURN_IF_ERROR(CheckLinears(model, BlockOfModel(model), n_layer, opts));
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
