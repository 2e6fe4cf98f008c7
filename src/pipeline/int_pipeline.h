// The whole integer weight-only run: calibration text -> token sequences ->
// layer-by-layer RTN / GPTQ / AWQ -> a checkpoint folder in the chosen GPU
// layout, streamed layer by layer.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "pipeline/layerwise.h"
#include "model/model.h"
#include "sinks/int_checkpoint.h"

namespace qforge {

struct IntPipelineOptions {
  IntCheckpointOptions checkpoint;  // layout, spec, method, GPTQ options, shards, ignore
  std::string calib_text;           // required for GPTQ and AWQ
  int64_t calib_samples = 128;
  int64_t calib_seqlen = 2048;      // clipped to the model's context and the text
  int64_t awq_search_samples = 16;  // sequences AWQ's scale-search loss runs on (0: all)
  int threads = 1;
  std::function<void(int64_t done, int64_t total)> on_layer;
};

struct IntPipelineReport {
  LayerwiseTimings timings;
  int64_t samples = 0, seqlen = 0;
  double pack_write_s = 0, total_s = 0;
  uint64_t bytes = 0;
  int shards = 0;
  int64_t quantized_linears = 0;
  std::vector<std::string> warnings;
};

// Parses a scheme name: W<bits>A16 with an optional _ASYM suffix
// (W4A16, W4A16_ASYM, W8A16, W2A16, W3A16).
Status ParseIntScheme(const std::string& scheme, IntQuantSpec* spec);

Status QuantizeToIntCheckpoint(const Model& model, const std::string& out_dir, const IntPipelineOptions& opts,
                               IntPipelineReport* report);

}  // namespace qforge
