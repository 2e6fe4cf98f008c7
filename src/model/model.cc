#include "model/model.h"
#include "model/shape_check.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <unordered_set>

#include "arch/llama_family.h"
#include "io/json_file.h"
#include "numeric/half.h"
#include "io/safetensors.h"
#include "io/checkpoint_layout.h"
#include "io/int_layouts.h"
#include "tokenizer/gguf_vocab.h"

namespace qforge {
namespace fs = std::filesystem;

int64_t ModelTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

int ModelTensor::n_dims() const {
  int n = 1;
  for (int i = 0; i < static_cast<int>(ne.size()); ++i) {
    if (ne[i] > 1) n = i + 1;
  }
  return n;
}

void Model::ReIndex() const {
  index_.clear();
  index_.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) index_.emplace(tensors[i].name, i);  // first of a name wins
  indexed_data_ = tensors.data();
  indexed_size_ = tensors.size();
}

const ModelTensor* Model::Find(const std::string& name) const {
  if (indexed_data_ != tensors.data() || indexed_size_ != tensors.size()) ReIndex();
  auto it = index_.find(name);
  if (it == index_.end()) return nullptr;
  if (it->second >= tensors.size() || tensors[it->second].name != name) {  // renamed in place since
    ReIndex();
    it = index_.find(name);
    if (it == index_.end()) return nullptr;
  }
  return &tensors[it->second];
}

int64_t Model::ArchInt(const std::string& key, int64_t def) const {
  const GgufValue* v = metadata.Find(architecture + "." + key);
  if (v == nullptr) return def;
  if (v->is_array()) return v->count() > 0 ? v->ArrayI64(0) : def;
  return v->AsI64();
}

int64_t Model::n_params() const {
  int64_t n = 0;
  for (const auto& t : tensors) n += t.n_elements();
  return n;
}

uint64_t Model::n_bytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors) n += t.nbytes;
  return n;
}

