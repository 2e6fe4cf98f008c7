#include "sinks/int_checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <cstdio>
#include <cmath>
#include <nlohmann/json.hpp>

#include "io/checkpoint_layout.h"
#include "plan/int_plan.h"
#include "codecs/ggml_types.h"
#include "io/json_file.h"
#include "io/output_file.h"
#include "numeric/half.h"

namespace qforge {
namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

namespace {

// For a tensor whose rows qforge holds in GGUF order (Q/K permuted), the
// GGUF row that holds each source row.
std::vector<int64_t> SourceRowOrder(int64_t rows, int heads) {
  std::vector<int64_t> from(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) from[static_cast<size_t>(SourceRowOf(r, rows, heads))] = r;
  return from;
}

// Files of the source folder a runtime needs beside the weights.
bool CopiedFile(const fs::path& p) {
  const std::string name = p.filename().string();
  const std::string ext = p.extension().string();
  if (name == "config.json" || name == "quantize_config.json" || name == "model.safetensors.index.json") return false;
  for (const char* skip : {".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack", ".onnx"}) {
    if (ext == skip) return false;
  }
  return name.empty() || name[0] != '.';
}

}  // namespace

Result<std::unique_ptr<IntCheckpointWriter>> IntCheckpointWriter::Create(const Model& src, const std::string& dir,
                                                                         const IntCheckpointOptions& opts) {
  if (fs::exists(dir) && (!fs::is_directory(dir) || !fs::is_empty(dir))) {
    return Status::Error(dir + ": output folder exists and is not empty; remove it or choose another");
  }
  return std::unique_ptr<IntCheckpointWriter>(new IntCheckpointWriter(src, dir, opts));
}

IntCheckpointWriter::~IntCheckpointWriter() {
  if (tmp_lock_ >= 0) ::close(tmp_lock_);
  if (!finished_ && !tmp_dir_.empty()) {
    std::error_code ec;
    fs::remove_all(tmp_dir_, ec);
  }
  ForgetTempPaths();
}

void IntCheckpointWriter::ForgetTempPaths() {
  if (tmp_dir_.empty()) return;
  for (const auto& f : shard_files_) UnregisterTempPath((fs::path(tmp_dir_) / f).string());
  UnregisterTempPath(tmp_dir_);
}

Status IntCheckpointWriter::Begin(const Plan& plan) {
  if (plan.output != PlanOutput::kCheckpoint) return Status::Error("internal: a GGUF plan reached the checkpoint writer");
  plan_in_ = &plan;
  float_dtype_ = plan_in_->float_type == GgmlType::F16 ? StDtype::F16 : StDtype::BF16;
  // The output tensors of each recipe, in the plan's (writing) order.
  std::vector<StTensorSpec> all;
  for (const TensorPlan& tp : plan_in_->tensors) {
    const ModelTensor* t = tp.source;
    const int64_t experts = t->n_experts();
    const int64_t rows = t->n_rows() / experts;  // per expert of a stacked tensor
    if (tp.int_scheme) {
      if (t->name == "output.weight") quantize_lm_head_ = true;
      for (const auto& module : ModulesOf(*t)) {
        for (auto& s : LayoutTensors(plan_in_->layout, module, rows, t->ne[0], *tp.int_scheme, plan_in_->act_order_groups,
                                     float_dtype_)) {
          all.push_back(std::move(s));
        }
      }
    } else if (experts > 1) {  // each expert its own 2-D weight, as the source had them
      for (const auto& module : ModulesOf(*t)) all.push_back({module + ".weight", float_dtype_, {rows, t->ne[0]}});
    } else {
      all.push_back({t->source_name, float_dtype_, std::vector<int64_t>(t->ne.rbegin(), t->ne.rend())});
    }
  }
  // Shards in output order, each closed before it would pass the limit.
  uint64_t shard_bytes = 0;
  int shard = -1;
  for (auto& t : all) {
    const uint64_t b = t.nbytes();
    if (shard < 0 || (shard_bytes > 0 && shard_bytes + b > opts_.max_shard_bytes)) {
      ++shard;
      shard_bytes = 0;
    }
    shard_bytes += b;
    total_bytes_ += b;
    plan_.push_back({std::move(t), shard});
  }
  const size_t n = static_cast<size_t>(shard + 1);
  for (size_t i = 0; i < n; ++i) {
    char name[64];
    if (n == 1) {
      std::snprintf(name, sizeof name, "model.safetensors");
    } else {
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, n);
    }
    shard_files_.push_back(name);
  }
  RemoveStaleTemps(dir_);
  tmp_dir_ = dir_ + ".qforge-partial-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(tmp_dir_, ec);
  if (!fs::create_directories(tmp_dir_, ec) || ec) {
    return Status::Error(tmp_dir_ + ": cannot create the output folder (" + ec.message() + ")");
  }
  RegisterTempPath(tmp_dir_);
  tmp_lock_ = LockTempPath(tmp_dir_);
  return Status::Ok();
}

