// GGUF version 3: a reader that checks every count, size and offset against
// the file before use, and a streaming writer (header first, then tensor data
// in order) so a model never has to sit in memory whole.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "codecs/ggml_types.h"
#include "io/mapped_file.h"
#include "io/output_file.h"
#include "qforge/status.h"

namespace qforge {

enum class GgufType : int32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* GgufTypeName(GgufType t);

// A metadata value. Numeric arrays keep their little-endian element bytes.
class GgufValue {
 public:
  GgufValue() = default;
  static GgufValue U8(uint8_t v) { return Scalar(GgufType::UINT8, uint64_t{v}); }
  static GgufValue I8(int8_t v) { return Scalar(GgufType::INT8, static_cast<int64_t>(v)); }
  static GgufValue U16(uint16_t v) { return Scalar(GgufType::UINT16, uint64_t{v}); }
  static GgufValue I16(int16_t v) { return Scalar(GgufType::INT16, static_cast<int64_t>(v)); }
  static GgufValue U32(uint32_t v) { return Scalar(GgufType::UINT32, uint64_t{v}); }
  static GgufValue I32(int32_t v) { return Scalar(GgufType::INT32, static_cast<int64_t>(v)); }
  static GgufValue U64(uint64_t v) { return Scalar(GgufType::UINT64, v); }
  static GgufValue I64(int64_t v) { return Scalar(GgufType::INT64, v); }
  static GgufValue F32(float v) { return Scalar(GgufType::FLOAT32, static_cast<double>(v)); }
  static GgufValue F64(double v) { return Scalar(GgufType::FLOAT64, v); }
  static GgufValue Bool(bool v) { return Scalar(GgufType::BOOL, static_cast<uint64_t>(v)); }
  static GgufValue Str(std::string v);
  static GgufValue StrArray(std::vector<std::string> v);
  static GgufValue F32Array(const std::vector<float>& v);
  static GgufValue I32Array(const std::vector<int32_t>& v);
  static GgufValue NumArray(GgufType elem, uint64_t count, std::vector<uint8_t> bytes);

  GgufType type() const { return type_; }
  GgufType elem_type() const { return elem_type_; }
  bool is_array() const { return type_ == GgufType::ARRAY; }
  bool is_integer() const;
  bool is_float() const { return type_ == GgufType::FLOAT32 || type_ == GgufType::FLOAT64; }

  // Scalar access (converting between numeric kinds).
  uint64_t AsU64() const;
  int64_t AsI64() const;
  double AsF64() const;
  bool AsBool() const { return AsU64() != 0; }
  const std::string& AsString() const { return str_; }

  // Array access.
  uint64_t count() const { return count_; }
  const std::vector<std::string>& strings() const { return strings_; }
  const std::vector<uint8_t>& array_bytes() const { return bytes_; }
  double ArrayF64(uint64_t i) const;
  int64_t ArrayI64(uint64_t i) const;

  bool operator==(const GgufValue& o) const;

 private:
  template <typename V>
  static GgufValue Scalar(GgufType t, V v) {
    GgufValue g;
    g.type_ = t;
    g.num_ = v;
    return g;
  }
  GgufType type_ = GgufType::UINT8;
  GgufType elem_type_ = GgufType::UINT8;
  std::variant<uint64_t, int64_t, double> num_{uint64_t{0}};
  std::string str_;
  uint64_t count_ = 0;
  std::vector<std::string> strings_;
  std::vector<uint8_t> bytes_;
};

size_t GgufScalarSize(GgufType t);

struct GgufKv {
  std::string key;
  GgufValue value;
};

// Ordered key/value list with the C writer's semantics: Set() of an existing
// key removes it and appends the new value at the end.
class GgufMetadata {
 public:
  void Set(const std::string& key, GgufValue v);
  void Append(const std::string& key, GgufValue v);  // keeps position if present
  void Remove(const std::string& key);
  const GgufValue* Find(const std::string& key) const;
  const std::vector<GgufKv>& items() const { return items_; }

 private:
  std::vector<GgufKv> items_;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ne[0] innermost; size = n_dims as stored
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;  // relative to the data section
  uint64_t nbytes = 0;
  int64_t n_elements() const;
  int64_t n_rows() const { return ne.empty() || ne[0] == 0 ? 0 : n_elements() / ne[0]; }
};

class GgufFile {
 public:
  static Result<std::unique_ptr<GgufFile>> Open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  uint32_t version() const { return version_; }
  const GgufMetadata& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(const std::string& name) const;
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const uint8_t* TensorData(const GgufTensorInfo& t) const {
    return file_->data() + data_offset_ + t.offset;
  }
  const std::shared_ptr<MappedFile>& mapped() const { return file_; }

 private:
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  GgufMetadata metadata_;
  std::vector<GgufTensorInfo> tensors_;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
};

// Writes a GGUF file: declare metadata and tensors, Begin(), then WriteTensor()
// each tensor's bytes in declaration order, then Finish() to commit.
class GgufWriter {
 public:
  explicit GgufWriter(uint64_t alignment = 32) : alignment_(alignment) {}
  GgufMetadata& metadata() { return metadata_; }
  // n_dims is ne.size(); trailing size-1 dimensions are kept as given.
  void AddTensor(const std::string& name, std::vector<int64_t> ne, GgmlType type);
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  uint64_t TotalBytes() const;  // exact size of the file Finish() will produce

  Status Begin(const std::string& path);
  // Streams a part of the current tensor; a tensor may be written in pieces.
  Status WriteTensorData(const void* data, size_t n);
  Status Finish();

 private:
  Status EndTensorIfComplete();
  uint64_t alignment_;
  GgufMetadata metadata_;
  std::vector<GgufTensorInfo> tensors_;
  uint64_t next_offset_ = 0;
  std::unique_ptr<OutputFile> out_;
  size_t current_ = 0;
  uint64_t written_in_current_ = 0;
};

}  // namespace qforge