namespace {

std::optional<GgmlType> GgmlTypeOfSafetensors(StDtype d) {
  switch (d) {
    case StDtype::F32: return GgmlType::F32;
    case StDtype::F16: return GgmlType::F16;
    case StDtype::BF16: return GgmlType::BF16;
    case StDtype::F64: return GgmlType::F64;
    case StDtype::I8: return GgmlType::I8;
    case StDtype::I16: return GgmlType::I16;
    case StDtype::I32: return GgmlType::I32;
    case StDtype::I64: return GgmlType::I64;
    default: return std::nullopt;
  }
}

// Recommended sampler settings from generation_config.json, as the
// general.sampling.* keys llama.cpp reads.
Status AddSamplingKeys(const std::string& dir, GgufMetadata* md) {
  const std::string path = (fs::path(dir) / "generation_config.json").string();
  if (!fs::exists(path)) return Status::Ok();
  QF_ASSIGN_OR_RETURN(nlohmann::json g, ReadJsonFile(path));
  if (!g.is_object()) return Status::Error(path + ": expected a JSON object");
  if (g.contains("do_sample") && g["do_sample"].is_boolean() && !g["do_sample"].get<bool>()) return Status::Ok();
  if (auto it = g.find("top_k"); it != g.end() && it->is_number_integer()) {
    md->Append("general.sampling.top_k", GgufValue::I32(static_cast<int32_t>(it->get<int64_t>())));
  }
  static const std::pair<const char*, const char*> kFloats[] = {
      {"top_p", "top_p"}, {"min_p", "min_p"}, {"temperature", "temp"}, {"repetition_penalty", "penalty_repeat"}};
  for (const auto& [hf, key] : kFloats) {
    if (auto it = g.find(hf); it != g.end() && it->is_number()) {
      md->Append(std::string("general.sampling.") + key, GgufValue::F32(static_cast<float>(it->get<double>())));
    }
  }
  return Status::Ok();
}


Result<std::optional<PackedFormat>> ReadPackedFormat(const std::string& dir) {
  const std::string path = (fs::path(dir) / "config.json").string();
  QF_ASSIGN_OR_RETURN(nlohmann::json cfg, ReadJsonFile(path));
  if (!cfg.is_object() || !cfg.contains("quantization_config")) return std::optional<PackedFormat>();
  const nlohmann::json& q = cfg["quantization_config"];
  const std::string where = path + ": quantization_config";
  if (!q.is_object() || !q.contains("quant_method") || !q["quant_method"].is_string()) {
    return Status::Error(where + ".quant_method: missing or not a string");
  }
  const std::string method = q["quant_method"].get<std::string>();
  const CheckpointLayout* layout = LayoutOfQuantMethod(method);
  if (layout == nullptr) {
    return Status::Error(where + ".quant_method: '" + method + "' is not readable by qforge yet (expected gptq, awq or compressed-tensors)");
  }
  QF_ASSIGN_OR_RETURN(PackedFormat f, layout->ParseConfig(q, where));
  if (f.spec.bits != 2 && f.spec.bits != 3 && f.spec.bits != 4 && f.spec.bits != 8) {
    return Status::Error(where + ": " + std::to_string(f.spec.bits) + " bits is not supported (expected 2, 3, 4 or 8)");
  }
  if (f.spec.group_size == 0 || f.spec.group_size < -1) {
    return Status::Error(where + ".group_size: " + std::to_string(f.spec.group_size) + " (expected -1 or positive)");
  }
  return std::optional<PackedFormat>(std::move(f));
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The shape [rows, cols] of a packed module, from its parts.
Result<std::pair<int64_t, int64_t>> PackedShape(const PackedFormat& f, const SafetensorsModel& st, const std::string& module,
                                                const std::string& what) {
  const StTensor* main = st.Find(module + f.main_suffix);
  if (main->shape.size() != 2) return Status::Error(what + f.main_suffix + ": expected 2 dimensions");
  return LayoutOf(f.layout).ShapeOf(st, module, f, what);
}

bool IsPartOfPacked(const PackedFormat& f, const std::string& name) {
  for (const auto& suffix : f.part_suffixes) {
    if (EndsWith(name, suffix)) return true;
  }
  return false;
}

// A linear stored in a packed layout, read through its parts in place.
// A packed module as a tensor, and the expert it is when it is one
// expert's part of a stacked tensor (the tensor then carries the stack's
// GGUF name), else -1.
struct PackedModule {
  ModelTensor tensor;
  int expert = -1;
};
Result<PackedModule> PackedModuleTensor(const HfConfig& cfg, const SafetensorsModel& st, const PackedFormat& f,
                                        const StTensor& main, const std::string& dir) {
  const std::string module = main.name.substr(0, main.name.size() - f.main_suffix.size());
  const std::string what = dir + ": " + module;
  QF_ASSIGN_OR_RETURN(auto mapped, MapHfTensorName(cfg, module + ".weight"));
  if (!mapped) return Status::Error(what + ": not a weight qforge knows for this architecture");
  QF_ASSIGN_OR_RETURN(auto shape, PackedShape(f, st, module, what));
  auto pl = std::make_shared<PackedLinear>();
  pl->layout = f.layout;
  pl->spec = f.spec;
  pl->zeros_minus_one = f.zeros_minus_one;
  pl->rows = shape.first;
  pl->cols = shape.second;
  const bool ct = f.layout == IntLayout::kCompressedTensors;
  uint64_t bytes = 0;
  auto take = [&](const std::string& suffix, StTensor* into) {
    if (const StTensor* p = st.Find(module + suffix)) {
      *into = *p;
      bytes += p->nbytes;
    }
  };
  take(f.main_suffix, &pl->packed);
  take(ct ? ".weight_scale" : ".scales", &pl->scales);
  take(ct ? ".weight_zero_point" : ".qzeros", &pl->zeros);
  take(ct ? ".weight_g_idx" : ".g_idx", &pl->g_idx);
  QF_RETURN_IF_ERROR(pl->Validate(what));
  ModelTensor t;
  t.name = mapped->gguf_name;
  t.source_name = module + ".weight";
  t.source_dtype = std::string(IntLayoutName(f.layout)) + " int" + std::to_string(f.spec.bits);
  t.type = GgmlType::F32;
  t.ne = {pl->cols, pl->rows};
  t.nbytes = bytes;
  t.file = main.file;
  t.permute_heads = mapped->permute_heads;
  t.packed = std::move(pl);
  return PackedModule{std::move(t), mapped->expert};
}

// A float tensor of the folder; nullopt for tensors the converter drops.
Result<std::optional<ModelTensor>> FloatTensorOf(const HfConfig& cfg, const StTensor& s, const std::string& dir) {
  QF_ASSIGN_OR_RETURN(auto mapped, MapHfTensorName(cfg, s.name));
  if (!mapped) return std::optional<ModelTensor>();
  ModelTensor t;
  t.name = mapped->gguf_name;
  t.source_name = s.name;
  t.source_dtype = StDtypeName(s.dtype);
  const std::optional<GgmlType> type = GgmlTypeOfSafetensors(s.dtype);
  if (!type) {
    return Status::Error(dir + ": tensor '" + s.name + "': dtype " + StDtypeName(s.dtype) +
                         " is not supported for conversion (expected F32, F16 or BF16)");
  }
  t.type = *type;
  t.ne.assign(s.shape.rbegin(), s.shape.rend());
  if (t.ne.empty()) t.ne.push_back(1);
  t.data = s.data;
  t.nbytes = s.nbytes;
  t.file = s.file;
  t.permute_heads = mapped->permute_heads;
  const ArchSpec* spec = ArchOfModelType(cfg.model_type);
  // Gemma's norms: the converter adds the shift in F32 after widening
  // BF16/F16, exactly what adding it on read does.
  if (spec != nullptr && spec->norm_shift != 0.0f && EndsWith(s.name, "norm.weight")) t.add_on_read = spec->norm_shift;
  if (t.permute_heads > 0) {
    const int64_t rows = t.ne.size() == 1 ? t.ne[0] : t.n_rows();
    if (rows % (2 * t.permute_heads) != 0) {
      return Status::Error(dir + ": tensor '" + s.name + "': " + std::to_string(rows) + " rows cannot be split into " +
                           std::to_string(t.permute_heads) + " heads of even size for the Q/K permutation");
    }
  }
  return std::optional<ModelTensor>(std::move(t));
}

// Collects the experts' linears of each layer and stacks them, as the
// converter does, when the layer's last expert tensor has been read: the
// stacks come out in the spec's order at that point of the source order.
class ExpertStacker {
 public:
  ExpertStacker(const HfConfig& cfg, std::string dir)
      : cfg_(cfg), spec_(ArchOfModelType(cfg.model_type)), dir_(std::move(dir)) {}

  // One expert's linear stored packed (a quantized checkpoint), read as
  // PackedModuleTensor made it.
  Result<std::vector<ModelTensor>> AddPacked(ModelTensor t, int expert) {
    const int layer = BlockOf(t.name);
    auto& slots = packed_[layer][t.name];
    slots.resize(static_cast<size_t>(cfg_.n_expert));
    auto& slot = slots[static_cast<size_t>(expert)];
    if (slot) return Status::Error(dir_ + ": module '" + t.source_name + "' appears twice");
    if (sources_.count(t.name) && (cols_[t.name] != t.ne[0] || rows_[t.name] != t.ne[1])) {
      return Status::Error(dir_ + ": module '" + t.source_name + "': [" + std::to_string(t.ne[1]) + ", " +
                           std::to_string(t.ne[0]) + "], unlike the layer's other experts [" + std::to_string(rows_[t.name]) +
                           ", " + std::to_string(cols_[t.name]) + "]");
    }
    cols_[t.name] = t.ne[0];
    rows_[t.name] = t.ne[1];
    sources_[t.name] = t.source_name;
    slot = std::move(t.packed);
    return Completed(layer);
  }

  Result<std::vector<ModelTensor>> Add(const StTensor& s, const MappedName& m) {
    const int layer = BlockOf(m.gguf_name);
    auto& slots = pending_[layer][m.gguf_name];
    slots.resize(static_cast<size_t>(cfg_.n_expert));
    auto& slot = slots[static_cast<size_t>(m.expert)];
    if (slot.data != nullptr) return Status::Error(dir_ + ": tensor '" + s.name + "' appears twice");
    const std::optional<GgmlType> type = GgmlTypeOfSafetensors(s.dtype);
    if (!type || (*type != GgmlType::F32 && *type != GgmlType::F16 && *type != GgmlType::BF16) || s.shape.size() != 2) {
      return Status::Error(dir_ + ": tensor '" + s.name + "': dtype " + StDtypeName(s.dtype) + ", " +
                           std::to_string(s.shape.size()) + " dimensions (expected a 2-D F32, F16 or BF16 expert weight)");
    }
    if (types_.count(m.gguf_name) && types_[m.gguf_name] != *type) {
      return Status::Error(dir_ + ": tensor '" + s.name + "': dtype " + StDtypeName(s.dtype) +
                           " differs from the layer's other experts");
    }
    types_[m.gguf_name] = *type;
    cols_[m.gguf_name] = s.shape[1];
    rows_[m.gguf_name] = s.shape[0];
    sources_[m.gguf_name] = s.name;
    slot = TensorPart{s.data, s.nbytes, s.shape[0], s.file};
    return Completed(layer);
  }

  Status CheckComplete() const {
    for (const auto& [layer, n] : count_) {
      return Status::Error(dir_ + ": layer " + std::to_string(layer) + " has " + std::to_string(n) + " of " +
                           std::to_string(static_cast<int64_t>(spec_->expert_names.size()) * cfg_.n_expert) +
                           " expert tensors (num_experts " + std::to_string(cfg_.n_expert) + ")");
    }
    return Status::Ok();
  }

 private:
  // "model.layers.0.mlp.experts.7.up_proj.weight" -> "...experts.{e}.up_proj.weight", for messages.
  static std::string ExpertPattern(const std::string& name) {
    const size_t p = name.find(".experts.");
    if (p == std::string::npos) return name;
    const size_t a = p + 9, b = name.find('.', a);
    return b == std::string::npos ? name : name.substr(0, a) + "{e}" + name.substr(b);
  }

  // Counts one more expert tensor of the layer; once all are read, the
  // layer's stacks in the spec's order (each all float or all packed).
  Result<std::vector<ModelTensor>> Completed(int layer) {
    if (++count_[layer] < static_cast<int64_t>(spec_->expert_names.size()) * cfg_.n_expert) return std::vector<ModelTensor>();
    std::vector<ModelTensor> out;
    for (const auto& en : spec_->expert_names) {
      const std::string name = "blk." + std::to_string(layer) + "." + en.gguf + ".weight";
      auto it = pending_[layer].find(name);
      auto pk = packed_[layer].find(name);
      if (it != pending_[layer].end() && pk != packed_[layer].end()) {
        return Status::Error(dir_ + ": layer " + std::to_string(layer) + ": " + en.hf +
                             " is stored packed for some experts and float for others; qforge reads a layer's experts "
                             "all one way");
      }
      const std::string src = sources_[name];
      if (pk != packed_[layer].end()) {
        ModelTensor t;
        t.name = name;
        t.source_name = ExpertPattern(src);
        t.type = GgmlType::F32;
        t.ne = {cols_[name], rows_[name], cfg_.n_expert};
        const PackedLinear& first = *pk->second.front();
        t.source_dtype = std::string(IntLayoutName(first.layout)) + " int" + std::to_string(first.spec.bits);
        for (const auto& pl : pk->second) t.nbytes += pl->packed.nbytes + pl->scales.nbytes + pl->zeros.nbytes + pl->g_idx.nbytes;
        t.file = first.packed.file;
        t.packed_experts.assign(pk->second.begin(), pk->second.end());
        out.push_back(std::move(t));
        continue;
      }
      if (it == pending_[layer].end()) return Status::Error(dir_ + ": layer " + std::to_string(layer) + " has no " + en.hf);
      QF_ASSIGN_OR_RETURN(ModelTensor t, StackTensors(name, src, types_[name], cols_[name], std::move(it->second)));
      t.source_name = ExpertPattern(src);
      t.source_dtype = StDtypeName(types_[name] == GgmlType::BF16 ? StDtype::BF16
                                   : types_[name] == GgmlType::F16 ? StDtype::F16 : StDtype::F32);
      out.push_back(std::move(t));
    }
    pending_.erase(layer);
    packed_.erase(layer);
    count_.erase(layer);
    return out;
  }

  const HfConfig& cfg_;
  const ArchSpec* spec_;
  std::string dir_;
  std::map<int, std::map<std::string, std::vector<std::shared_ptr<const PackedLinear>>>> packed_;
  std::map<std::string, int64_t> rows_;
  std::map<int, std::map<std::string, std::vector<TensorPart>>> pending_;
  std::map<int, int64_t> count_;
  std::map<std::string, GgmlType> types_;
  std::map<std::string, int64_t> cols_;
  std::map<std::string, std::string> sources_;
};

// The tensors the converter computes from config.json (rope_freqs,
// LongRoPE factors): generated, and first, as in the converter's output.
Status AddGeneratedTensors(const HfConfig& cfg, Model* m) {
  const ArchSpec* spec = ArchOfModelType(cfg.model_type);
  if (spec == nullptr || spec->generated == nullptr) return Status::Ok();
  std::vector<GeneratedTensor> gen;
  const std::string err = spec->generated(cfg, &gen);
  if (!err.empty()) return Status::Error(cfg.path + ": " + err);
  std::vector<ModelTensor> made;
  for (GeneratedTensor& g : gen) {
    ModelTensor t;
    t.name = g.name;
    t.source_name = "(generated from config.json)";
    t.source_dtype = "F32";
    t.ne = {static_cast<int64_t>(g.values.size())};
    t.owned = std::make_shared<std::vector<uint8_t>>(g.values.size() * sizeof(float));
    std::memcpy(t.owned->data(), g.values.data(), t.owned->size());
    t.data = t.owned->data();
    t.nbytes = t.owned->size();
    made.push_back(std::move(t));
  }
  m->tensors.insert(m->tensors.begin(), std::make_move_iterator(made.begin()), std::make_move_iterator(made.end()));
  return Status::Ok();
}

// Gemma 3 checkpoints pad the embedding beyond the tokenizer (262208 rows
// for 262144 + added tokens); the converter keeps the first n_tokens rows.
void TruncateEmbeddings(int64_t n_tokens, Model* m) {
  for (ModelTensor& t : m->tensors) {
    if (t.name != "token_embd.weight" || t.ne.size() != 2 || t.ne[1] <= n_tokens || t.packed || !t.parts.empty()) continue;
    t.nbytes = t.nbytes / static_cast<uint64_t>(t.ne[1]) * static_cast<uint64_t>(n_tokens);
    t.ne[1] = n_tokens;
  }
}

// The metadata llama.cpp's converter writes for the folder, in its order.
Status AddHfMetadata(const std::string& dir, const HfConfig& cfg, const OpenOptions& opts, Model* m) {
  VocabOptions vo;
  vo.tokenizer_pre = opts.tokenizer_pre;
  vo.config_vocab_size = cfg.vocab_size;
  QF_ASSIGN_OR_RETURN(GgufVocab vocab, LoadHfVocab(dir, vo));
  m->warnings.insert(m->warnings.end(), vocab.warnings.begin(), vocab.warnings.end());
  const ArchSpec* spec = ArchOfModelType(cfg.model_type);
  if (spec != nullptr && spec->truncate_embeddings) TruncateEmbeddings(static_cast<int64_t>(vocab.tokens.size()), m);
  // The converter counts a stacked expert tensor as one expert's share.
  int64_t n_params = 0, expert_count = 0;
  for (const ModelTensor& t : m->tensors) {
    const bool stacked = t.name.find("_exps.") != std::string::npos && t.ne.size() == 3 && t.ne[2] > 0;
    n_params += stacked ? t.n_elements() / t.ne[2] : t.n_elements();
    if (stacked) expert_count = t.ne[2];
  }
  ModelCard card = ModelCardFromFolder(dir, n_params, expert_count);
  GgufMetadata& md = m->metadata;
  md.Append("general.architecture", GgufValue::Str(m->architecture));
  md.Append("general.type", GgufValue::Str("model"));
  if (!card.name.empty()) md.Append("general.name", GgufValue::Str(card.name));
  if (!card.finetune.empty()) md.Append("general.finetune", GgufValue::Str(card.finetune));
  if (!card.basename.empty()) md.Append("general.basename", GgufValue::Str(card.basename));
  if (!card.version.empty()) md.Append("general.version", GgufValue::Str(card.version));
  if (!card.size_label.empty()) md.Append("general.size_label", GgufValue::Str(card.size_label));
  QF_RETURN_IF_ERROR(AddSamplingKeys(dir, &md));
  const int64_t vocab_size = cfg.vocab_size.value_or(static_cast<int64_t>(vocab.tokens.size()));
  AddHyperParameters(cfg, 0, vocab_size, &md);
  md.Append("general.quantization_version", GgufValue::U32(2));
  AddVocabMetadata(vocab, &md);
  if (spec != nullptr && spec->no_space_prefix) md.Append("tokenizer.ggml.add_space_prefix", GgufValue::Bool(false));
  return Status::Ok();
}

bool SameBytes(const ModelTensor& a, const ModelTensor& b) {
  return a.type == b.type && a.ne == b.ne && a.nbytes == b.nbytes && a.parts.empty() && b.parts.empty() && !a.packed &&
         !b.packed && std::memcmp(a.data, b.data, a.nbytes) == 0;
}

// config.json's tie_word_embeddings against the tensors present. llama.cpp's
// converter writes lm_head.weight as output.weight whenever it exists and
// otherwise leaves the output to the token embedding; qforge does the same
// and says so where the config claims otherwise.
void CheckTiedOutput(const HfConfig& cfg, const std::string& dir, Model* m) {
  const ModelTensor* out = m->Find("output.weight");
  if (!cfg.tie_word_embeddings && out == nullptr) {
    m->warnings.push_back(dir + "/config.json: tie_word_embeddings is false but there is no lm_head.weight; the output "
                          "layer uses the token embedding (as llama.cpp does), and a checkpoint written from it says "
                          "tie_word_embeddings: true");
  } else if (cfg.tie_word_embeddings && out != nullptr && !SameBytes(*out, *m->Find("token_embd.weight"))) {
    m->warnings.push_back(dir + "/config.json: tie_word_embeddings is true but lm_head.weight differs from "
                          "model.embed_tokens.weight; Transformers would use the embedding, qforge (like llama.cpp's "
                          "converter) keeps lm_head.weight as the output layer");
  }
}

Result<Model> OpenHfFolder(const std::string& dir, const OpenOptions& opts) {
  QF_ASSIGN_OR_RETURN(HfConfig cfg, ReadHfConfig(dir));
  QF_ASSIGN_OR_RETURN(SafetensorsModel st, SafetensorsModel::Open(dir));
  QF_ASSIGN_OR_RETURN(std::optional<PackedFormat> packed, ReadPackedFormat(dir));
  Model m;
  m.source = ModelSource::kHfFolder;
  m.path = dir;
  m.architecture = GgufArchitecture(cfg.model_type);
  m.n_layer = cfg.n_layer;
  m.n_head = cfg.n_head;
  m.n_head_kv = cfg.n_head_kv;
  m.expert_count = cfg.n_expert;
  std::unordered_set<std::string> seen;  // GGUF names taken so far
  ExpertStacker experts(cfg, dir);
  for (const StTensor& s : st.tensors()) {
    std::optional<ModelTensor> t;
    if (packed && IsPartOfPacked(*packed, s.name)) {
      if (!EndsWith(s.name, packed->main_suffix)) continue;  // read with its module
      QF_ASSIGN_OR_RETURN(PackedModule pm, PackedModuleTensor(cfg, st, *packed, s, dir));
      t = std::move(pm.tensor);
      if (pm.expert >= 0) {  // one expert's part: the layer's stacks come out once all are read
        QF_ASSIGN_OR_RETURN(std::vector<ModelTensor> stacks, experts.AddPacked(std::move(*t), pm.expert));
        for (ModelTensor& x : stacks) {
          if (!seen.insert(x.name).second) return Status::Error(dir + ": tensor '" + x.name + "' appears twice");
          m.tensors.push_back(std::move(x));
        }
        continue;
      }
    } else {
      QF_ASSIGN_OR_RETURN(auto mapped, MapHfTensorName(cfg, s.name));
      if (mapped && mapped->expert >= 0) {
        // One expert's part: the layer's stacks come out once all are read.
        QF_ASSIGN_OR_RETURN(std::vector<ModelTensor> stacks, experts.Add(s, *mapped));
        for (ModelTensor& x : stacks) {
          if (!seen.insert(x.name).second) return Status::Error(dir + ": tensor '" + x.name + "' appears twice");
          m.tensors.push_back(std::move(x));
        }
        continue;
      }
      QF_ASSIGN_OR_RETURN(t, FloatTensorOf(cfg, s, dir));
      if (!t) continue;
    }
    if (!seen.insert(t->name).second) {
      return Status::Error(dir + ": tensor '" + s.name + "' maps to '" + t->name + "', which another tensor already has");
    }
    m.tensors.push_back(std::move(*t));
  }
  QF_RETURN_IF_ERROR(experts.CheckComplete());
  if (m.Find("token_embd.weight") == nullptr) {
    return Status::Error(dir + ": model.embed_tokens.weight: missing from the safetensors files");
  }
  CheckTiedOutput(cfg, dir, &m);
  QF_RETURN_IF_ERROR(AddGeneratedTensors(cfg, &m));
  QF_RETURN_IF_ERROR(AddHfMetadata(dir, cfg, opts, &m));
  return m;
}

Result<Model> OpenGguf(const std::string& path) {
  QF_ASSIGN_OR_RETURN(auto g, GgufFile::Open(path));
  Model m;
  m.source = ModelSource::kGguf;
  m.path = path;
  m.metadata = g->metadata();
  if (const GgufValue* a = m.metadata.Find("general.architecture"); a && a->type() == GgufType::STRING) {
    m.architecture = a->AsString();
  } else {
    return Status::Error(path + ": metadata 'general.architecture': missing (expected a string)");
  }
  m.n_layer = m.ArchInt("block_count", 0);
  m.n_head = m.ArchInt("attention.head_count", 0);
  m.n_head_kv = m.ArchInt("attention.head_count_kv", m.n_head);
  m.expert_count = m.ArchInt("expert_count", 0);
  for (const auto& ti : g->tensors()) {
    ModelTensor t;
    t.name = ti.name;
    t.source_name = ti.name;
    t.ne = ti.ne;
    t.type = ti.type;
    t.source_dtype = TraitsOf(ti.type).name;
    t.data = g->TensorData(ti);
    t.nbytes = ti.nbytes;
    t.file = g->mapped();
    m.tensors.push_back(std::move(t));
  }
  std::vector<const ModelTensor*> order;
  for (const auto& t : m.tensors) order.push_back(&t);
  SortInLoaderOrder(&order);
  std::vector<ModelTensor> sorted;
  for (const ModelTensor* t : order) sorted.push_back(*t);
  m.tensors = std::move(sorted);
  return m;
}

}  // namespace

Result<Model> OpenModel(const std::string& path, const OpenOptions& opts) {
  std::error_code ec;
  if (!fs::is_directory(path, ec) && !fs::exists(path, ec)) return Status::Error(path + ": no such file or folder");
  QF_ASSIGN_OR_RETURN(Model m, fs::is_directory(path, ec) ? OpenHfFolder(path, opts) : OpenGguf(path));
  m.ReIndex();  // built once here, so concurrent Find calls only read it
  QF_RETURN_IF_ERROR(CheckTensorShapes(m));
  return m;
}

// Block number of "blk.N.*", or -1 for other names.
int BlockOf(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  size_t dot = name.find('.', 4);
  if (dot == std::string::npos || dot == 4) return -1;
  int v = 0;
  for (size_t i = 4; i < dot; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(name[i])) || v > 100000) return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

void SortInLoaderOrder(std::vector<const ModelTensor*>* tensors) {
  std::stable_sort(tensors->begin(), tensors->end(), [](const ModelTensor* a, const ModelTensor* b) {
    const int ba = BlockOf(a->name), bb = BlockOf(b->name);
    if (ba != bb) return ba < bb;
    return a->name < b->name;
  });
}

int64_t SourceRowOf(int64_t row, int64_t rows, int heads) {
  if (heads <= 0) return row;
  // new[h*D + 2j + s] = old[h*D + s*D/2 + j]
  const int64_t head_rows = rows / heads;
  const int64_t h = row / head_rows, w = row % head_rows;
  return h * head_rows + (w % 2) * (head_rows / 2) + w / 2;
}

namespace {

// Decodes rows [row0, row0 + n) of the stored bytes (no permutation): from
// the single range, or across the parts of a stacked tensor.
void DecodeStoredRows(const ModelTensor& t, const GgmlTypeTraits& tr, int64_t row0, int64_t n, float* out) {
  const int64_t row_len = t.ne[0];
  const size_t row_bytes = RowBytes(t.type, row_len);
  if (t.parts.empty()) {
    tr.decode(t.data + static_cast<size_t>(row0) * row_bytes, out, n * row_len);
    return;
  }
  size_t p = 0;
  int64_t first = 0;  // first row of part p
  while (p < t.parts.size() && first + t.parts[p].rows <= row0) first += t.parts[p++].rows;
  for (int64_t done = 0; done < n && p < t.parts.size(); ++p) {
    const int64_t local = row0 + done - first;
    const int64_t take = std::min(n - done, t.parts[p].rows - local);
    tr.decode(t.parts[p].data + static_cast<size_t>(local) * row_bytes, out + done * row_len, take * row_len);
    done += take;
    first += t.parts[p].rows;
  }
}

}  // namespace

Status ReadRowsF32(const ModelTensor& t, int64_t row0, int64_t n, float* out) {
  const int64_t row_len = t.ne[0];
  if (!t.packed_experts.empty()) {
    const int64_t per = t.n_rows() / static_cast<int64_t>(t.packed_experts.size());
    for (int64_t i = 0; i < n;) {
      const int64_t e = (row0 + i) / per, local = (row0 + i) % per, take = std::min(n - i, per - local);
      QF_RETURN_IF_ERROR(t.packed_experts[static_cast<size_t>(e)]->DecodeRows(local, take, out + i * row_len));
      i += take;
    }
  } else if (t.packed) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = SourceRowOf(row0 + i, t.n_rows(), t.permute_heads);
      QF_RETURN_IF_ERROR(t.packed->DecodeRows(r, 1, out + i * row_len));
    }
  } else {
    const GgmlTypeTraits& tr = TraitsOf(t.type);
    if (tr.decode == nullptr) {
      return Status::Error(t.name + ": source type " + GgmlTypeName(t.type) + " cannot be decoded by this version");
    }
    if (t.permute_heads > 0 && t.ne.size() == 1) {
      // A permuted 1-D tensor (a Q/K bias): its elements are the rows.
      const int64_t len = t.ne[0];
      const int64_t head = len / t.permute_heads;
      std::vector<float> tmp(static_cast<size_t>(len));
      tr.decode(t.data, tmp.data(), len);
      for (int64_t r = 0; r < len; ++r) {
        const int64_t h = r / head, w = r % head;
        out[r] = tmp[static_cast<size_t>(h * head + (w % 2) * (head / 2) + w / 2)];
      }
    } else if (t.permute_heads > 0) {
      for (int64_t i = 0; i < n; ++i) {
        DecodeStoredRows(t, tr, SourceRowOf(row0 + i, t.n_rows(), t.permute_heads), 1, out + i * row_len);
      }
    } else {
      DecodeStoredRows(t, tr, row0, n, out);
    }
  }
  if (t.add_on_read != 0.0f) {
    const int64_t count = t.permute_heads > 0 && t.ne.size() == 1 ? t.ne[0] : n * row_len;
    // The converter adds in the source's type when it is F16 (BF16 it
    // widens to F32 first): the sum is rounded to F16 as it would be.
    const bool f16 = t.type == GgmlType::F16;
    for (int64_t i = 0; i < count; ++i) {
      out[i] += t.add_on_read;
      if (f16) out[i] = HalfToFloat(FloatToHalf(out[i]));
    }
  }
  return Status::Ok();
}

