// Writes an integer-quantized model as the Hugging Face folder vLLM and
// Transformers load: config.json with its quantization_config, sharded
// safetensors (+ index), quantize_config.json for GPTQ, and the source's
// tokenizer and generation files. Layers are written as they arrive, so
// memory holds at most one shard; the folder appears only when complete.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "algorithms/gptq.h"
#include "algorithms/layer_output.h"
#include "model/model.h"
#include "io/safetensors.h"
#include "io/int_layouts.h"

namespace qforge {

struct IntCheckpointOptions {
  IntLayout layout = IntLayout::kCompressedTensors;
  IntQuantSpec spec;  // scale dtype is set from the layout
  IntMethod method = IntMethod::kGptq;
  GptqOptions gptq;
  bool true_sequential = true;
  uint64_t max_shard_bytes = 5000000000ull;
  std::vector<std::string> ignore;  // regexes on module names (e.g. model.layers.0.mlp.down_proj)
  bool quantize_lm_head = false;     // compressed-tensors and GPTQ layouts; untied lm_head only
  bool allow_requantize = false;     // quantize linears the source already stores packed
};

class IntCheckpointWriter {
 public:
  static Result<std::unique_ptr<IntCheckpointWriter>> Create(const Model& src, const std::string& dir,
                                                             const IntCheckpointOptions& opts);
  ~IntCheckpointWriter();

  // The spec quantizers must use (scale dtype and zero rule of the layout).
  const IntQuantSpec& spec() const { return opts_.spec; }
  // Whether this GGUF-named linear weight is quantized (else kept float).
  bool Quantizes(const std::string& gguf_name) const;
  // A decoder layer's output, or (layer -1) the quantized lm_head.
  Status AddLayer(LayerOutput&& layer);
  // Writes what remains and moves the folder into place.
  Status Finish();

  uint64_t bytes_written() const { return bytes_written_; }
  int shards() const { return static_cast<int>(shard_files_.size()); }
  // Things the user should know (requantized linears).
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  IntCheckpointWriter(const Model& src, std::string dir, IntCheckpointOptions opts)
      : src_(src), dir_(std::move(dir)), opts_(std::move(opts)) {}
  Status Plan();
  Status Emit(StWriteTensor t);
  Result<StWriteTensor> FloatTensor(const ModelTensor& t, const std::vector<float>* changed) const;
  Status WriteConfig() const;
  void ForgetTempPaths();

  const Model& src_;
  std::string dir_, tmp_dir_;
  IntCheckpointOptions opts_;
  StDtype float_dtype_ = StDtype::BF16;
  std::vector<std::regex> ignore_;
  std::map<std::string, bool> quantized_;  // GGUF linear name -> quantized
  struct Planned {
    StTensorSpec spec;
    int shard;
  };
  std::vector<Planned> plan_;  // every output tensor, in writing order
  size_t next_ = 0;            // the next plan_ entry to write
  std::vector<std::string> shard_files_;
  std::unique_ptr<SafetensorsStreamWriter> shard_;  // the shard being written
  std::vector<std::string> ignored_modules_;
  std::vector<std::string> warnings_;
  uint64_t bytes_written_ = 0, total_bytes_ = 0;
  bool finished_ = false;
};

}  // namespace qforge
