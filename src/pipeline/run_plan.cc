#include "pipeline/run_plan.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "base/clock.h"
#include "base/sha256.h"
#include "io/output_file.h"

namespace qforge {
namespace {
namespace fs = std::filesystem;

// Feeds the sink the plan's recipes in order, as far as their values exist.
class PlanFeeder {
 public:
  PlanFeeder(const Plan& plan, Sink& sink, PlanRunReport& rep) : plan_(plan), sink_(sink), rep_(rep) {
    for (const auto& tp : plan.tensors) {
      if (tp.source->n_experts() > 1) stacked_.insert(tp.name);
    }
  }

  // Takes a finished layer's tensors. A stacked expert tensor comes as one
  // entry per expert, in order: grids are kept apart (each expert has its
  // own act-order), ggml rows are joined.
  void Take(LayerOutput&& out) {
    for (auto& [name, q] : out.quantized) {
      if (stacked_.count(name)) {
        ready_[name].int_experts.push_back(std::move(q));
      } else {
        ready_[name].int_grid = std::move(q);
      }
    }
    for (auto& [name, b] : out.encoded) {
      auto& dst = ready_[name].ggml;
      if (dst.empty()) {
        dst = std::move(b);
      } else {
        dst.insert(dst.end(), b.begin(), b.end());
      }
    }
    for (auto& [name, v] : out.changed) ready_[name].values = std::move(v);
  }

  // Adds recipes in plan order up to the first that is not ready: a
  // layerwise recipe not produced yet, or a tensor of a layer after
  // `done_layer` (the method may still change it).
  Status Flush(int64_t done_layer) {
    const auto t0 = Clock::now();
    while (next_ < plan_.tensors.size()) {
      const TensorPlan& tp = plan_.tensors[next_];
      auto it = ready_.find(tp.name);
      if (it == ready_.end() && (tp.layerwise() || BlockOf(tp.name) > done_layer)) break;
      EncodedTensor t;
      if (it != ready_.end()) {
        t = std::move(it->second);
        ready_.erase(it);
      }
      QF_RETURN_IF_ERROR(sink_.Add(tp, std::move(t)));
      tp.source->DropPages();  // its pages are not needed again
      ++next_;
    }
    rep_.sink_s += SecondsSince(t0);
    return Status::Ok();
  }

  Status Finish() {
    QF_RETURN_IF_ERROR(Flush(INT_MAX));
    if (next_ != plan_.tensors.size()) {
      return Status::Error("internal: tensor '" + plan_.tensors[next_].name + "' was never produced");
    }
    if (!ready_.empty()) return Status::Error("internal: tensor '" + ready_.begin()->first + "' is not in the plan");
    return Status::Ok();
  }

 private:
  const Plan& plan_;
  Sink& sink_;
  PlanRunReport& rep_;
  size_t next_ = 0;
  std::map<std::string, EncodedTensor> ready_;
  std::set<std::string> stacked_;
};

// The model's files as a run sees them: canonical path, and per file its
// name, size and modification time (a re-downloaded or retrained model
// with the same shapes is another model).
std::string ModelFilesLine(const Model& model) {
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(model.path, ec);
  std::vector<fs::path> files;
  if (fs::is_directory(root, ec)) {
    for (const auto& e : fs::directory_iterator(root, ec)) {
      const std::string ext = e.path().extension().string();
      if (e.is_regular_file() && (ext == ".safetensors" || ext == ".json" || ext == ".model")) files.push_back(e.path());
    }
  } else {
    files.push_back(root);
  }
  std::sort(files.begin(), files.end());
  std::string line = "model " + root.string() + ":";
  for (const auto& f : files) {
    const auto size = fs::file_size(f, ec);
    const auto mtime = fs::last_write_time(f, ec).time_since_epoch().count();
    line += " " + f.filename().string() + "=" + std::to_string(size) + "@" + std::to_string(mtime);
  }
  return line;
}

std::string FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return std::to_string(u);
}

// What makes two runs the same run for --resume: qforge's version, the
// model's files, every recipe (with its importance), the layer-by-layer
// options and the calibration tokens. Threads are left out: the run gives
// the same bytes with any count (tests/pipeline/determinism_test.cc).
LayerJournal::RunId RunFingerprint(const Model& model, const Plan& plan, const LayerwiseOptions& lo, const Calibration& calib) {
  LayerJournal::RunId id;
  std::string& s = id.description;
  s = std::string("qforge ") + QFORGE_VERSION + "\n" + ModelFilesLine(model) + "\n";
  s += std::string("method ") + MethodName(lo.method) + " damp=" + FloatBits(lo.gptq.damp) + " block=" +
       std::to_string(lo.gptq.block_size) + " act_order=" + std::to_string(lo.gptq.act_order) + " static_groups=" +
       std::to_string(lo.gptq.static_groups) + " true_sequential=" + std::to_string(lo.true_sequential) +
       " awq_search_samples=" + std::to_string(lo.awq_search_samples) + "\n";
  s += "layout " + std::to_string(static_cast<int>(plan.layout)) + " act_order_groups=" + std::to_string(plan.act_order_groups) +
       "\n";
  Sha256 h;
  for (const auto& tp : plan.tensors) {
    s += "tensor " + tp.name + " " + GgmlTypeName(tp.type) + " " + MethodName(tp.method);
    if (tp.int_scheme) {
      const IntQuantSpec& q = *tp.int_scheme;
      s += " int" + std::to_string(q.bits) + " group=" + std::to_string(q.group_size) + (q.symmetric ? " sym " : " asym ") +
           ScaleDtypeName(q.scale_dtype) + (q.zero_at_least_one ? " zero>=1" : "");
    }
    if (tp.importance) {
      Sha256 imp;
      imp.Update(tp.importance->data(), tp.importance->size() * sizeof(float));
      s += " importance=" + imp.FinishHex().substr(0, 16);
    }
    s += "\n";
  }
  s += "calibration " + std::to_string(calib.sequences.size()) + " x " + std::to_string(calib.seqlen) + "\n";
  h.Update(s.data(), s.size());
  for (const auto& seq : calib.sequences) {
    const int64_t n = static_cast<int64_t>(seq.size());
    h.Update(&n, sizeof n);
    h.Update(seq.data(), seq.size() * sizeof(int32_t));
  }
  id.hash = h.FinishHex();
  return id;
}

}  // namespace

