#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "io/output_file.h"

namespace qforge {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct DtypeRow {
  StDtype dtype;
  const char* name;
  int bytes;
};
// Ascending order of the reference writer's enumeration (element size order).
constexpr DtypeRow kDtypes[] = {
    {StDtype::BOOL, "BOOL", 1},       {StDtype::U8, "U8", 1},   {StDtype::I8, "I8", 1},
    {StDtype::F8_E5M2, "F8_E5M2", 1}, {StDtype::F8_E4M3, "F8_E4M3", 1},
    {StDtype::I16, "I16", 2},         {StDtype::U16, "U16", 2}, {StDtype::F16, "F16", 2},
    {StDtype::BF16, "BF16", 2},       {StDtype::I32, "I32", 4}, {StDtype::U32, "U32", 4},
    {StDtype::F32, "F32", 4},         {StDtype::F64, "F64", 8}, {StDtype::I64, "I64", 8},
    {StDtype::U64, "U64", 8},
};

int DtypeRank(StDtype d) {
  for (size_t i = 0; i < std::size(kDtypes); ++i) {
    if (kDtypes[i].dtype == d) return static_cast<int>(i);
  }
  return -1;
}

constexpr uint64_t kMaxHeader = 100000000;

}  // namespace

const char* StDtypeName(StDtype d) { return kDtypes[DtypeRank(d)].name; }
int StDtypeBytes(StDtype d) { return kDtypes[DtypeRank(d)].bytes; }

std::optional<StDtype> StDtypeFromName(const std::string& s) {
  for (const auto& r : kDtypes) {
    if (s == r.name) return r.dtype;
  }
  return std::nullopt;
}

int64_t StTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

// The header's JSON: its length checked against the file and the limit.
Result<json> ReadHeaderJson(const MappedFile& file, const std::string& path, uint64_t* header_len) {
  const size_t size = file.size();
  if (size < 8) {
    return Status::Error(path + ": header length: file has " + std::to_string(size) +
                         " bytes, fewer than the 8-byte header length (truncated file?)");
  }
  uint64_t n = 0;
  std::memcpy(&n, file.data(), 8);
  if (n > kMaxHeader) {
    return Status::Error(path + ": header length: " + std::to_string(n) +
                         " exceeds the 100000000-byte limit (not a safetensors file?)");
  }
  if (n > size - 8) {
    return Status::Error(path + ": header length: " + std::to_string(n) + " bytes past the end of the " +
                         std::to_string(size) + "-byte file (truncated file?)");
  }
  json header;
  try {
    header = json::parse(file.data() + 8, file.data() + 8 + n);
  } catch (const json::exception& e) {
    return Status::Error(path + ": header: invalid JSON: " + e.what());
  }
  if (!header.is_object()) return Status::Error(path + ": header: expected a JSON object");
  *header_len = n;
  return header;
}

Status ReadMetadata(const json& v, const std::string& path, std::map<std::string, std::string>* metadata) {
  if (!v.is_object()) return Status::Error(path + ": __metadata__: expected an object of strings");
  for (auto m = v.begin(); m != v.end(); ++m) {
    if (!m.value().is_string()) return Status::Error(path + ": __metadata__." + m.key() + ": expected a string value");
    if (metadata) (*metadata)[m.key()] = m.value().get<std::string>();
  }
  return Status::Ok();
}

// One header entry: dtype, shape (no overflow) and data_offsets inside the
// data section, spanning exactly what dtype and shape need.
Result<StTensor> ReadEntry(const std::string& name, const json& v, const std::string& path, const uint8_t* data,
                           uint64_t data_size) {
  const std::string what = path + ": tensor '" + name + "'";
  if (!v.is_object()) return Status::Error(what + ": expected an object with dtype, shape, data_offsets");
  StTensor t;
  t.name = name;
  auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) return Status::Error(what + ": dtype: expected a string");
  const std::optional<StDtype> dtype = StDtypeFromName(dt->get<std::string>());
  if (!dtype) return Status::Error(what + ": dtype: '" + dt->get<std::string>() + "' is not supported");
  t.dtype = *dtype;
  auto sh = v.find("shape");
  if (sh == v.end() || !sh->is_array()) return Status::Error(what + ": shape: expected an array");
  int64_t numel = 1;
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned()) return Status::Error(what + ": shape: expected non-negative integers");
    const uint64_t dv = d.get<uint64_t>();
    if (dv > (uint64_t{1} << 62) || __builtin_mul_overflow(numel, static_cast<int64_t>(dv), &numel)) {
      return Status::Error(what + ": shape: element count overflows");
    }
    t.shape.push_back(static_cast<int64_t>(dv));
  }
  auto off = v.find("data_offsets");
  if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned()) {
    return Status::Error(what + ": data_offsets: expected [begin, end] non-negative integers");
  }
  const uint64_t b = (*off)[0].get<uint64_t>(), e = (*off)[1].get<uint64_t>();
  if (b > e || e > data_size) {
    return Status::Error(what + ": data_offsets: [" + std::to_string(b) + ", " + std::to_string(e) +
                         ") is out of range of the " + std::to_string(data_size) + "-byte data section");
  }
  int64_t expected = 0;
  if (__builtin_mul_overflow(numel, static_cast<int64_t>(StDtypeBytes(t.dtype)), &expected) ||
      static_cast<uint64_t>(expected) != e - b) {
    return Status::Error(what + ": data_offsets: spans " + std::to_string(e - b) + " bytes but dtype " +
                         StDtypeName(t.dtype) + " and shape need " + std::to_string(numel * StDtypeBytes(t.dtype)));
  }
  t.data = data + b;
  t.nbytes = e - b;
  return t;
}