Result<StWriteTensor> IntCheckpointWriter::FloatTensor(const ModelTensor& t, const std::vector<float>* changed) const {
  const int64_t n = t.n_elements();
  std::vector<float> f;
  // Raw source bytes are already in the source's row order (and without a
  // read offset); only values a method changed or a tensor that needs
  // decoding (packed, stacked) come through the GGUF row order.
  const bool via_gguf_order = changed != nullptr || t.is_packed() || !t.parts.empty();
  if (via_gguf_order) {
    if (changed != nullptr) {
      f = *changed;
    } else {  // e.g. an ignored linear of a packed source: decoded through its layout
      QF_ASSIGN_OR_RETURN(f, ReadTensorF32(t));
    }
    // GGUF row order: put Q/K rows back in the source order.
    if (t.permute_heads > 0 && t.ne.size() >= 2) {
      const int64_t rows = t.n_rows(), cols = t.ne[0];
      const auto from = SourceRowOrder(rows, t.permute_heads);
      std::vector<float> g(f.size());
      for (int64_t r = 0; r < rows; ++r) std::copy_n(f.begin() + from[static_cast<size_t>(r)] * cols, cols, g.begin() + r * cols);
      f.swap(g);
    }
  } else {
    const GgmlTypeTraits& tr = TraitsOf(t.type);
    if (tr.decode == nullptr) return Status::Error(src_.path + ": tensor '" + t.source_name + "': cannot be decoded");
    f.resize(static_cast<size_t>(n));
    tr.decode(t.data, f.data(), n);  // source bytes, source row order
  }
  // Values read with an offset (Gemma's norms: GGUF and the engine hold
  // 1 + w, the checkpoint w) are stored without it.
  if (via_gguf_order && t.add_on_read != 0.0f) {
    for (float& v : f) v -= t.add_on_read;
  }
  StWriteTensor st;
  st.name = t.source_name;
  st.dtype = float_dtype_;
  st.shape.assign(t.ne.rbegin(), t.ne.rend());
  st.bytes.resize(static_cast<size_t>(n) * 2);
  auto* h = reinterpret_cast<uint16_t*>(st.bytes.data());
  const bool f16 = float_dtype_ == StDtype::F16;
  for (int64_t i = 0; i < n; ++i) {
    const float v = f[static_cast<size_t>(i)];
    h[i] = f16 ? FloatToHalf(v) : FloatToBf16(v);
    if (!(f16 ? HalfIsFinite(h[i]) : Bf16IsFinite(h[i]))) {
      char found[32];
      std::snprintf(found, sizeof found, "%.4g", v);
      return Status::Error(src_.path + ": tensor '" + t.source_name + "': element " + std::to_string(i) + " is " + found +
                           (std::isfinite(v) ? std::string(", beyond ") + (f16 ? "F16's +-65504" : "BF16's range")
                                             : std::string(", not a finite number")) +
                           "; refusing to write it as " + (f16 ? "F16" : "BF16"));
    }
  }
  return st;
}

