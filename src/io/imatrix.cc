#include "io/imatrix.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "io/gguf.h"
#include "io/mapped_file.h"

namespace qforge {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// An entry holds mean squared activations: finite and never negative. A
// negative weight would turn the quantizers' weighted error searches
// upside down (they would seek the largest error).
Status CheckValues(const std::string& path, const std::string& name, const std::vector<float>& v) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (std::isfinite(v[i]) && v[i] >= 0.0f) continue;
    char found[32];
    std::snprintf(found, sizeof found, "%g", static_cast<double>(v[i]));
    return Status::Error(path + ": entry '" + name + "': value " + std::to_string(i) + " is " + found +
                         ", expected a finite mean of squares (>= 0)");
  }
  return Status::Ok();
}

Result<Imatrix> ReadGgufImatrix(const std::string& path) {
  QF_ASSIGN_OR_RETURN(auto g, GgufFile::Open(path));
  Imatrix m;
  m.path = path;
  const GgufMetadata& md = g->metadata();
  const GgufValue* datasets = md.Find("imatrix.datasets");
  const GgufValue* chunk_count = md.Find("imatrix.chunk_count");
  const GgufValue* chunk_size = md.Find("imatrix.chunk_size");
  if (!datasets || !chunk_count || !chunk_size) {
    return Status::Error(path + ": metadata: missing imatrix metadata (expected imatrix.datasets, "
                                "imatrix.chunk_count and imatrix.chunk_size)");
  }
  if (datasets->is_array() && datasets->elem_type() == GgufType::STRING) m.datasets = datasets->strings();
  if (!chunk_count->is_integer() || !chunk_size->is_integer()) {
    return Status::Error(path + ": metadata 'imatrix.chunk_count': expected an integer");
  }
  m.chunk_count = chunk_count->AsI64();
  m.chunk_size = chunk_size->AsI64();
  for (const auto& t : g->tensors()) {
    if (!EndsWith(t.name, ".in_sum2")) continue;
    const std::string name = t.name.substr(0, t.name.size() - 8);
    const GgufTensorInfo* counts = g->FindTensor(name + ".counts");
    if (counts == nullptr) return Status::Error(path + ": tensor '" + name + ".counts': missing for '" + t.name + "'");
    if (t.type != GgmlType::F32 || counts->type != GgmlType::F32) {
      return Status::Error(path + ": entry '" + name + "': in_sum2 and counts must be F32");
    }
    const int64_t ne0 = t.ne[0];
    const int64_t n_mat = t.ne.size() > 1 ? t.n_elements() / std::max<int64_t>(1, ne0) : 1;
    if (counts->n_elements() != n_mat) {
      return Status::Error(path + ": tensor '" + name + ".counts': has " + std::to_string(counts->n_elements()) +
                           " values, expected one per matrix (" + std::to_string(n_mat) + ")");
    }
    std::vector<float> sums(static_cast<size_t>(t.n_elements())), cnt(static_cast<size_t>(n_mat));
    std::memcpy(sums.data(), g->TensorData(t), sums.size() * 4);
    std::memcpy(cnt.data(), g->TensorData(*counts), cnt.size() * 4);
    ImatrixEntry e;
    e.n_mat = n_mat;
    for (float c : cnt) e.counts.push_back(std::llround(c));
    e.values.resize(sums.size());
    for (int64_t k = 0; k < n_mat; ++k) {
      const auto c = static_cast<float>(std::llround(cnt[static_cast<size_t>(k)]));
      for (int64_t j = 0; j < ne0; ++j) {
        const size_t i = static_cast<size_t>(k * ne0 + j);
        e.values[i] = c != 0.0f ? sums[i] / c : 1.0f;
      }
    }
    QF_RETURN_IF_ERROR(CheckValues(path, name, e.values));
    m.entries[name] = std::move(e);
  }
  if (m.entries.empty()) return Status::Error(path + ": tensors: no <name>.in_sum2 entries (not an imatrix file?)");
  return m;
}