Status RunPlan(const Model& model, const Plan& plan, Sink& sink, const PlanRunOptions& opts, PlanRunReport* report) {
  PlanRunReport local;
  PlanRunReport& rep = report ? *report : local;
  rep = PlanRunReport{};
  std::unordered_map<std::string, const TensorPlan*> layerwise;
  for (const auto& tp : plan.tensors) {
    if (tp.layerwise()) layerwise[tp.name] = &tp;
  }
  LayerwiseOptions lo = opts.layerwise;
  lo.quantize = [&](const std::string& name) { return layerwise.count(name) > 0; };
  lo.block_target = [&](const std::string& name) -> std::optional<LayerwiseOptions::BlockTarget> {
    auto it = layerwise.find(name);
    if (it == layerwise.end() || it->second->int_scheme) return std::nullopt;
    return LayerwiseOptions::BlockTarget{it->second->type, it->second->importance.get()};
  };
  // Checks and calibration come first: they fail before any output exists.
  if (!layerwise.empty()) QF_RETURN_IF_ERROR(CheckLayerwise(model, lo));
  Calibration calib;
  if (!layerwise.empty() && opts.layerwise.method != Method::kRtn) {
    QF_ASSIGN_OR_RETURN(calib, LoadCalibration(model, opts.calib, MethodName(opts.layerwise.method)));
    rep.samples = static_cast<int64_t>(calib.sequences.size());
    rep.seqlen = calib.seqlen;
  }
  std::optional<LayerJournal> journal;
  if (!layerwise.empty() && opts.layerwise.method != Method::kRtn && !opts.journal_dir.empty()) {
    QF_ASSIGN_OR_RETURN(journal, LayerJournal::Open(opts.journal_dir, RunFingerprint(model, plan, lo, calib), opts.resume));
    lo.journal = &*journal;
    SetInterruptNote("qforge: interrupted; finished layers are kept in " + journal->dir() +
                     ": the same command with --resume goes on from there");
  }
  QF_RETURN_IF_ERROR(sink.Begin(plan));
  PlanFeeder feeder(plan, sink, rep);
  if (layerwise.empty()) {
    QF_RETURN_IF_ERROR(feeder.Finish());
    return sink.Commit();
  }

  QF_RETURN_IF_ERROR(feeder.Flush(-1));  // what precedes the decoder layers
  auto on_layer = [&](LayerOutput&& out) -> Status {
    std::set<std::string> produced;  // a stacked tensor's experts count once
    for (const auto& e : out.quantized) produced.insert(e.first);
    for (const auto& e : out.encoded) produced.insert(e.first);
    rep.layerwise_tensors += static_cast<int64_t>(produced.size());
    if (!out.expert_tokens.empty() && out.layer >= 0) {
      rep.expert_tokens.resize(std::max(rep.expert_tokens.size(), static_cast<size_t>(out.layer + 1)));
      rep.expert_tokens[static_cast<size_t>(out.layer)] = out.expert_tokens;
    }
    rep.warnings.insert(rep.warnings.end(), out.warnings.begin(), out.warnings.end());
    const int64_t done = out.layer < 0 ? INT_MAX : out.layer;
    feeder.Take(std::move(out));
    return feeder.Flush(done);
  };
  if (Status s = QuantizeLayerwise(model, calib.sequences, lo, on_layer, &rep.timings); !s.ok()) {
    if (!journal || journal->layers_done() == 0) return s;
    return Status::Error(s.message() + " (the " + std::to_string(journal->layers_done()) + " finished layers are kept in " +
                         journal->dir() + ": the same command with --resume goes on from there)");
  }
  if (journal) rep.resumed_layers = journal->resumed();
  QF_RETURN_IF_ERROR(feeder.Finish());
  const auto t0 = Clock::now();
  QF_RETURN_IF_ERROR(sink.Commit());
  rep.sink_s += SecondsSince(t0);
  if (journal) {
    journal->Remove();  // the output holds it all now
    SetInterruptNote("");
  }
  return Status::Ok();
}

}  // namespace qforge