Status IntCheckpointWriter::Emit(StWriteTensor t) {
  if (next_ >= plan_.size() || plan_[next_].spec.name != t.name) {
    return Status::Error("internal: tensor '" + t.name + "' reached the checkpoint writer out of order");
  }
  const int s = plan_[next_].shard;
  if (!shard_) {
    std::vector<SafetensorsStreamWriter::Entry> entries;
    for (size_t i = next_; i < plan_.size() && plan_[i].shard == s; ++i) {
      entries.push_back({plan_[i].spec.name, plan_[i].spec.dtype, plan_[i].spec.shape});
    }
    const std::string path = (fs::path(tmp_dir_) / shard_files_[static_cast<size_t>(s)]).string();
    QF_ASSIGN_OR_RETURN(shard_, SafetensorsStreamWriter::Create(path, std::move(entries)));
  }
  QF_RETURN_IF_ERROR(shard_->Write(t.name, t.bytes));
  bytes_written_ += t.bytes.size();
  ++next_;
  if (shard_->complete()) {
    QF_RETURN_IF_ERROR(shard_->Commit());
    shard_.reset();
    RegisterTempPath((fs::path(tmp_dir_) / shard_files_[static_cast<size_t>(s)]).string());
  }
  return Status::Ok();
}

namespace {

// A layout stores the group scales in the spec's dtype; one that overflowed
// it (an F16 scale of a group whose range exceeds 65504 x the steps) would
// load as Inf. Refused rather than clamped, which would clip the group.
Status CheckScales(const ModelTensor& src, const IntQuantized& q) {
  for (size_t i = 0; i < q.scales.size(); ++i) {
    if (std::isfinite(q.scales[i])) continue;
    const int64_t row = static_cast<int64_t>(i) / q.n_groups;
    return Status::Error("tensor '" + src.source_name + "': row " + std::to_string(row) + ", group " +
                         std::to_string(static_cast<int64_t>(i) % q.n_groups) + ": the scale overflows " +
                         ScaleDtypeName(q.spec.scale_dtype) + " (the group's values exceed what " +
                         std::to_string(q.spec.bits) + "-bit codes with an " + ScaleDtypeName(q.spec.scale_dtype) +
                         " scale can reach); refusing to write an Inf scale. Leave the layer unquantized with --ignore");
  }
  return Status::Ok();
}

}  // namespace

Status IntCheckpointWriter::Add(const TensorPlan& recipe, EncodedTensor t) {
  const ModelTensor& src = *recipe.source;
  const int64_t experts = src.n_experts();
  if (!recipe.int_scheme) {
    QF_ASSIGN_OR_RETURN(StWriteTensor st, FloatTensor(src, t.values ? &*t.values : nullptr));
    if (experts == 1) return Emit(std::move(st));
    // A stacked tensor left float: each expert's rows as its own weight.
    const size_t part = st.bytes.size() / static_cast<size_t>(experts);
    for (int64_t e = 0; e < experts; ++e) {
      StWriteTensor one;
      one.name = ExpertModule(src, e) + ".weight";
      one.dtype = st.dtype;
      one.shape = {src.n_rows() / experts, src.ne[0]};
      one.bytes.assign(st.bytes.begin() + static_cast<std::ptrdiff_t>(part * static_cast<size_t>(e)),
                       st.bytes.begin() + static_cast<std::ptrdiff_t>(part * static_cast<size_t>(e + 1)));
      QF_RETURN_IF_ERROR(Emit(std::move(one)));
    }
    return Status::Ok();
  }
  if (experts > 1) {
    if (static_cast<int64_t>(t.int_experts.size()) != experts) {
      return Status::Error("internal: stacked linear '" + recipe.name + "' arrived with " + std::to_string(t.int_experts.size()) +
                           " of its " + std::to_string(experts) + " experts");
    }
    for (int64_t e = 0; e < experts; ++e) {
      QF_RETURN_IF_ERROR(AddGrid(src, ExpertModule(src, e), &t.int_experts[static_cast<size_t>(e)]));
    }
    return Status::Ok();
  }
  if (!t.int_grid) return Status::Error("internal: quantized linear '" + recipe.name + "' arrived without its grid");
  IntQuantized& q = *t.int_grid;
  if (src.permute_heads > 0) q.PermuteRows(SourceRowOrder(q.rows, src.permute_heads));
  return AddGrid(src, ModuleOf(src.source_name), &q);
}

