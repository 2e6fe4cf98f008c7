#include "pipeline/int_pipeline.h"

#include "base/clock.h"
#include "numeric/half.h"

namespace qforge {

Status QuantizeToIntCheckpoint(const Model& model, const std::string& out_dir, const IntPipelineOptions& opts,
                               IntPipelineReport* report) {
  QF_ASSIGN_OR_RETURN(Plan plan, BuildIntPlan(model, opts.plan));
  return QuantizeToIntCheckpoint(model, plan, out_dir, opts, report);
}

Status QuantizeToIntCheckpoint(const Model& model, const Plan& plan, const std::string& out_dir,
                               const IntPipelineOptions& opts, IntPipelineReport* report) {
  IntPipelineReport local;
  IntPipelineReport& rep = report ? *report : local;
  rep = IntPipelineReport{};
  rep.warnings = plan.warnings;
  const auto start = Clock::now();
  const Method method = opts.plan.method;
  IntCheckpointOptions co;
  co.method = method;
  co.gptq = opts.gptq;
  co.gptq.act_order = opts.plan.act_order;
  co.gptq.static_groups = opts.plan.static_groups;
  co.true_sequential = opts.true_sequential;
  co.max_shard_bytes = opts.max_shard_bytes;
  QF_ASSIGN_OR_RETURN(std::unique_ptr<IntCheckpointWriter> writer, IntCheckpointWriter::Create(model, out_dir, co));

  PlanRunOptions ro;
  LayerwiseOptions& lo = ro.layerwise;
  lo.method = method;
  lo.spec = plan.int_spec;
  lo.gptq = co.gptq;
  lo.true_sequential = opts.true_sequential;
  lo.threads = opts.threads;
  lo.awq_search_samples = opts.awq_search_samples;
  lo.min_expert_tokens = opts.min_expert_tokens;
  lo.on_layer = opts.on_layer;
  if (plan.float_type == GgmlType::F16) {
    lo.round_stored = [](float v) { return HalfToFloat(FloatToHalf(v)); };
  } else {
    lo.round_stored = [](float v) { return Bf16ToFloat(FloatToBf16(v)); };
  }
  ro.calib = opts.calib;
  ro.journal_dir = LayerJournal::DirFor(out_dir);
  ro.resume = opts.resume;
  PlanRunReport pr;
  QF_RETURN_IF_ERROR(RunPlan(model, plan, *writer, ro, &pr));
  rep.warnings.insert(rep.warnings.end(), pr.warnings.begin(), pr.warnings.end());
  rep.resumed_layers = pr.resumed_layers;
  rep.expert_tokens = pr.expert_tokens;
  rep.timings = pr.timings;
  rep.samples = pr.samples;
  rep.seqlen = pr.seqlen;
  rep.quantized_linears = pr.layerwise_tensors;
  rep.pack_write_s = pr.sink_s;
  rep.bytes = writer->bytes_written();
  rep.shards = writer->shards();
  rep.total_s = SecondsSince(start);
  return Status::Ok();
}

}  // namespace qforge
