#include "pipeline/run_plan.h"

#include <climits>
#include <map>
#include <unordered_map>

#include "base/clock.h"

namespace qforge {
namespace {

// Feeds the sink the plan's recipes in order, as far as their values exist.
class PlanFeeder {
 public:
  PlanFeeder(const Plan& plan, Sink& sink, PlanRunReport& rep) : plan_(plan), sink_(sink), rep_(rep) {}

  // Takes a finished layer's tensors.
  void Take(LayerOutput&& out) {
    for (auto& [name, q] : out.quantized) ready_[name].int_grid = std::move(q);
    for (auto& [name, b] : out.encoded) ready_[name].ggml = std::move(b);
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
};

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
  QF_RETURN_IF_ERROR(sink.Begin(plan));
  PlanFeeder feeder(plan, sink, rep);
  if (layerwise.empty()) {
    QF_RETURN_IF_ERROR(feeder.Finish());
    return sink.Commit();
  }

  QF_RETURN_IF_ERROR(feeder.Flush(-1));  // what precedes the decoder layers
  auto on_layer = [&](LayerOutput&& out) -> Status {
    rep.layerwise_tensors += static_cast<int64_t>(out.quantized.size() + out.encoded.size());
    rep.warnings.insert(rep.warnings.end(), out.warnings.begin(), out.warnings.end());
    const int64_t done = out.layer < 0 ? INT_MAX : out.layer;
    feeder.Take(std::move(out));
    return feeder.Flush(done);
  };
  QF_RETURN_IF_ERROR(QuantizeLayerwise(model, calib.sequences, lo, on_layer, &rep.timings));
  QF_RETURN_IF_ERROR(feeder.Finish());
  const auto t0 = Clock::now();
  QF_RETURN_IF_ERROR(sink.Commit());
  rep.sink_s += SecondsSince(t0);
  return Status::Ok();
}

}  // namespace qforge
