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

// Names of the targets this binary can dispatch to (for tests and --version).
std::vector<std::string> CompiledTargets();
// Runs `fn` once per target the CPU supports, with dispatch pinned to it.
void ForEachSupportedTarget(void (*fn)(const char* target_name, void* ctx), void* ctx);

}  // namespace qforge::simd
