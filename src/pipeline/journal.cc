#include "pipeline/journal.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/json_file.h"

namespace qforge {
namespace fs = std::filesystem;
namespace {

constexpr char kMagic[8] = {'Q', 'F', 'J', 'R', 'N', 'L', '0', '1'};

std::string LayerFile(const std::string& dir, int64_t layer) {
  char name[32];
  std::snprintf(name, sizeof name, "layer-%05lld.bin", static_cast<long long>(layer));
  return (fs::path(dir) / name).string();
}

// Writes bytes to path through a temporary file and a rename.
Status WriteAtomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) return Status::Error(tmp + ": cannot write the resume journal");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status::Error(path + ": cannot write the resume journal (" + ec.message() + ")");
  return Status::Ok();
}

class Writer {
 public:
  void Raw(const void* p, size_t n) { s_.append(static_cast<const char*>(p), n); }
  void I64(int64_t v) { Raw(&v, 8); }
  void Str(const std::string& v) {
    I64(static_cast<int64_t>(v.size()));
    Raw(v.data(), v.size());
  }
  template <typename T>
  void Vec(const std::vector<T>& v) {
    I64(static_cast<int64_t>(v.size()));
    Raw(v.data(), v.size() * sizeof(T));
  }
  std::string& bytes() { return s_; }

 private:
  std::string s_;
};

// Reads back what Writer wrote; every count is checked against the bytes
// left, so a damaged file is an error, never an overrun.
class Reader {
 public:
  Reader(std::string bytes, std::string path) : s_(std::move(bytes)), path_(std::move(path)) {}
  Status Raw(void* p, size_t n) {
    if (n > s_.size() - at_) return Status::Error(path_ + ": resume journal entry is truncated");
    std::memcpy(p, s_.data() + at_, n);
    at_ += n;
    return Status::Ok();
  }
  Status I64(int64_t* v) { return Raw(v, 8); }
  Status Count(int64_t* n, size_t elem) {
    QF_RETURN_IF_ERROR(I64(n));
    if (*n < 0 || static_cast<uint64_t>(*n) > (s_.size() - at_) / elem) {
      return Status::Error(path_ + ": resume journal entry has an impossible count " + std::to_string(*n));
    }
    return Status::Ok();
  }
  Status Str(std::string* v) {
    int64_t n = 0;
    QF_RETURN_IF_ERROR(Count(&n, 1));
    v->assign(s_.data() + at_, static_cast<size_t>(n));
    at_ += static_cast<size_t>(n);
    return Status::Ok();
  }
  template <typename T>
  Status Vec(std::vector<T>* v) {
    int64_t n = 0;
    QF_RETURN_IF_ERROR(Count(&n, sizeof(T)));
    v->resize(static_cast<size_t>(n));
    return Raw(v->data(), v->size() * sizeof(T));
  }
  bool at_end() const { return at_ == s_.size(); }

 private:
  std::string s_, path_;
  size_t at_ = 0;
};

void WriteGrid(Writer& w, const IntQuantized& q) {
  const IntQuantSpec& s = q.spec;
  for (int64_t v : {int64_t{s.bits}, s.group_size, int64_t{s.symmetric}, static_cast<int64_t>(s.scale_dtype),
                    int64_t{s.zero_at_least_one}, q.rows, q.cols, q.n_groups}) {
    w.I64(v);
  }
  w.Vec(q.codes);
  w.Vec(q.scales);
  w.Vec(q.zeros);
  w.Vec(q.g_idx);
}

Status ReadGrid(Reader& r, const std::string& path, IntQuantized* q) {
  int64_t v[8];
  for (int64_t& x : v) QF_RETURN_IF_ERROR(r.I64(&x));
  q->spec.bits = static_cast<int>(v[0]);
  q->spec.group_size = v[1];
  q->spec.symmetric = v[2] != 0;
  if (v[3] < 0 || v[3] > static_cast<int64_t>(ScaleDtype::kBF16)) return Status::Error(path + ": bad scale dtype");
  q->spec.scale_dtype = static_cast<ScaleDtype>(v[3]);
  q->spec.zero_at_least_one = v[4] != 0;
  q->rows = v[5];
  q->cols = v[6];
  q->n_groups = v[7];
  QF_RETURN_IF_ERROR(r.Vec(&q->codes));
  QF_RETURN_IF_ERROR(r.Vec(&q->scales));
  QF_RETURN_IF_ERROR(r.Vec(&q->zeros));
  QF_RETURN_IF_ERROR(r.Vec(&q->g_idx));
  const bool fits = q->rows >= 0 && q->cols >= 0 && q->n_groups >= 0 &&
                    q->codes.size() == static_cast<size_t>(q->rows * q->cols) &&
                    q->scales.size() == static_cast<size_t>(q->rows * q->n_groups) && q->zeros.size() == q->scales.size() &&
                    q->g_idx.size() == static_cast<size_t>(q->cols);
  if (!fits) return Status::Error(path + ": a quantized linear's sizes disagree");
  for (int32_t g : q->g_idx) {
    if (g < 0 || g >= q->n_groups) return Status::Error(path + ": a group index is out of range");
  }
  return Status::Ok();
}

}  // namespace

