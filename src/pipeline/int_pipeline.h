// The whole integer weight-only run: a checkpoint Plan (BuildIntPlan) ->
// calibration text -> token sequences -> layer-by-layer RTN / GPTQ / AWQ ->
// a checkpoint folder in the chosen GPU layout, streamed layer by layer.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/model.h"
#include "pipeline/calibration.h"
#include "pipeline/layerwise.h"
#include "pipeline/run_plan.h"
#include "plan/int_plan.h"
#include "sinks/int_checkpoint.h"

namespace qforge {

struct IntPipelineOptions {
  IntPlanOptions plan;              // scheme, layout, method, act-order, ignore, lm_head, requantize
  GptqOptions gptq;                 // damp and block size (act-order comes from the plan options)
  bool true_sequential = true;
  uint64_t max_shard_bytes = 5000000000ull;
  CalibrationOptions calib;         // required for GPTQ and AWQ
  int64_t awq_search_samples = 16;  // sequences AWQ's scale-search loss runs on (0: all)
  int64_t min_expert_tokens = 32;   // MoE: experts routed fewer calibration tokens are rounded to nearest
  int threads = 1;
  std::function<void(int64_t done, int64_t total)> on_layer;
  bool resume = false;  // go on from <out_dir>.qforge-resume (GPTQ, AWQ)
};

struct IntPipelineReport {
  LayerwiseTimings timings;
  int64_t samples = 0, seqlen = 0;
  double pack_write_s = 0, total_s = 0;
  uint64_t bytes = 0;
  int shards = 0;
  int64_t quantized_linears = 0;
  std::vector<std::string> warnings;
  int64_t resumed_layers = 0;
  std::vector<std::vector<int64_t>> expert_tokens;  // MoE: per layer, tokens routed to each expert
};

// Builds the plan from opts.plan, then runs it.
Status QuantizeToIntCheckpoint(const Model& model, const std::string& out_dir, const IntPipelineOptions& opts,
                               IntPipelineReport* report);
// Runs a plan already built (and printed) by BuildIntPlan.
Status QuantizeToIntCheckpoint(const Model& model, const Plan& plan, const std::string& out_dir,
                               const IntPipelineOptions& opts, IntPipelineReport* report);

}  // namespace qforge
