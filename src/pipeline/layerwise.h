// Layer-by-layer weight quantization of the LLaMA family's linear layers
// (RTN, GPTQ, AWQ). Memory holds one decoder layer's weights and the
// calibration activations entering it; each finished layer is handed to a
// sink at once, and its quantized outputs become the next layer's inputs
// (GPTQ; AWQ uses the float outputs, as AutoAWQ does).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/gptq.h"
#include "algorithms/layer_output.h"
#include "codecs/ggml_types.h"
#include "codecs/int_group.h"
#include "model/model.h"
#include "pipeline/journal.h"
#include "qforge/status.h"

namespace qforge {

struct LayerwiseOptions {
  Method method = Method::kGptq;
  IntQuantSpec spec;
  GptqOptions gptq;
  bool true_sequential = true;  // GPTQ: q,k,v -> o -> gate,up -> down, each on the others' quantized outputs
  int64_t awq_search_samples = 16;  // AWQ: sequences the scale search's loss runs on (0: all)
  int threads = 1;
  // How the output stores a float tensor's value (a BF16 or F16 round trip);
  // null: exactly. AWQ's search scores a norm it folds into as the runtime
  // will read it back, which matters where the stored value is w and the
  // runtime uses 1 + w (Gemma: a norm divided by s is stored as
  // (1 + w) / s - 1, whose rounding grows as (1 + w) / s shrinks).
  std::function<float(float)> round_stored;
  // Which linear weights (GGUF names) to quantize; the rest stay float.
  std::function<bool(const std::string&)> quantize;
  // GPTQ into ggml blocks: for a linear it names, GPTQ fills blocks of that
  // type (LayerOutput::encoded) instead of the integer grid. The importance
  // that fits each block's scales is the imatrix when given, else the
  // Hessian's diagonal.
  struct BlockTarget {
    GgmlType type = GgmlType::F32;
    const std::vector<float>* importance = nullptr;  // ne0 values, or null
  };
  std::function<std::optional<BlockTarget>(const std::string&)> block_target;
  // Mixture of experts: an expert routed fewer calibration tokens than this
  // is rounded to nearest (RTN) instead of calibrated on too few rows (GPTQ's
  // Hessian, AWQ's scales and clipping); a warning names it.
  int64_t min_expert_tokens = 32;
  // Memory for the per-expert GPTQ Hessians of one input set (K x K floats
  // per expert): when all experts do not fit, they are collected in chunks,
  // one pass of the layer per chunk.
  uint64_t expert_hessian_bytes = 1ull << 30;
  // Called after each layer with (layer index, layers total).
  std::function<void(int64_t, int64_t)> on_layer;
  // Where finished layers are kept for --resume (null: nowhere). Layers the
  // journal already holds are read back instead of computed, and the
  // calibration activations are carried through them as the first run did.
  LayerJournal* journal = nullptr;
};

struct LayerwiseTimings {
  double forward_s = 0, hessian_s = 0, solve_s = 0, search_s = 0;
};

// Calibration sequences: chunks of seqlen tokens from the text's tokens,
// each starting with bos when bos >= 0, at most max_samples of them.
std::vector<std::vector<int32_t>> CalibrationChunks(const std::vector<int32_t>& tokens, int64_t seqlen,
                                                    int64_t max_samples, int32_t bos);

// The warning for an expert calibrated on too few routed tokens and
// rounded to nearest instead; `what` says what else it went without.
std::string ExpertFallbackWarning(const std::string& expert, int64_t tokens, int64_t min_tokens, const std::string& what);

// What QuantizeLayerwise checks before its first layer (the engine runs the
// architecture; every linear to quantize exists and fits its target), for
// callers that must refuse before writing anything.
Status CheckLayerwise(const Model& model, const LayerwiseOptions& opts);

// calib may be empty for RTN. Quantized layers reach sink in layer order.
Status QuantizeLayerwise(const Model& model, const std::vector<std::vector<int32_t>>& calib,
                         const LayerwiseOptions& opts, const LayerSink& sink, LayerwiseTimings* timings);

}  // namespace qforge
