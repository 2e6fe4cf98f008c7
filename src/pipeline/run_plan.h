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
};

struct PlanRunReport {
  LayerwiseTimings timings;
  int64_t samples = 0, seqlen = 0;  // calibration sequences used
  int64_t layerwise_tensors = 0;    // recipes the layer-by-layer run produced
  double sink_s = 0;                // time inside the sink (packing, encoding, writing)
  std::vector<std::string> warnings;  // the layers' (LayerOutput::warnings), in order
};

Status RunPlan(const Model& model, const Plan& plan, Sink& sink, const PlanRunOptions& opts, PlanRunReport* report);

}  // namespace qforge
