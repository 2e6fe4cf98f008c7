#include "io/gguf.h"

#include <cstring>
#include <limits>
#include <set>

namespace qforge {
namespace {

constexpr uint64_t kMaxStringLength = uint64_t{1} << 30;
constexpr uint64_t kMaxArrayCount = uint64_t{1} << 30;
constexpr int kMaxDims = 4;
constexpr size_t kMaxTensorName = 63;

uint64_t PadTo(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// Bounds-checked little-endian reader over a mapped file.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  Status Need(uint64_t n, const std::string& what) const {
    if (n > remaining()) {
      return Status::Error(path_ + ": " + what + ": needs " + std::to_string(n) +
                           " bytes at offset " + std::to_string(pos_) + " but the file has only " +
                           std::to_string(remaining()) + " left (truncated file?)");
    }
    return Status::Ok();
  }

  template <typename T>
  Status Read(T* v, const std::string& what) {
    QF_RETURN_IF_ERROR(Need(sizeof(T), what));
    std::memcpy(v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }

  Status ReadString(std::string* s, const std::string& what) {
    uint64_t n = 0;
    QF_RETURN_IF_ERROR(Read(&n, what + " length"));
    if (n > kMaxStringLength) {
      return Status::Error(path_ + ": " + what + ": string length " + std::to_string(n) +
                           " exceeds the limit of 2^30 bytes");
    }
    QF_RETURN_IF_ERROR(Need(n, what));
    s->assign(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return Status::Ok();
  }

  Status ReadBytes(std::vector<uint8_t>* out, uint64_t n, const std::string& what) {
    QF_RETURN_IF_ERROR(Need(n, what));
    out->assign(data_ + pos_, data_ + pos_ + n);
    pos_ += n;
    return Status::Ok();
  }

  const std::string& path() const { return path_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

bool ValidValueType(int32_t t) { return t >= 0 && t <= 12; }

Status ReadValue(Cursor& c, GgufType type, const std::string& key, GgufValue* out) {
  const std::string what = "metadata '" + key + "'";
  switch (type) {
    case GgufType::UINT8: { uint8_t v = 0; QF_RETURN_IF_ERROR(c.Read(&v, what)); *out = GgufValue::U8(v); break; }
    case GgufType::INT8: { int8_t v = 0; QF_RETURN_IF_ERROR(c.Read(&v, what)); *out = GgufValue::I8(v); break; }
    case GgufType::UINT16: { uint16_t v = 0; QF_RETURN_IF_ERROR(c.Read(&v, what)); *out = GgufValue::U16(v); break; }
    case GgufType::INT16: { int16_t v = 0; QF_RETURN_IF_ERROR(c.Read(&v, what)); *out = GgufValue::I16(v); break; }
    case GgufType::UINT32: { uint32_t v = 0; QF_RETURN_IF_ERROR(c.Read(&v, what)); *out = GgufValue::U32(v); break; }
    case GgufType::INT32: { int32_t v = 0; QF_RETURN_IF_ERROR(c.Read(&v, what)); *out = GgufValue::I32(v); break; }
    case GgufType::FLOAT32: { float v = 0; QF_RETURN_IF_ERROR(c.Read(&v, what)); *out = GgufValue::F32(v); break; }
    case GgufType::BOOL: { uint8_t v = 0; QF_RETURN_IF_ERROR(c.Read(&v, what)); *out = GgufValue::Bool(v != 0); break; }
    case GgufType::UINT64: { uint64_t v = 0; QF_RETURN_IF_ERROR(c.Read(&v, what)); *out = GgufValue::U64(v); break; }
    case GgufType::INT64: { int64_t v = 0; QF_RETURN_IF_ERROR(c.Read(&v, what)); *out = GgufValue::I64(v); break; }
    case GgufType::FLOAT64: { double v = 0; QF_RETURN_IF_ERROR(c.Read(&v, what)); *out = GgufValue::F64(v); break; }
    case GgufType::STRING: {
      std::string s;
      QF_RETURN_IF_ERROR(c.ReadString(&s, what));
      *out = GgufValue::Str(std::move(s));
      break;
    }
    case GgufType::ARRAY: {
      int32_t et = 0;
      uint64_t n = 0;
      QF_RETURN_IF_ERROR(c.Read(&et, what + " element type"));
      if (!ValidValueType(et) || et == static_cast<int32_t>(GgufType::ARRAY)) {
        return Status::Error(c.path() + ": " + what + ": array element type " + std::to_string(et) +
                             " is invalid (expected 0..12, arrays of arrays are not allowed)");
      }
      QF_RETURN_IF_ERROR(c.Read(&n, what + " element count"));
      if (n > kMaxArrayCount) {
        return Status::Error(c.path() + ": " + what + ": array count " + std::to_string(n) +
                             " exceeds the limit of 2^30");
      }
      const GgufType elem = static_cast<GgufType>(et);
      if (elem == GgufType::STRING) {
        // Each string needs at least its 8-byte length.
        if (n > c.remaining() / 8) {
          return Status::Error(c.path() + ": " + what + ": " + std::to_string(n) +
                               " strings cannot fit in the remaining " +
                               std::to_string(c.remaining()) + " bytes");
        }
        std::vector<std::string> v(n);
        for (uint64_t i = 0; i < n; ++i) QF_RETURN_IF_ERROR(c.ReadString(&v[i], what));
        *out = GgufValue::StrArray(std::move(v));
      } else {
        const uint64_t esize = GgufScalarSize(elem);
        std::vector<uint8_t> bytes;
        QF_RETURN_IF_ERROR(c.ReadBytes(&bytes, n * esize, what + " elements"));
        *out = GgufValue::NumArray(elem, n, std::move(bytes));
      }
      break;
    }
  }
  return Status::Ok();
}

bool MulOverflows(int64_t a, int64_t b, int64_t* out) {
  return __builtin_mul_overflow(a, b, out);
}

}  // namespace

const char* GgufTypeName(GgufType t) {
  static const char* kNames[] = {"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
                                 "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"};
  int i = static_cast<int>(t);
  return (i >= 0 && i <= 12) ? kNames[i] : "INVALID";
}

size_t GgufScalarSize(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    default: return 0;
  }
}

// ---------------------------------------------------------------- GgufValue

GgufValue GgufValue::Str(std::string v) {
  GgufValue g;
  g.type_ = GgufType::STRING;
  g.str_ = std::move(v);
  return g;
}

GgufValue GgufValue::StrArray(std::vector<std::string> v) {
  GgufValue g;
  g.type_ = GgufType::ARRAY;
  g.elem_type_ = GgufType::STRING;
  g.count_ = v.size();
  g.strings_ = std::move(v);
  return g;
}

GgufValue GgufValue::NumArray(GgufType elem, uint64_t count, std::vector<uint8_t> bytes) {
  GgufValue g;
  g.type_ = GgufType::ARRAY;
  g.elem_type_ = elem;
  g.count_ = count;
  g.bytes_ = std::move(bytes);
  return g;
}

GgufValue GgufValue::F32Array(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return NumArray(GgufType::FLOAT32, v.size(), std::move(b));
}

GgufValue GgufValue::I32Array(const std::vector<int32_t>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return NumArray(GgufType::INT32, v.size(), std::move(b));
}

bool GgufValue::is_integer() const {
  switch (type_) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16:
    case GgufType::UINT32: case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64:
    case GgufType::BOOL:
      return true;
    default:
      return false;
  }
}

uint64_t GgufValue::AsU64() const {
  if (auto* u = std::get_if<uint64_t>(&num_)) return *u;
  if (auto* i = std::get_if<int64_t>(&num_)) return static_cast<uint64_t>(*i);
  return static_cast<uint64_t>(std::get<double>(num_));
}

int64_t GgufValue::AsI64() const {
  if (auto* u = std::get_if<uint64_t>(&num_)) return static_cast<int64_t>(*u);
  if (auto* i = std::get_if<int64_t>(&num_)) return *i;
  return static_cast<int64_t>(std::get<double>(num_));
}

double GgufValue::AsF64() const {
  if (auto* u = std::get_if<uint64_t>(&num_)) return static_cast<double>(*u);
  if (auto* i = std::get_if<int64_t>(&num_)) return static_cast<double>(*i);
  return std::get<double>(num_);
}

double GgufValue::ArrayF64(uint64_t i) const {
  const uint8_t* p = bytes_.data() + i * GgufScalarSize(elem_type_);
  switch (elem_type_) {
    case GgufType::FLOAT32: { float f; std::memcpy(&f, p, 4); return f; }
    case GgufType::FLOAT64: { double d; std::memcpy(&d, p, 8); return d; }
    default: return static_cast<double>(ArrayI64(i));
  }
}

int64_t GgufValue::ArrayI64(uint64_t i) const {
  const uint8_t* p = bytes_.data() + i * GgufScalarSize(elem_type_);
  switch (elem_type_) {
    case GgufType::UINT8: case GgufType::BOOL: return *p;
    case GgufType::INT8: return static_cast<int8_t>(*p);
    case GgufType::UINT16: { uint16_t v; std::memcpy(&v, p, 2); return v; }
    case GgufType::INT16: { int16_t v; std::memcpy(&v, p, 2); return v; }
    case GgufType::UINT32: { uint32_t v; std::memcpy(&v, p, 4); return v; }
    case GgufType::INT32: { int32_t v; std::memcpy(&v, p, 4); return v; }
    case GgufType::UINT64: { uint64_t v; std::memcpy(&v, p, 8); return static_cast<int64_t>(v); }
    case GgufType::INT64: { int64_t v; std::memcpy(&v, p, 8); return v; }
    case GgufType::FLOAT32: { float f; std::memcpy(&f, p, 4); return static_cast<int64_t>(f); }
    case GgufType::FLOAT64: { double d; std::memcpy(&d, p, 8); return static_cast<int64_t>(d); }
    default: return 0;
  }
}

bool GgufValue::operator==(const GgufValue& o) const {
  if (type_ != o.type_) return false;
  if (type_ == GgufType::STRING) return str_ == o.str_;
  if (type_ == GgufType::ARRAY) {
    return elem_type_ == o.elem_type_ && count_ == o.count_ && strings_ == o.strings_ &&
           bytes_ == o.bytes_;
  }
  if (type_ == GgufType::FLOAT32 || type_ == GgufType::FLOAT64) {
    double a = AsF64(), b = o.AsF64();
    return std::memcmp(&a, &b, sizeof a) == 0;
  }
  return AsU64() == o.AsU64();
}

// ------------------------------------------------------------- GgufMetadata

void GgufMetadata::Set(const std::string& key, GgufValue v) {
  Remove(key);
  items_.push_back({key, std::move(v)});
}

void GgufMetadata::Append(const std::string& key, GgufValue v) {
  for (auto& kv : items_) {
    if (kv.key == key) {
      kv.value = std::move(v);
      return;
    }
  }
  items_.push_back({key, std::move(v)});
}

void GgufMetadata::Remove(const std::string& key) {
  for (auto it = items_.begin(); it != items_.end(); ++it) {
    if (it->key == key) {
      items_.erase(it);
      return;
    }
  }
}

const GgufValue* GgufMetadata::Find(const std::string& key) const {
  for (const auto& kv : items_) {
    if (kv.key == key) return &kv.value;
  }
  return nullptr;
}

int64_t GgufTensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

// ----------------------------------------------------------------- GgufFile

namespace {

// Magic and version; the counts, bounded by what the file can hold (every
// key/value record takes at least 12 bytes, every tensor info 24).
Status ReadHeader(Cursor& c, const MappedFile& mapped, const std::string& path, uint32_t* version, int64_t* n_tensors,
                  int64_t* n_kv) {
  char magic[4] = {};
  if (mapped.size() < 4 || std::memcmp(mapped.data(), "GGUF", 4) != 0) {
    return Status::Error(path + ": magic: expected 'GGUF' in the first 4 bytes (not a GGUF file)");
  }
  QF_RETURN_IF_ERROR(c.Read(&magic, "magic"));
  QF_RETURN_IF_ERROR(c.Read(version, "version"));
  if ((*version & 0xFFFF) == 0) {
    return Status::Error(path + ": version: " + std::to_string(*version) +
                         " looks byte-swapped (a big-endian GGUF); only little-endian files are supported");
  }
  if (*version < 2 || *version > 3) {
    return Status::Error(path + ": version: " + std::to_string(*version) + " is not supported (expected 2 or 3)");
  }
  QF_RETURN_IF_ERROR(c.Read(n_tensors, "tensor count"));
  QF_RETURN_IF_ERROR(c.Read(n_kv, "metadata count"));
  if (*n_kv < 0 || static_cast<uint64_t>(*n_kv) > c.remaining() / 12) {
    return Status::Error(path + ": metadata count: " + std::to_string(*n_kv) + " is negative or larger than the file can hold");
  }
  if (*n_tensors < 0 || static_cast<uint64_t>(*n_tensors) > c.remaining() / 24) {
    return Status::Error(path + ": tensor count: " + std::to_string(*n_tensors) +
                         " is negative or larger than the file can hold");
  }
  return Status::Ok();
}

Status ReadMetadata(Cursor& c, const std::string& path, int64_t n_kv, GgufMetadata* md) {
  std::set<std::string> keys;
  for (int64_t i = 0; i < n_kv; ++i) {
    std::string key;
    QF_RETURN_IF_ERROR(c.ReadString(&key, "metadata key #" + std::to_string(i)));
    if (key.empty()) return Status::Error(path + ": metadata key #" + std::to_string(i) + ": empty key");
    if (!keys.insert(key).second) return Status::Error(path + ": metadata '" + key + "': duplicate key");
    int32_t t = 0;
    QF_RETURN_IF_ERROR(c.Read(&t, "metadata '" + key + "' type"));
    if (!ValidValueType(t)) {
      return Status::Error(path + ": metadata '" + key + "': value type " + std::to_string(t) + " is invalid (expected 0..12)");
    }
    GgufValue v;
    QF_RETURN_IF_ERROR(ReadValue(c, static_cast<GgufType>(t), key, &v));
    md->Append(key, std::move(v));
  }
  return Status::Ok();
}

// general.alignment when present (a power of two), else the default.
Result<uint64_t> AlignmentOf(const GgufMetadata& md, const std::string& path, uint64_t def) {
  const GgufValue* a = md.Find("general.alignment");
  if (a == nullptr) return def;
  if (a->type() != GgufType::UINT32) {
    return Status::Error(path + ": metadata 'general.alignment': expected UINT32, found " + GgufTypeName(a->type()));
  }
  const uint64_t al = a->AsU64();
  if (al == 0 || (al & (al - 1)) != 0) {
    return Status::Error(path + ": metadata 'general.alignment': " + std::to_string(al) + " is not a non-zero power of two");
  }
  return al;
}

// One tensor info: name, shape (no overflow), a known type whose block fits
// the rows, and the offset the previous tensors imply.
Result<GgufTensorInfo> ReadTensorInfo(Cursor& c, const std::string& path, int64_t i, uint64_t expected_offset) {
  GgufTensorInfo ti;
  QF_RETURN_IF_ERROR(c.ReadString(&ti.name, "tensor #" + std::to_string(i) + " name"));
  const std::string what = "tensor '" + ti.name + "'";
  if (ti.name.size() > kMaxTensorName) {
    return Status::Error(path + ": " + what + ": name is " + std::to_string(ti.name.size()) + " bytes (at most 63 allowed)");
  }
  uint32_t n_dims = 0;
  QF_RETURN_IF_ERROR(c.Read(&n_dims, what + " n_dims"));
  if (n_dims < 1 || n_dims > kMaxDims) {
    return Status::Error(path + ": " + what + ": n_dims " + std::to_string(n_dims) + " is out of range (expected 1..4)");
  }
  int64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    int64_t ne = 0;
    QF_RETURN_IF_ERROR(c.Read(&ne, what + " ne[" + std::to_string(d) + "]"));
    if (ne < 0) return Status::Error(path + ": " + what + ": ne[" + std::to_string(d) + "] = " + std::to_string(ne) + " is negative");
    if (MulOverflows(numel, ne, &numel)) return Status::Error(path + ": " + what + ": element count overflows 63 bits");
    ti.ne.push_back(ne);
  }
  int32_t type = 0;
  QF_RETURN_IF_ERROR(c.Read(&type, what + " type"));
  const GgmlTypeTraits* tr = TraitsOf(type);
  if (tr == nullptr) return Status::Error(path + ": " + what + ": ggml type " + std::to_string(type) + " is not a known tensor type");
  ti.type = static_cast<GgmlType>(type);
  if (ti.ne[0] % tr->block_elems != 0) {
    return Status::Error(path + ": " + what + ": row length " + std::to_string(ti.ne[0]) + " is not a multiple of the " +
                         GgmlTypeName(ti.type) + " block size " + std::to_string(tr->block_elems));
  }
  QF_RETURN_IF_ERROR(c.Read(&ti.offset, what + " offset"));
  const uint64_t rows = ti.ne[0] == 0 ? 0 : static_cast<uint64_t>(numel / ti.ne[0]);
  // Each product checked: a wrapped byte count would pass the file-size check.
  uint64_t row_bytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(ti.ne[0] / tr->block_elems), static_cast<uint64_t>(tr->block_bytes), &row_bytes) ||
      __builtin_mul_overflow(rows, row_bytes, &ti.nbytes)) {
    return Status::Error(path + ": " + what + ": byte size of " + std::to_string(numel) + " " + GgmlTypeName(ti.type) +
                         " elements overflows 64 bits");
  }
  if (ti.offset != expected_offset) {
    return Status::Error(path + ": " + what + ": data offset " + std::to_string(ti.offset) + ", expected " +
                         std::to_string(expected_offset) +
                         " (tensor data must follow the infos in order, padded to the alignment)");
  }
  return ti;
}

}  // namespace

