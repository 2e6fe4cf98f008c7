// The scale searches ggml's quantizers share (spec 2.4). Each returns the
// block scale and writes the integer levels; all arithmetic is float in the
// reference's operation order, so results are bit-exact with llama.cpp.
#pragma once

#include <cstdint>

#include "numeric/rounding.h"

namespace qforge {

constexpr float kGroupMaxEps = 1e-15f;

// Symmetric levels -nmax..nmax-1 stored with offset +nmax. rmse_type selects
// the weights when qw is null (1: x^2, 2: 1, 3: |x|, else sqrt|x|); a negative
// rmse_type returns after the first pass.
float MakeQxQuants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw);

// Symmetric 3-bit levels for Q3_K's reference path.
float MakeQ3Quants(int n, int nmax, const float* x, int8_t* L, bool do_rmse);

// Asymmetric levels 0..nmax: x ~ scale*L - the_min. weights may be null only
// when x_squared_default is true (the "qkx3" flavour uses x^2 then).
float MakeQkxQuants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                    uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad, bool qkx3);

// Quantizes non-negative values (scales or mins) to 0..nmax with weights.
float MakeQpQuants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights);

// Index of the nearest entry of a sorted int8 table; ties go to the upper.
int BestIndexInt8(int n, const int8_t* table, float v);

}  // namespace qforge
