// Where a plan's tensors go: the GGUF writer and one object per safetensors
// checkpoint layout. A run is Begin(plan), one Add per recipe in plan order,
// Commit; the output appears only at Commit (temporary file or folder,
// renamed into place), and a sink destroyed before Commit removes what it
// wrote.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "codecs/int_group.h"
#include "plan/plan.h"
#include "qforge/status.h"

namespace qforge {

// A tensor's values as a method produced them. At most one part is set;
// none set means "encode the source tensor as the recipe says".
struct EncodedTensor {
  std::vector<uint8_t> ggml;              // rows already encoded in the recipe's ggml type (GGUF row order)
  std::optional<IntQuantized> int_grid;   // the integer grid of a checkpoint linear (GGUF row order)
  std::vector<IntQuantized> int_experts;  // a stacked expert tensor's grids, one per expert, in order
  std::optional<std::vector<float>> values;  // float values a method changed (GGUF row order)
};

class Sink {
 public:
  virtual ~Sink() = default;
  // The plan must outlive the sink.
  virtual Status Begin(const Plan& plan) = 0;
  // The next recipe of the plan and its values.
  virtual Status Add(const TensorPlan& recipe, EncodedTensor t) = 0;
  // Everything was added: make the output appear.
  virtual Status Commit() = 0;
};

}  // namespace qforge