Result<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  QF_ASSIGN_OR_RETURN(auto mapped, MappedFile::Open(path));
  auto g = std::unique_ptr<GgufFile>(new GgufFile());
  g->file_ = mapped;
  Cursor c(mapped->data(), mapped->size(), mapped->path());
  int64_t n_tensors = 0, n_kv = 0;
  QF_RETURN_IF_ERROR(ReadHeader(c, *mapped, path, &g->version_, &n_tensors, &n_kv));
  QF_RETURN_IF_ERROR(ReadMetadata(c, path, n_kv, &g->metadata_));
  QF_ASSIGN_OR_RETURN(g->alignment_, AlignmentOf(g->metadata_, path, g->alignment_));
  std::set<std::string> names;
  uint64_t expected_offset = 0;
  g->tensors_.reserve(static_cast<size_t>(n_tensors));
  for (int64_t i = 0; i < n_tensors; ++i) {
    QF_ASSIGN_OR_RETURN(GgufTensorInfo ti, ReadTensorInfo(c, path, i, expected_offset));
    if (!names.insert(ti.name).second) return Status::Error(path + ": tensor '" + ti.name + "': duplicate name");
    expected_offset += PadTo(ti.nbytes, g->alignment_);
    g->tensors_.push_back(std::move(ti));
  }
  g->data_offset_ = PadTo(c.pos(), g->alignment_);
  const uint64_t data_size = mapped->size() >= g->data_offset_ ? mapped->size() - g->data_offset_ : 0;
  for (const auto& t : g->tensors_) {
    if (t.nbytes > 0 && (g->data_offset_ > mapped->size() || t.offset + t.nbytes > data_size)) {
      return Status::Error(path + ": tensor '" + t.name + "': data [" + std::to_string(t.offset) + ", " +
                           std::to_string(t.offset + t.nbytes) + ") lies past the end of the file (" +
                           std::to_string(data_size) + " data bytes; truncated file?)");
    }
  }
  return g;
}

