#include "tokenizer/spm_model.h"

#include <cstring>

#include "io/mapped_file.h"

namespace qforge {
namespace {

// Protobuf wire format: (field << 3 | wire type) keys; wire types 0 varint,
// 1 fixed64, 2 length-delimited, 5 fixed32.
class Wire {
 public:
  Wire(const uint8_t* p, size_t n, const std::string& path) : p_(p), end_(p + n), path_(path) {}
  bool done() const { return p_ >= end_; }

  Status Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) return Error("varint runs past the end");
      uint8_t b = *p_++;
      *v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return Status::Ok();
    }
    return Error("varint longer than 10 bytes");
  }

  Status Field(uint32_t* field, uint32_t* wire) {
    uint64_t key = 0;
    QF_RETURN_IF_ERROR(Varint(&key));
    *field = static_cast<uint32_t>(key >> 3);
    *wire = static_cast<uint32_t>(key & 7);
    return Status::Ok();
  }

  Status Bytes(const uint8_t** data, size_t* n) {
    uint64_t len = 0;
    QF_RETURN_IF_ERROR(Varint(&len));
    if (len > static_cast<uint64_t>(end_ - p_)) return Error("length-delimited field runs past the end");
    *data = p_;
    *n = static_cast<size_t>(len);
    p_ += len;
    return Status::Ok();
  }

  Status Fixed32(uint32_t* v) {
    if (end_ - p_ < 4) return Error("fixed32 runs past the end");
    std::memcpy(v, p_, 4);
    p_ += 4;
    return Status::Ok();
  }

  Status Skip(uint32_t wire) {
    uint64_t v;
    const uint8_t* d;
    size_t n;
    switch (wire) {
      case 0: return Varint(&v);
      case 1:
        if (end_ - p_ < 8) return Error("fixed64 runs past the end");
        p_ += 8;
        return Status::Ok();
      case 2: return Bytes(&d, &n);
      case 5: {
        uint32_t x;
        return Fixed32(&x);
      }
      default: return Error("unknown protobuf wire type " + std::to_string(wire));
    }
  }

  Status Error(const std::string& what) const {
    return Status::Error(path_ + ": " + what + " (not a sentencepiece model?)");
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  const std::string& path_;
};

Status ParsePiece(const uint8_t* d, size_t n, const std::string& path, SpmPiece* piece) {
  Wire w(d, n, path);
  while (!w.done()) {
    uint32_t f = 0, wt = 0;
    QF_RETURN_IF_ERROR(w.Field(&f, &wt));
    if (f == 1 && wt == 2) {
      const uint8_t* s = nullptr;
      size_t len = 0;
      QF_RETURN_IF_ERROR(w.Bytes(&s, &len));
      piece->text.assign(reinterpret_cast<const char*>(s), len);
    } else if (f == 2 && wt == 5) {
      uint32_t bits = 0;
      QF_RETURN_IF_ERROR(w.Fixed32(&bits));
      std::memcpy(&piece->score, &bits, 4);
    } else if (f == 3 && wt == 0) {
      uint64_t t = 0;
      QF_RETURN_IF_ERROR(w.Varint(&t));
      if (t < 1 || t > 6) return w.Error("piece type " + std::to_string(t) + " is invalid (expected 1..6)");
      piece->type = static_cast<int>(t);
    } else {
      QF_RETURN_IF_ERROR(w.Skip(wt));
    }
  }
  return Status::Ok();
}

Status ParseNormalizer(const uint8_t* d, size_t n, const std::string& path, SpmModel* m) {
  Wire w(d, n, path);
  while (!w.done()) {
    uint32_t f = 0, wt = 0;
    QF_RETURN_IF_ERROR(w.Field(&f, &wt));
    if ((f == 3 || f == 4) && wt == 0) {
      uint64_t v = 0;
      QF_RETURN_IF_ERROR(w.Varint(&v));
      (f == 3 ? m->add_dummy_prefix : m->remove_extra_whitespaces) = v != 0;
    } else {
      QF_RETURN_IF_ERROR(w.Skip(wt));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<SpmModel> ReadSpmModel(const std::string& path) {
  QF_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  SpmModel m;
  Wire w(file->data(), file->size(), path);
  while (!w.done()) {
    uint32_t f = 0, wt = 0;
    QF_RETURN_IF_ERROR(w.Field(&f, &wt));
    if (f == 1 && wt == 2) {
      const uint8_t* d = nullptr;
      size_t n = 0;
      QF_RETURN_IF_ERROR(w.Bytes(&d, &n));
      SpmPiece piece;
      QF_RETURN_IF_ERROR(ParsePiece(d, n, path, &piece));
      m.pieces.push_back(std::move(piece));
    } else if (f == 3 && wt == 2) {
      const uint8_t* d = nullptr;
      size_t n = 0;
      QF_RETURN_IF_ERROR(w.Bytes(&d, &n));
      QF_RETURN_IF_ERROR(ParseNormalizer(d, n, path, &m));
    } else {
      QF_RETURN_IF_ERROR(w.Skip(wt));
    }
  }
  if (m.pieces.empty()) return Status::Error(path + ": pieces: none found (not a sentencepiece model?)");
  return m;
}

}  // namespace qforge