// Tensors may not share bytes.
Status CheckNoOverlap(const std::vector<StTensor>& tensors, const std::string& path) {
  std::vector<const StTensor*> by_offset;
  for (const auto& t : tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const StTensor* a, const StTensor* b) { return a->data < b->data; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const StTensor* p = by_offset[i - 1];
    const StTensor* q = by_offset[i];
    if (p->data + p->nbytes > q->data && q->nbytes > 0 && p->nbytes > 0) {
      return Status::Error(path + ": tensor '" + q->name + "': data_offsets overlap tensor '" + p->name + "'");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<StTensor>> ReadSafetensorsFile(const std::string& path,
                                                  std::map<std::string, std::string>* metadata) {
  QF_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  uint64_t n = 0;
  QF_ASSIGN_OR_RETURN(json header, ReadHeaderJson(*file, path, &n));
  const uint64_t data_size = file->size() - 8 - n;
  const uint8_t* data = file->data() + 8 + n;
  std::vector<StTensor> out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      QF_RETURN_IF_ERROR(ReadMetadata(it.value(), path, metadata));
      continue;
    }
    QF_ASSIGN_OR_RETURN(StTensor t, ReadEntry(it.key(), it.value(), path, data, data_size));
    t.file = file;
    out.push_back(std::move(t));
  }
  QF_RETURN_IF_ERROR(CheckNoOverlap(out, path));
  std::sort(out.begin(), out.end(), [](const StTensor& a, const StTensor& b) { return a.name < b.name; });
  return out;
}

Result<SafetensorsModel> SafetensorsModel::Open(const std::string& path_in) {
  fs::path path(path_in);
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (fs::exists(path / "model.safetensors.index.json")) {
      path /= "model.safetensors.index.json";
    } else if (fs::exists(path / "model.safetensors")) {
      path /= "model.safetensors";
    } else {
      return Status::Error(path_in + ": no model.safetensors or model.safetensors.index.json in the folder");
    }
  }
  SafetensorsModel m;
  const std::string p = path.string();
  if (p.size() >= 5 && p.substr(p.size() - 5) == ".json") {
    std::ifstream in(p);
    if (!in) return Status::Error(p + ": cannot open");
    json idx;
    try {
      idx = json::parse(in);
    } catch (const json::exception& e) {
      return Status::Error(p + ": invalid JSON: " + e.what());
    }
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object()) {
      return Status::Error(p + ": weight_map: expected an object mapping tensor names to files");
    }
    std::map<std::string, std::set<std::string>> by_file;
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      if (!it.value().is_string()) return Status::Error(p + ": weight_map." + it.key() + ": expected a file name");
      const std::string f = it.value().get<std::string>();
      if (f.find('/') != std::string::npos || f == ".." || f.empty()) {
        return Status::Error(p + ": weight_map." + it.key() + ": '" + f + "' is not a plain file name");
      }
      by_file[f].insert(it.key());
    }
    for (const auto& [file, names] : by_file) {
      const std::string shard = (path.parent_path() / file).string();
      QF_ASSIGN_OR_RETURN(auto ts, ReadSafetensorsFile(shard, &m.metadata_));
      std::set<std::string> present;
      for (auto& t : ts) {
        present.insert(t.name);
        if (names.count(t.name)) m.tensors_.push_back(std::move(t));
      }
      for (const auto& nm : names) {
        if (!present.count(nm)) {
          return Status::Error(p + ": weight_map." + nm + ": tensor is not in " + file);
        }
      }
    }
  } else {
    QF_ASSIGN_OR_RETURN(m.tensors_, ReadSafetensorsFile(p, &m.metadata_));
  }
  return m;
}

