// llama.cpp importance matrices: the GGUF format (<name>.in_sum2 and
// <name>.counts tensors) and the legacy .dat format. Either becomes, per
// weight tensor, the mean squared activation of each input column (per
// expert), which is what the quantizers weigh errors with.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "qforge/status.h"

namespace qforge {

struct ImatrixEntry {
  std::vector<float> values;  // n_mat * ne0 means, expert-major
  int64_t n_mat = 1;
  std::vector<int64_t> counts;  // rows behind each matrix (GGUF files; empty for the legacy format)
};

struct Imatrix {
  std::string path;
  std::map<std::string, ImatrixEntry> entries;
  std::vector<std::string> datasets;
  int64_t chunk_count = 0;
  int64_t chunk_size = 0;
};

Result<Imatrix> ReadImatrix(const std::string& path);

// Keeps only entries whose names contain one of `include` (if any are given)
// and none of `exclude`, as llama-quantize's --include/--exclude-weights do.
void FilterImatrix(Imatrix* m, const std::vector<std::string>& include, const std::vector<std::string>& exclude);

}  // namespace qforge