void ModelTensor::DropPages() const {
  if (parts.empty()) {
    if (file && data) file->DropRange(static_cast<size_t>(data - file->data()), nbytes);
    return;
  }
  for (const auto& p : parts) {
    if (p.file && p.data) p.file->DropRange(static_cast<size_t>(p.data - p.file->data()), p.nbytes);
  }
}

const BlockLayout& BlockOfModel(const Model& model) { return BlockOfArch(model.architecture, model.expert_count > 0); }

Result<ModelTensor> StackTensors(std::string name, std::string source_name, GgmlType type, int64_t ne0,
                                 std::vector<TensorPart> parts) {
  if (parts.empty()) return Status::Error(source_name + ": nothing to stack");
  const GgmlTypeTraits& tr = TraitsOf(type);
  if (tr.block_elems <= 0 || ne0 <= 0 || ne0 % tr.block_elems != 0) {
    return Status::Error(source_name + ": row length " + std::to_string(ne0) + " does not fit type " + GgmlTypeName(type));
  }
  const size_t row_bytes = RowBytes(type, ne0);
  ModelTensor t;
  t.name = std::move(name);
  t.source_name = std::move(source_name);
  t.type = type;
  t.source_dtype = tr.name;
  for (size_t i = 0; i < parts.size(); ++i) {
    const TensorPart& p = parts[i];
    if (p.rows != parts[0].rows || p.rows <= 0 || p.nbytes != static_cast<uint64_t>(p.rows) * row_bytes || p.data == nullptr) {
      return Status::Error(t.source_name + ": part " + std::to_string(i) + " has " + std::to_string(p.rows) + " rows in " +
                           std::to_string(p.nbytes) + " bytes (expected " + std::to_string(parts[0].rows) + " rows of " +
                           std::to_string(row_bytes) + " bytes, as part 0)");
    }
    t.nbytes += p.nbytes;
  }
  t.ne = {ne0, parts[0].rows, static_cast<int64_t>(parts.size())};
  t.parts = std::move(parts);
  return t;
}

Result<std::vector<float>> ReadTensorF32(const ModelTensor& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  const int64_t rows = t.ne.size() == 1 ? 1 : t.n_rows();
  QF_RETURN_IF_ERROR(ReadRowsF32(t, 0, rows, out.data()));
  return out;
}

}  // namespace qforge