std::string LayerJournal::DirFor(const std::string& output_path) {
  std::string p = output_path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p + ".qforge-resume";
}

Result<LayerJournal> LayerJournal::Open(const std::string& dir, const std::string& fingerprint, bool resume) {
  LayerJournal j;
  j.dir_ = dir;
  j.fingerprint_ = fingerprint;
  std::error_code ec;
  const std::string state = (fs::path(dir) / "journal.json").string();
  if (resume && fs::exists(state, ec)) {
    QF_ASSIGN_OR_RETURN(nlohmann::json s, ReadJsonFile(state));
    if (!s.is_object() || !s.contains("fingerprint") || !s["fingerprint"].is_string() || !s.contains("layers_done") ||
        !s["layers_done"].is_number_integer() || s["layers_done"].get<int64_t>() < 0) {
      return Status::Error(state + ": not a qforge resume journal (expected fingerprint and layers_done)");
    }
    if (s["fingerprint"].get<std::string>() != fingerprint) {
      return Status::Error(state + ": the interrupted run had another model, plan, options or calibration text; "
                           "run again without --resume to start over");
    }
    j.layers_done_ = s["layers_done"].get<int64_t>();
    return j;
  }
  fs::remove_all(dir, ec);
  if (!fs::create_directories(dir, ec) || ec) {
    return Status::Error(dir + ": cannot create the resume journal (" + ec.message() + ")");
  }
  QF_RETURN_IF_ERROR(WriteAtomically(state, nlohmann::json{{"fingerprint", fingerprint}, {"layers_done", 0}}.dump()));
  return j;
}

Status LayerJournal::Save(const LayerOutput& out) {
  if (out.layer != layers_done_) {
    return Status::Error("internal: journal expected layer " + std::to_string(layers_done_) + ", got " +
                         std::to_string(out.layer));
  }
  Writer w;
  w.Raw(kMagic, sizeof kMagic);
  w.I64(out.layer);
  w.I64(static_cast<int64_t>(out.quantized.size()));
  for (const auto& [name, q] : out.quantized) {
    w.Str(name);
    WriteGrid(w, q);
  }
  w.I64(static_cast<int64_t>(out.encoded.size()));
  for (const auto& [name, b] : out.encoded) {
    w.Str(name);
    w.Vec(b);
  }
  w.I64(static_cast<int64_t>(out.changed.size()));
  for (const auto& [name, v] : out.changed) {
    w.Str(name);
    w.Vec(v);
  }
  w.I64(static_cast<int64_t>(out.warnings.size()));
  for (const auto& s : out.warnings) w.Str(s);
  QF_RETURN_IF_ERROR(WriteAtomically(LayerFile(dir_, out.layer), w.bytes()));
  // The layer counts as done only once its file is whole.
  QF_RETURN_IF_ERROR(WriteAtomically((fs::path(dir_) / "journal.json").string(),
                                     nlohmann::json{{"fingerprint", fingerprint_}, {"layers_done", out.layer + 1}}.dump()));
  ++layers_done_;
  return Status::Ok();
}

Result<LayerOutput> LayerJournal::Load(int64_t layer) const {
  const std::string path = LayerFile(dir_, layer);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error(path + ": missing from the resume journal");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Reader r(std::move(bytes), path);
  char magic[sizeof kMagic];
  QF_RETURN_IF_ERROR(r.Raw(magic, sizeof magic));
  if (std::memcmp(magic, kMagic, sizeof kMagic) != 0) return Status::Error(path + ": not a qforge journal entry");
  LayerOutput out;
  QF_RETURN_IF_ERROR(r.I64(&out.layer));
  if (out.layer != layer) return Status::Error(path + ": holds layer " + std::to_string(out.layer));
  int64_t n = 0;
  QF_RETURN_IF_ERROR(r.Count(&n, 8));
  for (int64_t i = 0; i < n; ++i) {
    auto& [name, q] = out.quantized.emplace_back();
    QF_RETURN_IF_ERROR(r.Str(&name));
    QF_RETURN_IF_ERROR(ReadGrid(r, path, &q));
  }
  QF_RETURN_IF_ERROR(r.Count(&n, 8));
  for (int64_t i = 0; i < n; ++i) {
    auto& [name, b] = out.encoded.emplace_back();
    QF_RETURN_IF_ERROR(r.Str(&name));
    QF_RETURN_IF_ERROR(r.Vec(&b));
  }
  QF_RETURN_IF_ERROR(r.Count(&n, 8));
  for (int64_t i = 0; i < n; ++i) {
    auto& [name, v] = out.changed.emplace_back();
    QF_RETURN_IF_ERROR(r.Str(&name));
    QF_RETURN_IF_ERROR(r.Vec(&v));
  }
  QF_RETURN_IF_ERROR(r.Count(&n, 8));
  out.warnings.resize(static_cast<size_t>(n));
  for (auto& s : out.warnings) QF_RETURN_IF_ERROR(r.Str(&s));
  if (!r.at_end()) return Status::Error(path + ": trailing bytes in a resume journal entry");
  return out;
}

void LayerJournal::Remove() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

}  // namespace qforge
