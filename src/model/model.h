// A model as qforge sees it, whatever it was read from: GGUF tensor names and
// shapes, lazily mapped data, and the GGUF metadata that describes it. A
// Hugging Face folder is presented exactly as llama.cpp's converter would
// write it (names, Q/K row order, hyper-parameter and tokenizer keys).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "codecs/ggml_types.h"
#include "io/gguf.h"
#include "arch/hf_config.h"
#include "io/mapped_file.h"
#include "qforge/status.h"

namespace qforge {

struct PackedLinear;  // io/int_layouts.h
struct BlockLayout;   // arch/arch_spec.h

// A run of whole rows of a tensor held contiguously in a mapped file.
struct TensorPart {
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
  int64_t rows = 0;
  std::shared_ptr<MappedFile> file;
};

// A tensor of the model view: where its bytes are and how its rows are read.
// The bytes are one range (data, nbytes) or, for a tensor stacked from
// several source tensors (MoE experts), the parts in row order; a transform
// applies on read (Q/K head permutation, an offset added to every value),
// so no transformed copy of the model ever exists in memory. Rows are read
// through ReadRowsF32 only.
struct ModelTensor {
  std::string name;          // GGUF name
  std::string source_name;   // name in the source file
  std::vector<int64_t> ne;   // ggml order, ne[0] innermost
  GgmlType type = GgmlType::F32;  // storage type of the source bytes
  std::string source_dtype;  // as the source spells it ("BF16", "q8_0", ...)
  const uint8_t* data = nullptr;  // the single range (parts empty)
  uint64_t nbytes = 0;            // all bytes, over every part
  std::vector<TensorPart> parts;  // stacked tensors: the source tensors, in row order
  int permute_heads = 0;     // rows are permuted on read with this many heads
  float add_on_read = 0.0f;  // added to every decoded value (norms stored as weight - 1)
  std::shared_ptr<MappedFile> file;
  std::shared_ptr<std::vector<uint8_t>> owned;  // generated tensors own their bytes
  // Set for a linear weight stored in a GPU integer layout (GPTQ, AWQ,
  // compressed-tensors): rows decode through it; type then reads F32.
  std::shared_ptr<const PackedLinear> packed;
  // A stacked tensor of experts each stored in such a layout (a quantized
  // MoE checkpoint): expert e's rows decode through packed_experts[e].
  std::vector<std::shared_ptr<const PackedLinear>> packed_experts;

  int64_t n_elements() const;
  // Whether rows decode through a GPU integer layout (one, or one per expert).
  bool is_packed() const { return packed != nullptr || !packed_experts.empty(); }
  // The experts a stacked tensor holds (ffn_*_exps: [cols, rows, n_expert],
  // expert e's rows [e * rows, (e + 1) * rows)); 1 for any other tensor.
  int64_t n_experts() const { return ne.size() == 3 ? ne[2] : 1; }
  int64_t n_rows() const { return ne.empty() || ne[0] == 0 ? 0 : n_elements() / ne[0]; }
  int n_dims() const;  // ggml_n_dims: index of the last dimension > 1, plus one
  // Whether the stored bytes are the tensor's values as they are (no
  // transform, one range): what a sink may copy unchanged.
  bool stored_as_is() const {
    return permute_heads == 0 && add_on_read == 0.0f && parts.empty() && !packed && packed_experts.empty();
  }
  // Tells the OS the source pages are not needed again (they are re-read
  // from the file if they are).
  void DropPages() const;
};

// A tensor stacked from parts (each a 2-D tensor of the same row length and
// type), e.g. experts [n_rows, ne0] each -> [ne0, n_rows, n_parts]. Errors
// when the parts disagree. No bytes are copied.
Result<ModelTensor> StackTensors(std::string name, std::string source_name, GgmlType type, int64_t ne0,
                                 std::vector<TensorPart> parts);

enum class ModelSource { kHfFolder, kGguf };

struct Model {
  ModelSource source = ModelSource::kGguf;
  std::string path;
  std::string architecture;
  GgufMetadata metadata;  // HF: the converter's keys (file_type set to F32 until chosen)
  std::vector<ModelTensor> tensors;
  int64_t n_layer = 0, n_head = 0, n_head_kv = 0, expert_count = 0;
  // Decisions taken on open that the user should hear of (e.g. a config
  // that disagrees with the tensors present); plans carry them on.
  std::vector<std::string> warnings;

  // The tensor of that GGUF name, or null. Constant time: the index is built
  // on first use after `tensors` last changed size (call ReIndex() after
  // renaming or reordering tensors in place).
  const ModelTensor* Find(const std::string& name) const;
  void ReIndex() const;
  // The integer hyper-parameter "<architecture>.<key>" (an array's first
  // element, as llama.cpp reads per-layer keys), or def when absent.
  int64_t ArchInt(const std::string& key, int64_t def) const;
  int64_t n_params() const;
  uint64_t n_bytes() const;

 private:
  mutable std::unordered_map<std::string, size_t> index_;
  mutable const ModelTensor* indexed_data_ = nullptr;
  mutable size_t indexed_size_ = 0;
};

// The block layout the model's architecture runs (its MoE layout when it
// has experts: Mixtral is "llama" with experts).
const BlockLayout& BlockOfModel(const Model& model);


struct OpenOptions {
  std::string tokenizer_pre;  // BPE pre-tokenizer override
};

// path: a Hugging Face folder (config.json + safetensors) or a .gguf file.
Result<Model> OpenModel(const std::string& path, const OpenOptions& opts = {});

// Block number of "blk.N.*", or -1 for other names.
int BlockOf(const std::string& name);

// The order llama.cpp's loader (and so llama-quantize) visits tensors: names
// outside blk.N first, then by block number, ties by byte-wise name.
void SortInLoaderOrder(std::vector<const ModelTensor*>* tensors);

// The row of the source file that holds row `row` of a tensor whose rows
// qforge presents Q/K-permuted over `heads` heads (heads 0: no permutation).
int64_t SourceRowOf(int64_t row, int64_t rows, int heads);

// Decodes rows [row0, row0 + n) of a tensor to float, applying the Q/K row
// permutation where the tensor has one. Fails for types qforge cannot decode.
Status ReadRowsF32(const ModelTensor& t, int64_t row0, int64_t n, float* out);

// Reads a whole tensor as float rows (GGUF row order).
Result<std::vector<float>> ReadTensorF32(const ModelTensor& t);

}  // namespace qforge