Status IntCheckpointWriter::AddGrid(const ModelTensor& src, const std::string& module, IntQuantized* q) {
  QF_RETURN_IF_ERROR(CheckScales(src, *q).WithContext(module));  // rows now in the source's order, as its name
  std::map<std::string, StWriteTensor> ready;
  for (auto& st : PackLayout(plan_in_->layout, module, *q, plan_in_->act_order_groups, float_dtype_)) {
    ready[st.name] = std::move(st);
  }
  *q = IntQuantized{};  // release the codes now
  // The layout's parts, in the order the shards were planned.
  while (!ready.empty() && next_ < plan_.size()) {
    auto it = ready.find(plan_[next_].spec.name);
    if (it == ready.end()) break;
    QF_RETURN_IF_ERROR(Emit(std::move(it->second)));
    ready.erase(it);
  }
  if (!ready.empty()) return Status::Error("internal: tensor '" + ready.begin()->first + "' is not next in the checkpoint's order");
  return Status::Ok();
}

namespace {

Status WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text << "\n";
  out.close();
  if (!out) return Status::Error(path + ": cannot write");
  return Status::Ok();
}

}  // namespace

Status IntCheckpointWriter::WriteConfig() const {
  const std::string src_cfg = (fs::path(src_.path) / "config.json").string();
  std::ifstream in(src_cfg);
  ordered_json cfg = ordered_json::parse(in, nullptr, false);
  if (cfg.is_discarded() || !cfg.is_object()) return Status::Error(src_cfg + ": expected a JSON object");
  cfg["torch_dtype"] = float_dtype_ == StDtype::F16 ? "float16" : "bfloat16";
  // Without an lm_head the output layer is the embedding: say so, or no
  // runtime can load the checkpoint (CheckTiedOutput warned on open).
  if (src_.Find("output.weight") == nullptr) cfg["tie_word_embeddings"] = true;
  ConfigFacts facts;
  facts.spec = plan_in_->int_spec;
  facts.act_order = opts_.method == Method::kGptq && opts_.gptq.act_order;
  facts.static_groups = opts_.gptq.static_groups;
  facts.true_sequential = opts_.true_sequential;
  facts.damp = opts_.gptq.damp;
  facts.ignored_modules = plan_in_->ignored_modules;
  facts.quantize_lm_head = quantize_lm_head_;
  const CheckpointLayout& layout = LayoutOf(plan_in_->layout);
  const ordered_json q = layout.Config(facts);
  cfg["quantization_config"] = q;
  QF_RETURN_IF_ERROR(WriteTextFile((fs::path(tmp_dir_) / "config.json").string(), cfg.dump(2)));
  if (layout.writes_quantize_config()) {
    QF_RETURN_IF_ERROR(WriteTextFile((fs::path(tmp_dir_) / "quantize_config.json").string(), q.dump(2)));
  }
  if (shard_files_.size() > 1) {
    ordered_json map = ordered_json::object();
    std::map<std::string, std::string> sorted;
    for (const auto& p : plan_) sorted[p.spec.name] = shard_files_[static_cast<size_t>(p.shard)];
    for (const auto& [name, file] : sorted) map[name] = file;
    ordered_json idx = {{"metadata", {{"total_size", total_bytes_}}}, {"weight_map", map}};
    QF_RETURN_IF_ERROR(WriteTextFile((fs::path(tmp_dir_) / "model.safetensors.index.json").string(), idx.dump(2)));
  }
  return Status::Ok();
}

Status IntCheckpointWriter::Commit() {
  if (next_ != plan_.size()) {
    return Status::Error("internal: " + std::to_string(plan_.size() - next_) + " tensors were never written, starting with '" +
                         plan_[next_].spec.name + "'");
  }
  QF_RETURN_IF_ERROR(WriteConfig());
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(src_.path, ec)) {
    if (!e.is_regular_file() || !CopiedFile(e.path())) continue;
    fs::copy_file(e.path(), fs::path(tmp_dir_) / e.path().filename(), fs::copy_options::overwrite_existing, ec);
    if (ec) return Status::Error(e.path().string() + ": cannot copy into the output (" + ec.message() + ")");
  }
  if (fs::exists(dir_)) fs::remove(dir_, ec);  // an empty folder (checked at the start)
  ForgetTempPaths();  // from here on the folder is the result, not a leftover
  fs::rename(tmp_dir_, dir_, ec);
  if (ec) return Status::Error(dir_ + ": cannot move the finished folder into place (" + ec.message() + ")");
  finished_ = true;
  return Status::Ok();
}

}  // namespace qforge
