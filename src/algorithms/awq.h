// AWQ (Lin et al.), as AutoAWQ runs it on a LLaMA decoder layer: per input
// channel scales found by a grid search that trades activation magnitude
// against weight magnitude, folded into the operation before the scaled
// linears (RMSNorm weight, v_proj or up_proj rows) so the float function is
// unchanged; then a per-group clipping search, then quantization.
#pragma once

#include <cstdint>
#include <vector>

#include "codecs/int_group.h"

namespace qforge {

struct AwqScaleOptions {
  int grid = 20;
  bool duo_scaling = true;
};

// Scales for one group of linears sharing an input: x_mean and w_mean as
// AutoAWQ defines them, at ratio r in [0, 1), divided by the geometric
// midpoint of the live channels' scales (AutoAWQ: of all channels; they
// differ only when some channel's x_mean is 0).
std::vector<float> AwqScales(const std::vector<float>& x_mean, const std::vector<float>& w_mean, float ratio,
                             bool duo_scaling);

// Mean over rows of |W| normalised by each (row, group)'s max |W|.
std::vector<float> AwqWeightMean(const std::vector<const std::vector<float>*>& ws, int64_t cols, int64_t group);

// W <- Q(W diag(s)) diag(s)^-1: what the scaled, quantized layer computes.
void AwqPseudoQuantize(const float* w, int64_t rows, int64_t cols, const std::vector<float>* s,
                       const IntQuantSpec& spec, float* out);

// Clipping search: per row and group, the max |w| (shrunk by up to
// max_shrink in steps of 1/grid) whose quantization best preserves x·w over
// the sampled inputs x (n x cols); then W is clamped to it in place.
void AwqClip(float* w, int64_t rows, int64_t cols, const std::vector<float>& x, int64_t n, const IntQuantSpec& spec,
             int threads);

}  // namespace qforge
