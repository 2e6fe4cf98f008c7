// The one driver of `quantize`: runs a Plan into a Sink. Recipes encoded
// from their source (copy, convert, RTN, imatrix) go straight to the sink;
// the rest (GPTQ, AWQ, integer-grid linears) come from the layer-by-layer
// run, and the sink receives everything in plan order as each layer
// finishes, so memory holds one layer.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "model/model.h"
#include "pipeline/calibration.h"
#include "pipeline/layerwise.h"
#include "plan/plan.h"
#include "sinks/sink.h"

namespace qforge {

struct PlanRunOptions {
  // Method, grid, GPTQ and AWQ options of the layer-by-layer run; its
  // quantize and block_target are filled from the plan.
  LayerwiseOptions layerwise;
  CalibrationOptions calib;  // for calibrated recipes
  // A calibrated run (GPTQ, AWQ) keeps each finished layer in this journal
  // folder (LayerJournal::DirFor(output)); empty: no journal. resume goes on
  // from the layers a journal of the same run holds. The journal is removed
  // once the sink has committed.
  std::string journal_dir;
  bool resume = false;
};

struct PlanRunReport {
  LayerwiseTimings timings;
  int64_t samples = 0, seqlen = 0;  // calibration sequences used
  int64_t layerwise_tensors = 0;    // recipes the layer-by-layer run produced
  double sink_s = 0;                // time inside the sink (packing, encoding, writing)
  std::vector<std::string> warnings;  // the layers' (LayerOutput::warnings), in order
  int64_t resumed_layers = 0;         // layers read back from the journal
  // Mixture of experts: per decoder layer, the calibration tokens routed to
  // each expert (LayerOutput::expert_tokens); empty for dense models and RTN.
  std::vector<std::vector<int64_t>> expert_tokens;
};

Status RunPlan(const Model& model, const Plan& plan, Sink& sink, const PlanRunOptions& opts, PlanRunReport* report);

}  // namespace qforge
