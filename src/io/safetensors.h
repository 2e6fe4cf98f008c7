// safetensors: a memory-mapped reader (single file or sharded through
// model.safetensors.index.json) that validates the header before any tensor is
// touched, and a writer that follows the reference layout (dtype-size
// descending then name, 8-byte aligned data, {"format":"pt"} metadata).
#pragma once

#include <cstdint>
#include <optional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "qforge/status.h"

namespace qforge {

enum class StDtype {
  BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64,
};
const char* StDtypeName(StDtype d);
int StDtypeBytes(StDtype d);
std::optional<StDtype> StDtypeFromName(const std::string& s);

struct StTensor {
  std::string name;
  StDtype dtype = StDtype::F32;
  std::vector<int64_t> shape;  // as stored (outermost first)
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
  std::shared_ptr<MappedFile> file;  // keeps the mapping alive
  int64_t numel() const;
};

// All tensors of one checkpoint, in the order a reader sees them: shards in
// file-name order, names sorted inside each shard.
class SafetensorsModel {
 public:
  // path: a .safetensors file, a model.safetensors.index.json, or a folder
  // holding either.
  static Result<SafetensorsModel> Open(const std::string& path);

  const std::vector<StTensor>& tensors() const { return tensors_; }
  const StTensor* Find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::vector<StTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Parses and validates one safetensors file.
Result<std::vector<StTensor>> ReadSafetensorsFile(const std::string& path,
                                                  std::map<std::string, std::string>* metadata);

struct StWriteTensor {
  std::string name;
  StDtype dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Writes one safetensors file atomically (temporary file, then rename).
Status WriteSafetensorsFile(const std::string& path, std::vector<StWriteTensor> tensors,
                            const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

class OutputFile;

// Writes one safetensors file whose tensors are known (names, dtypes,
// shapes) before their bytes: the header goes first, then each tensor's
// bytes as it comes, in the declared order, so memory never holds more than
// one tensor. Nothing appears at path until Commit().
class SafetensorsStreamWriter {
 public:
  struct Entry {
    std::string name;
    StDtype dtype;
    std::vector<int64_t> shape;
  };
  static Result<std::unique_ptr<SafetensorsStreamWriter>> Create(
      const std::string& path, std::vector<Entry> entries,
      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});
  ~SafetensorsStreamWriter();
  // Must follow the declared order; sizes are checked.
  Status Write(const std::string& name, const std::vector<uint8_t>& bytes);
  bool complete() const { return next_ == entries_.size(); }
  Status Commit();

 private:
  SafetensorsStreamWriter() = default;
  std::string path_;
  std::vector<Entry> entries_;
  size_t next_ = 0;
  std::unique_ptr<OutputFile> out_;
};

}  // namespace qforge
