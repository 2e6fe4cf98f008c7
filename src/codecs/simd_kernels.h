// Element-wise codec kernels in Highway SIMD with runtime dispatch to the
// best instruction set of the machine. Each produces exactly the bytes of
// its scalar reference (tested on every compiled target), because it does
// the same IEEE operations per element and no reassociated reductions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qforge::simd {

void EncodeF16(const float* x, uint16_t* out, int64_t n);
void DecodeF16(const uint16_t* in, float* y, int64_t n);
void EncodeBF16(const float* x, uint16_t* out, int64_t n);
// Q8_0 blocks for a row (n a multiple of 32), 34 bytes each.
void EncodeQ8_0(const float* x, uint8_t* out, int64_t n);
// For each v = scale * x[j], the index of the nearest of 16 sorted int8
// levels, with the same tie rule as the scalar BestIndexInt8.
void NearestLevelIndices(const float* x, float scale, const int8_t* levels16, uint8_t* idx, int n);

// MakeQkxQuants for nsub (a multiple of 8, at most 64 elements each)
// sub-blocks at once, data transposed: xt[i * nsub + k] is element i of
// sub-block k (weights wt likewise, never null). Results equal nsub scalar calls.
void MakeQkxBatch(int nsub, int n, int nmax, const float* xt, const float* wt, uint8_t* Lt, float* scales,
                  float* the_mins, float rmin, float rdelta, int nstep, bool use_mad, bool qkx3);

// MakeQxQuants(n, nmax, x, L, rmse_type = 1, w) for nsub sub-blocks at once,
// transposed as above; wt may be null (weights x^2). L carries the +nmax offset.
void MakeQxBatch(int nsub, int n, int nmax, const float* xt, const float* wt, int8_t* Lt, float* scales);

// x[i] = exp(x[i] - max), returning the sum (softmax; about 1 ulp accurate).
float ExpShifted(float* x, int64_t n, float max);

// Names of the targets this binary can dispatch to (for tests and --version).
std::vector<std::string> CompiledTargets();
// Runs `fn` once per target the CPU supports, with dispatch pinned to it.
void ForEachSupportedTarget(void (*fn)(const char* target_name, void* ctx), void* ctx);

}  // namespace qforge::simd
