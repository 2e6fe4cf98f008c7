// Calibration text -> token sequences, for every calibrated method.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"
#include "qforge/status.h"

namespace qforge {

struct CalibrationOptions {
  std::string text_path;     // the calibration text (--calib)
  int64_t samples = 128;     // at most this many sequences
  int64_t seqlen = 2048;     // clipped to the model's context and the text
};

struct Calibration {
  std::vector<std::vector<int32_t>> sequences;
  int64_t seqlen = 0;
};

// Tokenizes the text with the model's tokenizer and cuts it into sequences
// of seqlen tokens, each starting with BOS when the tokenizer adds one.
// what names the method in errors ("gptq needs calibration text ...").
Result<Calibration> LoadCalibration(const Model& model, const CalibrationOptions& opts, const std::string& what);

}  // namespace qforge
