// Writes a Plan as a GGUF file: tensors are decoded, converted and encoded a
// chunk of rows at a time on worker threads, streamed to a temporary file and
// renamed into place only when complete.
#pragma once

#include <functional>
#include <string>

#include "io/gguf.h"
#include "plan/plan.h"
#include "sinks/sink.h"
#include "qforge/status.h"

namespace qforge {

struct SinkOptions {
  int threads = 1;
  // Called after each chunk with (bytes of source consumed, tensor name).
  std::function<void(uint64_t, const std::string&)> on_progress;
};

// The GGUF writer as a Sink. A tensor added without values is read from its
// source and encoded chunk by chunk; one added with encoded rows is written
// as given.
class GgufSink : public Sink {
 public:
  GgufSink(std::string path, SinkOptions opts) : path_(std::move(path)), opts_(std::move(opts)) {}
  Status Begin(const Plan& plan) override;
  Status Add(const TensorPlan& recipe, EncodedTensor t) override;
  Status Commit() override;

 private:
  std::string path_;
  SinkOptions opts_;
  GgufWriter writer_;
};

// Writes a whole plan whose tensors all come from their sources.
Status WriteGguf(const Plan& plan, const std::string& path, const SinkOptions& opts);

}  // namespace qforge