const GgufTensorInfo* GgufFile::FindTensor(const std::string& name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

// --------------------------------------------------------------- GgufWriter

namespace {

void PutString(std::vector<uint8_t>& b, const std::string& s) {
  uint64_t n = s.size();
  const auto* p = reinterpret_cast<const uint8_t*>(&n);
  b.insert(b.end(), p, p + 8);
  b.insert(b.end(), s.begin(), s.end());
}

template <typename T>
void Put(std::vector<uint8_t>& b, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof(T));
}

void PutValue(std::vector<uint8_t>& b, const GgufValue& v) {
  switch (v.type()) {
    case GgufType::UINT8: Put<uint8_t>(b, static_cast<uint8_t>(v.AsU64())); break;
    case GgufType::INT8: Put<int8_t>(b, static_cast<int8_t>(v.AsI64())); break;
    case GgufType::UINT16: Put<uint16_t>(b, static_cast<uint16_t>(v.AsU64())); break;
    case GgufType::INT16: Put<int16_t>(b, static_cast<int16_t>(v.AsI64())); break;
    case GgufType::UINT32: Put<uint32_t>(b, static_cast<uint32_t>(v.AsU64())); break;
    case GgufType::INT32: Put<int32_t>(b, static_cast<int32_t>(v.AsI64())); break;
    case GgufType::FLOAT32: Put<float>(b, static_cast<float>(v.AsF64())); break;
    case GgufType::BOOL: Put<uint8_t>(b, v.AsBool() ? 1 : 0); break;
    case GgufType::UINT64: Put<uint64_t>(b, v.AsU64()); break;
    case GgufType::INT64: Put<int64_t>(b, v.AsI64()); break;
    case GgufType::FLOAT64: Put<double>(b, v.AsF64()); break;
    case GgufType::STRING: PutString(b, v.AsString()); break;
    case GgufType::ARRAY:
      Put<int32_t>(b, static_cast<int32_t>(v.elem_type()));
      Put<uint64_t>(b, v.count());
      if (v.elem_type() == GgufType::STRING) {
        for (const auto& s : v.strings()) PutString(b, s);
      } else {
        b.insert(b.end(), v.array_bytes().begin(), v.array_bytes().end());
      }
      break;
  }
}

std::vector<uint8_t> SerializeHeader(const GgufMetadata& md, const std::vector<GgufTensorInfo>& ts,
                                     uint64_t alignment) {
  std::vector<uint8_t> b;
  b.insert(b.end(), {'G', 'G', 'U', 'F'});
  Put<uint32_t>(b, 3);
  Put<int64_t>(b, static_cast<int64_t>(ts.size()));
  Put<int64_t>(b, static_cast<int64_t>(md.items().size()));
  for (const auto& kv : md.items()) {
    PutString(b, kv.key);
    Put<int32_t>(b, static_cast<int32_t>(kv.value.type()));
    PutValue(b, kv.value);
  }
  for (const auto& t : ts) {
    PutString(b, t.name);
    Put<uint32_t>(b, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) Put<int64_t>(b, d);
    Put<int32_t>(b, static_cast<int32_t>(t.type));
    Put<uint64_t>(b, t.offset);
  }
  b.resize(PadTo(b.size(), alignment), 0);
  return b;
}

}  // namespace

