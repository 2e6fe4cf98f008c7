// Writes an integer-quantized model as the Hugging Face folder vLLM and
// Transformers load: config.json with its quantization_config, sharded
// safetensors (+ index), quantize_config.json for GPTQ, and the source's
// tokenizer and generation files. Layers are written as they arrive, so
// memory holds at most one shard; the folder appears only when complete.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "algorithms/gptq.h"
#include "algorithms/layer_output.h"
#include "model/model.h"
#include "plan/plan.h"
#include "sinks/sink.h"
#include "io/safetensors.h"
#include "io/int_layouts.h"

namespace qforge {

// What the checkpoint records about how it was made, and how it is split.
struct IntCheckpointOptions {
  Method method = Method::kGptq;
  GptqOptions gptq;
  bool true_sequential = true;
  uint64_t max_shard_bytes = 5000000000ull;
};

class IntCheckpointWriter : public Sink {
 public:
  // Fails when dir exists and is not empty.
  static Result<std::unique_ptr<IntCheckpointWriter>> Create(const Model& src, const std::string& dir,
                                                             const IntCheckpointOptions& opts);
  ~IntCheckpointWriter() override;

  // plan: a checkpoint plan (BuildIntPlan) of src.
  Status Begin(const Plan& plan) override;
  // A quantized linear needs t.int_grid (a stacked expert tensor
  // t.int_experts, one grid per expert, written as the experts' modules); a
  // float tensor is read from the source unless t.values holds the values a
  // method changed.
  Status Add(const TensorPlan& recipe, EncodedTensor t) override;
  // Writes the config files and moves the folder into place.
  Status Commit() override;

  uint64_t bytes_written() const { return bytes_written_; }
  int shards() const { return static_cast<int>(shard_files_.size()); }

 private:
  IntCheckpointWriter(const Model& src, std::string dir, IntCheckpointOptions opts)
      : src_(src), dir_(std::move(dir)), opts_(std::move(opts)) {}
  Status Emit(StWriteTensor t);
  // Packs one linear's grid (rows in the source's order) as `module`'s
  // tensors and writes them.
  Status AddGrid(const ModelTensor& src, const std::string& module, IntQuantized* q);
  Result<StWriteTensor> FloatTensor(const ModelTensor& t, const std::vector<float>* changed) const;
  Status WriteConfig() const;
  void ForgetTempPaths();

  const Model& src_;
  std::string dir_, tmp_dir_;
  const qforge::Plan* plan_in_ = nullptr;
  IntCheckpointOptions opts_;
  StDtype float_dtype_ = StDtype::BF16;
  bool quantize_lm_head_ = false;
  struct Planned {
    StTensorSpec spec;
    int shard;
  };
  std::vector<Planned> plan_;  // every output tensor, in writing order
  size_t next_ = 0;            // the next plan_ entry to write
  std::vector<std::string> shard_files_;
  std::unique_ptr<SafetensorsStreamWriter> shard_;  // the shard being written
  uint64_t bytes_written_ = 0, total_bytes_ = 0;
  bool finished_ = false;
  int tmp_lock_ = -1;  // flock on tmp_dir_ while it is being written (LockTempPath)
};

}  // namespace qforge
