// Collects an importance matrix as llama-imatrix does: over chunks of n_ctx
// tokens (BOS first), for every linear layer of the blocks, the sum of
// squared input activations per column and the number of rows seen. Written
// in llama.cpp's GGUF imatrix format, which llama-quantize and
// `qforge quantize --imatrix` read.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/llama_engine.h"
#include "qforge/status.h"

namespace qforge {

struct ImatrixCollectOptions {
  int64_t n_ctx = 512;
  int64_t max_chunks = -1;
  int32_t bos = -1;
  bool process_output = false;  // also collect output.weight
  std::string dataset;          // recorded in imatrix.datasets
  std::function<void(int64_t chunk, int64_t n_chunks)> on_chunk;
};

// Per weight: the sum of x^2 per column and the rows accumulated; a stacked
// expert weight has one matrix per expert (sums expert-major, n_expert x
// cols; counts per expert: the tokens routed to it), as llama-imatrix keeps.
struct ImatrixSums {
  std::map<std::string, std::vector<float>> sums;
  std::map<std::string, std::vector<int64_t>> counts;
  int64_t chunks = 0;
  int64_t chunk_size = 0;
  std::vector<std::string> datasets;
};

Result<ImatrixSums> CollectImatrix(LlamaEngine& engine, const std::vector<int32_t>& tokens,
                                   const ImatrixCollectOptions& opts);

Status WriteImatrixGguf(const ImatrixSums& m, const std::string& path);

}  // namespace qforge
