#include "pipeline/int_pipeline.h"

#include "base/clock.h"

namespace qforge {

IntMethod IntMethodOf(Method m) {
  switch (m) {
    case Method::kGptq: return IntMethod::kGptq;
    case Method::kAwq: return IntMethod::kAwq;
    default: return IntMethod::kRtn;
  }
}

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
  const IntMethod method = IntMethodOf(opts.plan.method);
  IntCheckpointOptions co;
  co.method = method;
  co.gptq = opts.gptq;
  co.gptq.act_order = opts.plan.act_order;
  co.gptq.static_groups = opts.plan.static_groups;
  co.true_sequential = opts.true_sequential;
  co.max_shard_bytes = opts.max_shard_bytes;
  QF_ASSIGN_OR_RETURN(std::unique_ptr<IntCheckpointWriter> writer, IntCheckpointWriter::Create(model, out_dir, plan, co));

  Calibration calib;
  if (method != IntMethod::kRtn) {
    QF_ASSIGN_OR_RETURN(calib, LoadCalibration(model, opts.calib, IntMethodName(method)));
    rep.samples = static_cast<int64_t>(calib.sequences.size());
    rep.seqlen = calib.seqlen;
  }

  LayerwiseOptions lo;
  lo.method = method;
  lo.spec = writer->spec();
  lo.gptq = co.gptq;
  lo.true_sequential = opts.true_sequential;
  lo.threads = opts.threads;
  lo.awq_search_samples = opts.awq_search_samples;
  lo.quantize = [&](const std::string& name) { return writer->Quantizes(name); };
  lo.on_layer = opts.on_layer;
  auto sink = [&](LayerOutput&& out) -> Status {
    const auto t0 = Clock::now();
    rep.quantized_linears += static_cast<int64_t>(out.quantized.size());
    Status s = writer->AddLayer(std::move(out));
    rep.pack_write_s += SecondsSince(t0);
    return s;
  };
  QF_RETURN_IF_ERROR(QuantizeLayerwise(model, calib.sequences, lo, sink, &rep.timings));
  const auto t0 = Clock::now();
  QF_RETURN_IF_ERROR(writer->Finish());
  rep.pack_write_s += SecondsSince(t0);
  rep.bytes = writer->bytes_written();
  rep.shards = writer->shards();
  rep.total_s = SecondsSince(start);
  return Status::Ok();
}

}  // namespace qforge
