// Writes a Plan as a GGUF file: tensors are decoded, converted and encoded a
// chunk of rows at a time on worker threads, streamed to a temporary file and
// renamed into place only when complete.
#pragma once

#include <functional>
#include <string>

#include "plan/plan.h"
#include "qforge/status.h"

namespace qforge {

struct SinkOptions {
  int threads = 1;
  // Called after each chunk with (bytes of source consumed, tensor name).
  std::function<void(uint64_t, const std::string&)> on_progress;
};

Status WriteGguf(const Plan& plan, const std::string& path, const SinkOptions& opts);

}  // namespace qforge
