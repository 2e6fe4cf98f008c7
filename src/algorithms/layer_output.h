// What a layer-by-layer method hands to a sink: a decoder layer's quantized
// linears and the float tensors it changed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "codecs/int_group.h"
#include "plan/method.h"
#include "qforge/status.h"

namespace qforge {

struct LayerOutput {
  int64_t layer = 0;  // -1: the output head alone
  // GGUF name, rows in GGUF order. A stacked expert tensor
  // (ffn_*_exps, [cols, rows, n_expert]) appears once per expert, in expert
  // order, each entry that expert's [rows, cols] (act-order gives each
  // expert its own column order).
  std::vector<std::pair<std::string, IntQuantized>> quantized;
  // Linears quantized into ggml blocks: GGUF name, encoded rows in GGUF
  // order (a stacked tensor: once per expert, in expert order, as above).
  std::vector<std::pair<std::string, std::vector<uint8_t>>> encoded;
  // Float tensors the method changed (AWQ folds scales into norms and into
  // linears it leaves unquantized); rows in GGUF order.
  std::vector<std::pair<std::string, std::vector<float>>> changed;
  // What the method could not do as asked (dead inputs, a fallback to RTN).
  std::vector<std::string> warnings;
  // Mixture-of-experts layers under a calibrated method: the calibration
  // tokens routed to each expert (the coverage table); empty otherwise.
  std::vector<int64_t> expert_tokens;
};
using LayerSink = std::function<Status(LayerOutput&&)>;

}  // namespace qforge