class LegacyCursor {
 public:
  LegacyCursor(const MappedFile& f) : p_(f.data()), end_(f.data() + f.size()), path_(f.path()) {}
  bool at_end() const { return p_ >= end_; }
  Status I32(int32_t* v, const std::string& what) {
    if (end_ - p_ < 4) return Status::Error(path_ + ": " + what + ": file ends early (truncated imatrix?)");
    std::memcpy(v, p_, 4);
    p_ += 4;
    return Status::Ok();
  }
  Status Bytes(void* out, size_t n, const std::string& what) {
    if (static_cast<size_t>(end_ - p_) < n) {
      return Status::Error(path_ + ": " + what + ": needs " + std::to_string(n) + " bytes, the file has " +
                           std::to_string(end_ - p_) + " left (truncated imatrix?)");
    }
    std::memcpy(out, p_, n);
    p_ += n;
    return Status::Ok();
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  std::string path_;
};

Result<Imatrix> ReadLegacyImatrix(const std::string& path, const MappedFile& f) {
  Imatrix m;
  m.path = path;
  LegacyCursor c(f);
  int32_t n_entries = 0;
  QF_RETURN_IF_ERROR(c.I32(&n_entries, "entry count"));
  if (n_entries <= 0 || static_cast<uint64_t>(n_entries) > f.size() / 12) {
    return Status::Error(path + ": entry count: " + std::to_string(n_entries) +
                         " is not a plausible number of entries (not an imatrix file?)");
  }
  for (int32_t i = 0; i < n_entries; ++i) {
    const std::string what = "entry #" + std::to_string(i);
    int32_t len = 0;
    QF_RETURN_IF_ERROR(c.I32(&len, what + " name length"));
    if (len <= 0 || len > 4096) return Status::Error(path + ": " + what + ": name length " + std::to_string(len) + " is invalid");
    std::string name(static_cast<size_t>(len), '\0');
    QF_RETURN_IF_ERROR(c.Bytes(name.data(), name.size(), what + " name"));
    int32_t ncall = 0, nval = 0;
    QF_RETURN_IF_ERROR(c.I32(&ncall, "entry '" + name + "' ncall"));
    QF_RETURN_IF_ERROR(c.I32(&nval, "entry '" + name + "' nval"));
    if (nval <= 0 || static_cast<uint64_t>(nval) > f.size() / 4) {
      return Status::Error(path + ": entry '" + name + "': value count " + std::to_string(nval) + " is invalid");
    }
    ImatrixEntry e;
    e.values.resize(static_cast<size_t>(nval));
    QF_RETURN_IF_ERROR(c.Bytes(e.values.data(), e.values.size() * 4, "entry '" + name + "' values"));
    if (ncall > 0) {
      for (float& v : e.values) v = v / static_cast<float>(ncall);
    }
    QF_RETURN_IF_ERROR(CheckValues(path, name, e.values));
    m.entries[name] = std::move(e);
  }
  if (!c.at_end()) {
    int32_t chunks = 0;
    QF_RETURN_IF_ERROR(c.I32(&chunks, "chunk count"));
    m.chunk_count = chunks;
    if (!c.at_end()) {
      int32_t dlen = 0;
      QF_RETURN_IF_ERROR(c.I32(&dlen, "dataset name length"));
      if (dlen < 0 || dlen > 1 << 20) return Status::Error(path + ": dataset name length: " + std::to_string(dlen) + " is invalid");
      std::string ds(static_cast<size_t>(dlen), '\0');
      QF_RETURN_IF_ERROR(c.Bytes(ds.data(), ds.size(), "dataset name"));
      m.datasets.push_back(ds);
    }
  }
  return m;
}

}  // namespace

Result<Imatrix> ReadImatrix(const std::string& path) {
  QF_ASSIGN_OR_RETURN(auto f, MappedFile::Open(path));
  if (f->size() >= 4 && std::memcmp(f->data(), "GGUF", 4) == 0) return ReadGgufImatrix(path);
  return ReadLegacyImatrix(path, *f);
}

void FilterImatrix(Imatrix* m, const std::vector<std::string>& include, const std::vector<std::string>& exclude) {
  for (auto it = m->entries.begin(); it != m->entries.end();) {
    bool keep = include.empty();
    for (const auto& s : include) keep = keep || it->first.find(s) != std::string::npos;
    for (const auto& s : exclude) keep = keep && it->first.find(s) == std::string::npos;
    it = keep ? std::next(it) : m->entries.erase(it);
  }
}

}  // namespace qforge
