#include "arch/hf_config.h"

#include <filesystem>
#include <tuple>

#include "arch/arch_spec.h"
#include "io/json_file.h"

namespace qforge {
namespace {

using nlohmann::json;

Status RequireInt(const json& j, const std::string& path, const char* key, int64_t min, int64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Error(path + ": " + key + ": missing (expected an integer)");
  if (!it->is_number_integer()) return Status::Error(path + ": " + key + ": expected an integer");
  *out = it->get<int64_t>();
  if (*out < min) {
    return Status::Error(path + ": " + key + ": " + std::to_string(*out) + " is out of range (expected >= " +
                         std::to_string(min) + ")");
  }
  return Status::Ok();
}

std::optional<int64_t> OptInt(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

std::optional<double> OptNum(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

// Gemma 3 configs (above all the text_config of the multimodal checkpoints)
// leave most hyper-parameters to Transformers' Gemma3TextConfig defaults,
// which llama.cpp's converter assumes too.
void FillGemma3Defaults(json* j) {
  const std::pair<const char*, json> kDefaults[] = {
      {"num_attention_heads", 8},          {"num_key_value_heads", 4},     {"head_dim", 256},
      {"max_position_embeddings", 131072}, {"rms_norm_eps", 1e-6},         {"rope_theta", 1000000.0},
      {"rope_local_base_freq", 10000.0},   {"sliding_window_pattern", 6}, {"query_pre_attn_scalar", 256}};
  for (const auto& [key, value] : kDefaults) {
    if (!j->contains(key) || (*j)[key].is_null()) (*j)[key] = value;
  }
}

}  // namespace

Result<HfConfig> ReadHfConfig(const std::string& folder) {
  const std::string path = (std::filesystem::path(folder) / "config.json").string();
  if (!std::filesystem::exists(path)) {
    return Status::Error(path + ": missing: a Hugging Face model folder needs config.json");
  }
  QF_ASSIGN_OR_RETURN(json j, ReadJsonFile(path));
  if (!j.is_object()) return Status::Error(path + ": expected a JSON object");
  // Multimodal wrappers keep the language model under text_config.
  bool multimodal = false;
  if (j.contains("text_config") && j["text_config"].is_object() && !j.contains("num_hidden_layers")) {
    j = json(j["text_config"]);
    multimodal = true;
  }
  HfConfig c;
  c.path = path;
  c.multimodal = multimodal;
  auto mt = j.find("model_type");
  if (mt == j.end() || !mt->is_string()) return Status::Error(path + ": model_type: missing (expected a string)");
  c.model_type = mt->get<std::string>();
  if (c.model_type == "gemma3_text") FillGemma3Defaults(&j);
  const ArchSpec* spec = ArchOfModelType(c.model_type);
  if (spec == nullptr) {
    return Status::Error(path + ": model_type: '" + c.model_type + "' is not supported (expected " + KnownModelTypes() + ")");
  }
  QF_RETURN_IF_ERROR(RequireInt(j, path, "num_hidden_layers", 1, &c.n_layer));
  QF_RETURN_IF_ERROR(RequireInt(j, path, "hidden_size", 1, &c.n_embd));
  QF_RETURN_IF_ERROR(RequireInt(j, path, "intermediate_size", 1, &c.n_ff));
  QF_RETURN_IF_ERROR(RequireInt(j, path, "num_attention_heads", 1, &c.n_head));
  if (c.n_layer > 512) return Status::Error(path + ": num_hidden_layers: " + std::to_string(c.n_layer) + " exceeds 512");
  c.n_head_kv = OptInt(j, "num_key_value_heads").value_or(c.n_head);
  if (c.n_head_kv < 1 || c.n_head % c.n_head_kv != 0) {
    return Status::Error(path + ": num_key_value_heads: " + std::to_string(c.n_head_kv) +
                         " must be >= 1 and divide num_attention_heads (" + std::to_string(c.n_head) + ")");
  }
  c.head_dim = OptInt(j, "head_dim");
  if (c.head_dim && *c.head_dim < 1) return Status::Error(path + ": head_dim: expected a positive integer");
  if (!c.head_dim && c.n_embd % c.n_head != 0) {
    return Status::Error(path + ": hidden_size: " + std::to_string(c.n_embd) +
                         " is not a multiple of num_attention_heads and head_dim is not given");
  }
  for (const char* k : {"max_position_embeddings", "n_ctx", "seq_length", "max_sequence_length"}) {
    if (auto v = OptInt(j, k)) {
      c.n_ctx = *v;
      break;
    }
  }
  if (c.n_ctx <= 0) return Status::Error(path + ": max_position_embeddings: missing (expected the training context length)");
  c.rope_theta = OptNum(j, "rope_theta");
  if (auto e = OptNum(j, "rms_norm_eps")) {
    c.rms_eps = *e;
  } else {
    return Status::Error(path + ": rms_norm_eps: missing (expected a number)");
  }
  c.tie_word_embeddings = spec->tied_by_default;
  if (auto it = j.find("tie_word_embeddings"); it != j.end() && it->is_boolean()) c.tie_word_embeddings = *it;
  if (auto it = j.find("attention_bias"); it != j.end() && it->is_boolean()) c.attention_bias = *it;
  c.vocab_size = OptInt(j, "vocab_size");
  c.sliding_window = OptInt(j, "sliding_window");
  c.original_max_position_embeddings = OptInt(j, "original_max_position_embeddings");
  c.attn_logit_softcapping = OptNum(j, "attn_logit_softcapping");
  c.final_logit_softcapping = OptNum(j, "final_logit_softcapping");
  c.rope_local_base_freq = OptNum(j, "rope_local_base_freq");
  c.sliding_window_pattern = OptInt(j, "sliding_window_pattern");
  c.n_expert = OptInt(j, "num_local_experts").value_or(OptInt(j, "num_experts").value_or(0));
  c.n_expert_used = OptInt(j, "num_experts_per_tok").value_or(0);
  c.moe_intermediate_size = OptInt(j, "moe_intermediate_size");
  c.shared_expert_intermediate_size = OptInt(j, "shared_expert_intermediate_size");
  // Sizes written to GGUF as UINT32: in range or an error naming the field.
  for (auto [key, v, lo] : {std::tuple{"sliding_window", &c.sliding_window, int64_t{0}},
                            std::tuple{"moe_intermediate_size", &c.moe_intermediate_size, int64_t{1}},
                            std::tuple{"shared_expert_intermediate_size", &c.shared_expert_intermediate_size, int64_t{1}},
                            std::tuple{"original_max_position_embeddings", &c.original_max_position_embeddings, int64_t{1}}}) {
    if (*v && (**v < lo || **v > int64_t{0xFFFFFFFF})) {
      return Status::Error(path + ": " + key + ": " + std::to_string(**v) + " is out of range (expected " +
                           std::to_string(lo) + "..4294967295)");
    }
  }
  if (spec->expert_names.empty() != (c.n_expert == 0) || c.n_expert < 0 || c.n_expert > 4096 ||
      (c.n_expert > 0 && (c.n_expert_used < 1 || c.n_expert_used > c.n_expert))) {
    return Status::Error(path + ": num_local_experts/num_experts " + std::to_string(c.n_expert) +
                         ", num_experts_per_tok " + std::to_string(c.n_expert_used) + " (expected " +
                         (spec->expert_names.empty() ? "none for model_type '" + c.model_type + "'"
                                                     : std::string("1..4096 experts and 1..that many per token")) +
                         ")");
  }
  if (auto f = OptNum(j, "partial_rotary_factor")) {
    if (!(*f > 0.0 && *f <= 1.0)) {
      return Status::Error(path + ": partial_rotary_factor: " + std::to_string(*f) + " (expected a number in (0, 1])");
    }
    c.partial_rotary_factor = *f;
  }
  if (auto it = j.find("rope_scaling"); it != j.end() && it->is_object()) {
    const json& rs = *it;
    std::string type;
    if (rs.contains("rope_type") && rs["rope_type"].is_string()) type = rs["rope_type"];
    else if (rs.contains("type") && rs["type"].is_string()) type = rs["type"];
    c.rope_scaling.type = type;
    c.rope_scaling.factor_stated = OptNum(rs, "factor").has_value();
    c.rope_scaling.factor = OptNum(rs, "factor").value_or(1.0);
    c.rope_scaling.original_context = OptInt(rs, "original_max_position_embeddings");
    c.rope_scaling.low_freq_factor = OptNum(rs, "low_freq_factor").value_or(1.0);
    c.rope_scaling.high_freq_factor = OptNum(rs, "high_freq_factor").value_or(4.0);
    c.rope_scaling.attn_factor = OptNum(rs, "attention_factor");
    c.rope_scaling.beta_fast = OptNum(rs, "beta_fast");
    c.rope_scaling.beta_slow = OptNum(rs, "beta_slow");
    for (auto [key, into] : {std::pair{"long_factor", &c.rope_scaling.long_factor},
                             std::pair{"short_factor", &c.rope_scaling.short_factor}}) {
      auto f = rs.find(key);
      if (f == rs.end() || f->is_null()) continue;
      if (!f->is_array()) return Status::Error(path + ": rope_scaling." + key + ": expected an array of numbers");
      for (const auto& v : *f) {
        if (!v.is_number()) return Status::Error(path + ": rope_scaling." + key + ": expected an array of numbers");
        into->push_back(v.get<double>());
      }
    }
  }
  return c;
}

}  // namespace qforge
