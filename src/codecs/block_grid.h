// The grid of one encoded ggml block once its scales are chosen: element i
// stands for scale[s] * code + offset[s] (s = i / sub_elems, its sub-block),
// with code in [code_min, code_max]. Encoding a block fixes the scales; GPTQ
// then picks the codes itself, column by column, and writes them back into
// the block, so the result is a stock block of that type.
#pragma once

#include <cstdint>

#include "codecs/ggml_types.h"

namespace qforge {

struct BlockGrid {
  int sub_elems;           // elements sharing one scale and offset
  int code_min, code_max;  // the codes a block can store
  // Reads each sub-block's scale and offset from an encoded block, computed
  // as the type's decoder computes them, so scale * code + offset is exactly
  // the value the decoder gives.
  void (*read)(const uint8_t* block, float* scale, float* offset);
  // Replaces the block's codes (block_elems of them, each in range) and
  // leaves its scales as they are.
  void (*write_codes)(const int32_t* codes, uint8_t* block);
};

// The grid of a type, or null where GPTQ cannot drive that type's blocks
// (supported: Q8_0, Q4_K, Q5_K, Q6_K).
const BlockGrid* BlockGridOf(GgmlType t);

// Grids of the families (ggml_legacy.cc, ggml_k.cc).
extern const BlockGrid kGridQ8_0;
extern const BlockGrid kGridQ4_K;
extern const BlockGrid kGridQ5_K;
extern const BlockGrid kGridQ6_K;

}  // namespace qforge
