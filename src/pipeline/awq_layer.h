// AWQ on one decoder layer of the LLaMA family, as AutoAWQ runs it: record
// the layer's inputs, search the per-channel scales of each group of linears
// sharing an input, fold them into the operation before, clip, quantize.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/llama_engine.h"
#include "pipeline/layerwise.h"

namespace qforge {

// One decoder layer: records the layer's inputs on x (sequences of the
// layer's input activations, replaced by the float layer's outputs),
// searches, folds and clips the float weights in *weights, and fills out.
Status AwqLayer(LlamaEngine& engine, const Model& model, int64_t layer, const LayerwiseOptions& opts,
                std::map<std::string, std::vector<float>>* weights, std::vector<std::vector<float>>* x,
                LayerOutput* out, LayerwiseTimings* tm);

}  // namespace qforge