void GgufWriter::AddTensor(const std::string& name, std::vector<int64_t> ne, GgmlType type) {
  GgufTensorInfo ti;
  ti.name = name;
  ti.ne = std::move(ne);
  ti.type = type;
  ti.offset = next_offset_;
  ti.nbytes = static_cast<uint64_t>(ti.n_rows()) * RowBytes(type, ti.ne[0]);
  next_offset_ += PadTo(ti.nbytes, alignment_);
  tensors_.push_back(std::move(ti));
}

uint64_t GgufWriter::TotalBytes() const {
  return SerializeHeader(metadata_, tensors_, alignment_).size() + next_offset_;
}

Status GgufWriter::Begin(const std::string& path) {
  QF_ASSIGN_OR_RETURN(out_, OutputFile::Create(path));
  std::vector<uint8_t> header = SerializeHeader(metadata_, tensors_, alignment_);
  current_ = 0;
  written_in_current_ = 0;
  QF_RETURN_IF_ERROR(out_->Write(header.data(), header.size()));
  return EndTensorIfComplete();
}

Status GgufWriter::EndTensorIfComplete() {
  // Zero-byte tensors complete immediately.
  while (current_ < tensors_.size() && written_in_current_ == tensors_[current_].nbytes) {
    QF_RETURN_IF_ERROR(out_->WriteZeros(PadTo(written_in_current_, alignment_) - written_in_current_));
    ++current_;
    written_in_current_ = 0;
  }
  return Status::Ok();
}

Status GgufWriter::WriteTensorData(const void* data, size_t n) {
  if (!out_) return Status::Error("GGUF writer: WriteTensorData before Begin");
  if (current_ >= tensors_.size()) return Status::Error(out_->path() + ": more tensor data than declared");
  const GgufTensorInfo& t = tensors_[current_];
  if (written_in_current_ + n > t.nbytes) {
    return Status::Error(out_->path() + ": tensor '" + t.name + "': " +
                         std::to_string(written_in_current_ + n) + " bytes written, " +
                         std::to_string(t.nbytes) + " declared");
  }
  QF_RETURN_IF_ERROR(out_->Write(data, n));
  written_in_current_ += n;
  return EndTensorIfComplete();
}

Status GgufWriter::Finish() {
  if (!out_) return Status::Error("GGUF writer: Finish before Begin");
  if (current_ != tensors_.size()) {
    return Status::Error(out_->path() + ": tensor '" + tensors_[current_].name +
                         "' was not written completely");
  }
  QF_RETURN_IF_ERROR(out_->Commit());
  out_.reset();
  return Status::Ok();
}

}  // namespace qforge