const StTensor* SafetensorsModel::Find(const std::string& name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Status WriteSafetensorsFile(const std::string& path, std::vector<StWriteTensor> tensors,
                            const std::map<std::string, std::string>& metadata) {
  for (const auto& t : tensors) {
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    if (static_cast<uint64_t>(numel * StDtypeBytes(t.dtype)) != t.bytes.size()) {
      return Status::Error(path + ": tensor '" + t.name + "': " + std::to_string(t.bytes.size()) +
                           " bytes given, shape and dtype need " + std::to_string(numel * StDtypeBytes(t.dtype)));
    }
  }
  std::sort(tensors.begin(), tensors.end(), [](const StWriteTensor& a, const StWriteTensor& b) {
    int ra = DtypeRank(a.dtype), rb = DtypeRank(b.dtype);
    if (ra != rb) return ra > rb;
    return a.name < b.name;
  });
  std::vector<SafetensorsStreamWriter::Entry> entries;
  for (const auto& t : tensors) entries.push_back({t.name, t.dtype, t.shape});
  QF_ASSIGN_OR_RETURN(auto out, SafetensorsStreamWriter::Create(path, std::move(entries), metadata));
  for (const auto& t : tensors) QF_RETURN_IF_ERROR(out->Write(t.name, t.bytes));
  return out->Commit();
}

Result<std::unique_ptr<SafetensorsStreamWriter>> SafetensorsStreamWriter::Create(
    const std::string& path, std::vector<Entry> entries, const std::map<std::string, std::string>& metadata) {
  auto w = std::unique_ptr<SafetensorsStreamWriter>(new SafetensorsStreamWriter());
  w->path_ = path;
  // nlohmann's ordered_json keeps insertion order: metadata first, then data order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json md = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) md[k] = v;
    header["__metadata__"] = md;
  }
  uint64_t offset = 0;
  for (const auto& t : entries) {
    uint64_t n = static_cast<uint64_t>(StDtypeBytes(t.dtype));
    for (int64_t d : t.shape) {
      if (d < 0) return Status::Error(path + ": tensor '" + t.name + "': negative dimension");
      n *= static_cast<uint64_t>(d);
    }
    if (header.contains(t.name)) return Status::Error(path + ": tensor '" + t.name + "' declared twice");
    nlohmann::ordered_json e;
    e["dtype"] = StDtypeName(t.dtype);
    e["shape"] = t.shape;
    e["data_offsets"] = {offset, offset + n};
    offset += n;
    header[t.name] = e;
  }
  std::string h = header.dump();
  while (h.size() % 8 != 0) h.push_back(' ');
  QF_ASSIGN_OR_RETURN(w->out_, OutputFile::Create(path));
  const uint64_t n = h.size();
  QF_RETURN_IF_ERROR(w->out_->Write(&n, 8));
  QF_RETURN_IF_ERROR(w->out_->Write(h.data(), h.size()));
  w->entries_ = std::move(entries);
  return w;
}

SafetensorsStreamWriter::~SafetensorsStreamWriter() = default;

Status SafetensorsStreamWriter::Write(const std::string& name, const std::vector<uint8_t>& bytes) {
  if (next_ >= entries_.size() || entries_[next_].name != name) {
    return Status::Error(path_ + ": tensor '" + name + "' written out of the declared order (expected '" +
                         (next_ < entries_.size() ? entries_[next_].name : std::string("nothing more")) + "')");
  }
  const Entry& e = entries_[next_];
  uint64_t n = static_cast<uint64_t>(StDtypeBytes(e.dtype));
  for (int64_t d : e.shape) n *= static_cast<uint64_t>(d);
  if (bytes.size() != n) {
    return Status::Error(path_ + ": tensor '" + name + "': " + std::to_string(bytes.size()) + " bytes given, " +
                         std::to_string(n) + " declared");
  }
  QF_RETURN_IF_ERROR(out_->Write(bytes.data(), bytes.size()));
  ++next_;
  return Status::Ok();
}

Status SafetensorsStreamWriter::Commit() {
  if (!complete()) return Status::Error(path_ + ": " + std::to_string(entries_.size() - next_) + " tensors never written");
  return out_->Commit();
}

}  // namespace qforge
