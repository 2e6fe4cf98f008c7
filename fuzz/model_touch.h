// What every model harness does with a model that opened: decode a row of
// each tensor (the offsets and sizes the reader accepted must hold) and run
// its tokenizer on a fixed text.
#pragma once

#include <string_view>
#include <vector>

#include "model/model.h"
#include "model/model_tokenizer.h"

namespace qforge::fuzz {

inline void TouchModel(const Model& m) {
  std::vector<float> row;
  for (const auto& t : m.tensors) {
    if (t.ne.empty() || t.ne[0] <= 0 || t.ne[0] > (1 << 20) || t.n_elements() <= 0) continue;
    row.resize(static_cast<size_t>(t.ne[0]));
    (void)ReadRowsF32(t, 0, 1, row.data());
    (void)ReadRowsF32(t, t.n_rows() - 1, 1, row.data());
  }
  auto tok = TokenizerForModel(m);
  if (!tok.ok()) return;
  const std::vector<int32_t> ids = (*tok)->Encode("Hello, world! <s> 123 \xE2\x96\x81x\n\t", true);
  for (int32_t id : ids) (void)(*tok)->TokenPiece(id);
}

}  // namespace qforge::fuzz
