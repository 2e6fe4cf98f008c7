#include "pipeline/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "base/sha256.h"
#include "io/json_file.h"
#include "io/output_file.h"

namespace qforge {
namespace fs = std::filesystem;
namespace {

constexpr char kMagic[8] = {'Q', 'F', 'J', 'R', 'N', 'L', '0', '2'};

std::string LayerFile(const std::string& dir, int64_t layer) {
  char name[32];
  std::snprintf(name, sizeof name, "layer-%05lld.bin", static_cast<long long>(layer));
  return (fs::path(dir) / name).string();
}

// Writes bytes to path through OutputFile (a temporary file, fsync and a
// rename), then syncs the folder: after a power cut the entry is there whole
// or not at all.
Status WriteAtomically(const std::string& path, const std::string& bytes) {
  QF_ASSIGN_OR_RETURN(std::unique_ptr<OutputFile> out, OutputFile::Create(path));
  QF_RETURN_IF_ERROR(out->Write(bytes.data(), bytes.size()).WithContext("resume journal"));
  QF_RETURN_IF_ERROR(out->Commit().WithContext("resume journal"));
  if (const int dfd = ::open(fs::path(path).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
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
    if (n > s_.size() - at_) {
      return Status::Error(path_ + ": resume journal entry is truncated at byte " + std::to_string(at_) + " (" +
                           std::to_string(n) + " more bytes expected, " + std::to_string(s_.size() - at_) + " left)");
    }
    std::memcpy(p, s_.data() + at_, n);
    at_ += n;
    return Status::Ok();
  }
  Status I64(int64_t* v) { return Raw(v, 8); }
  Status Count(int64_t* n, size_t elem) {
    QF_RETURN_IF_ERROR(I64(n));
    if (*n < 0 || static_cast<uint64_t>(*n) > (s_.size() - at_) / elem) {
      return Status::Error(path_ + ": resume journal entry has a count of " + std::to_string(*n) + " at byte " +
                           std::to_string(at_) + ", more than the " + std::to_string(s_.size() - at_) + " bytes left");
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

Status ReadGrid(Reader& r, const std::string& path, const std::string& name, IntQuantized* q) {
  int64_t v[8];
  for (int64_t& x : v) QF_RETURN_IF_ERROR(r.I64(&x));
  const std::string what = path + ": '" + name + "': ";
  if (v[0] != 2 && v[0] != 3 && v[0] != 4 && v[0] != 8) return Status::Error(what + "bits " + std::to_string(v[0]) + ", expected 2, 3, 4 or 8");
  if (v[3] < 0 || v[3] > static_cast<int64_t>(ScaleDtype::kBF16)) {
    return Status::Error(what + "scale dtype " + std::to_string(v[3]) + ", expected 0..2");
  }
  // Bounded before any product of them is formed.
  constexpr int64_t kMaxDim = int64_t{1} << 31, kMaxElements = int64_t{1} << 46;
  const int64_t rows = v[5], cols = v[6], groups = v[7];
  if (rows <= 0 || cols <= 0 || rows > kMaxDim || cols > kMaxDim || rows > kMaxElements / cols || groups <= 0 ||
      groups > cols) {
    return Status::Error(what + "shape [" + std::to_string(rows) + ", " + std::to_string(cols) + "] with " +
                         std::to_string(groups) + " groups is not a plausible linear layer");
  }
  q->spec.bits = static_cast<int>(v[0]);
  q->spec.group_size = v[1];
  q->spec.symmetric = v[2] != 0;
  q->spec.scale_dtype = static_cast<ScaleDtype>(v[3]);
  q->spec.zero_at_least_one = v[4] != 0;
  q->rows = rows;
  q->cols = cols;
  q->n_groups = groups;
  QF_RETURN_IF_ERROR(r.Vec(&q->codes));
  QF_RETURN_IF_ERROR(r.Vec(&q->scales));
  QF_RETURN_IF_ERROR(r.Vec(&q->zeros));
  QF_RETURN_IF_ERROR(r.Vec(&q->g_idx));
  if (q->codes.size() != static_cast<size_t>(rows * cols) || q->scales.size() != static_cast<size_t>(rows * groups) ||
      q->zeros.size() != q->scales.size() || q->g_idx.size() != static_cast<size_t>(cols)) {
    return Status::Error(what + std::to_string(q->codes.size()) + " codes, " + std::to_string(q->scales.size()) + " scales, " +
                         std::to_string(q->zeros.size()) + " zeros, " + std::to_string(q->g_idx.size()) +
                         " group indices; expected " + std::to_string(rows * cols) + ", " + std::to_string(rows * groups) +
                         ", " + std::to_string(rows * groups) + ", " + std::to_string(cols));
  }
  const int maxq = q->spec.maxq();
  for (size_t i = 0; i < q->codes.size(); ++i) {
    if (q->codes[i] > maxq) return Status::Error(what + "code " + std::to_string(i) + " is " + std::to_string(q->codes[i]) + ", above " + std::to_string(maxq));
  }
  for (size_t i = 0; i < q->zeros.size(); ++i) {
    if (q->zeros[i] < 0 || q->zeros[i] > maxq) {
      return Status::Error(what + "zero point " + std::to_string(i) + " is " + std::to_string(q->zeros[i]) + ", expected 0.." + std::to_string(maxq));
    }
  }
  for (size_t k = 0; k < q->g_idx.size(); ++k) {
    if (q->g_idx[k] < 0 || q->g_idx[k] >= groups) {
      return Status::Error(what + "column " + std::to_string(k) + " is in group " + std::to_string(q->g_idx[k]) + ", expected 0.." +
                           std::to_string(groups - 1));
    }
  }
  return Status::Ok();
}

}  // namespace

std::string LayerJournal::DirFor(const std::string& output_path) {
  std::string p = output_path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p + ".qforge-resume";
}

namespace {

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  size_t b = 0;
  while (b <= s.size()) {
    const size_t e = s.find('\n', b);
    out.push_back(s.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  return out;
}

// Which fact differs between the journal's run and this one.
std::string FirstDifference(const std::string& was, const std::string& now) {
  const auto a = Lines(was), b = Lines(now);
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const std::string x = i < a.size() ? a[i] : "(nothing)", y = i < b.size() ? b[i] : "(nothing)";
    if (x != y) return "it had '" + x + "' where this run has '" + y + "'";
  }
  return "its calibration tokens differ";
}

}  // namespace

Status LayerJournal::WriteState() const {
  return WriteAtomically((fs::path(dir_) / "journal.json").string(),
                         nlohmann::json{{"fingerprint", run_.hash}, {"run", run_.description}, {"layers_done", layers_done_}}
                             .dump(1));
}

Result<LayerJournal> LayerJournal::Open(const std::string& dir, const RunId& run, bool resume) {
  LayerJournal j;
  j.dir_ = dir;
  j.run_ = run;
  std::error_code ec;
  const std::string state = (fs::path(dir) / "journal.json").string();
  if (resume && fs::exists(state, ec)) {
    QF_ASSIGN_OR_RETURN(nlohmann::json s, ReadJsonFile(state));
    if (!s.is_object() || !s.contains("fingerprint") || !s["fingerprint"].is_string() || !s.contains("layers_done") ||
        !s["layers_done"].is_number_integer() || s["layers_done"].get<int64_t>() < 0) {
      return Status::Error(state + ": not a qforge resume journal (expected fingerprint and layers_done)");
    }
    if (s["fingerprint"].get<std::string>() != run.hash) {
      const std::string was = s.contains("run") && s["run"].is_string() ? s["run"].get<std::string>() : "";
      return Status::Error(state + ": the interrupted run had another model, plan, options or calibration text (" +
                           FirstDifference(was, run.description) + "); run again without --resume to start over");
    }
    j.layers_done_ = s["layers_done"].get<int64_t>();
    j.resumed_ = j.layers_done_;
    return j;
  }
  fs::remove_all(dir, ec);
  if (!fs::create_directories(dir, ec) || ec) {
    return Status::Error(dir + ": cannot create the resume journal (" + ec.message() + ")");
  }
  QF_RETURN_IF_ERROR(j.WriteState());
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
  w.I64(static_cast<int64_t>(out.expert_tokens.size()));
  for (int64_t n : out.expert_tokens) w.I64(n);
  QF_RETURN_IF_ERROR(WriteAtomically(LayerFile(dir_, out.layer), w.bytes()));
  // The layer counts as done only once its file is whole.
  ++layers_done_;
  return WriteState();
}

Result<LayerOutput> LayerJournal::Load(int64_t layer) const {
  const std::string path = LayerFile(dir_, layer);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error(path + ": missing from the resume journal");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Reader r(std::move(bytes), path);
  char magic[sizeof kMagic];
  QF_RETURN_IF_ERROR(r.Raw(magic, sizeof magic));
  if (std::memcmp(magic, kMagic, sizeof kMagic) != 0) {
    return Status::Error(path + ": starts with '" + Sha256::HexOf(magic, sizeof magic) + "' (hex), not qforge's journal magic");
  }
  LayerOutput out;
  QF_RETURN_IF_ERROR(r.I64(&out.layer));
  if (out.layer != layer) {
    return Status::Error(path + ": holds layer " + std::to_string(out.layer) + ", expected " + std::to_string(layer));
  }
  int64_t n = 0;
  QF_RETURN_IF_ERROR(r.Count(&n, 8));
  for (int64_t i = 0; i < n; ++i) {
    auto& [name, q] = out.quantized.emplace_back();
    QF_RETURN_IF_ERROR(r.Str(&name));
    QF_RETURN_IF_ERROR(ReadGrid(r, path, name, &q));
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
  QF_RETURN_IF_ERROR(r.Count(&n, 8));
  out.expert_tokens.resize(static_cast<size_t>(n));
  for (auto& c : out.expert_tokens) QF_RETURN_IF_ERROR(r.I64(&c));
  if (!r.at_end()) return Status::Error(path + ": bytes after the last field of the resume journal entry");
  return out;
}

Status LayerJournal::Truncate(int64_t layer) {
  if (layer >= layers_done_) return Status::Ok();
  layers_done_ = std::max<int64_t>(0, layer);
  resumed_ = std::min(resumed_, layers_done_);
  return WriteState();
}

void LayerJournal::Remove() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

}  // namespace qforge
