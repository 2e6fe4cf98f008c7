#include "synthetic_model.h"

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "io/safetensors.h"
#include "test_util.h"

namespace qforge::test {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

StWriteTensor F32Tensor(const std::string& name, std::vector<int64_t> shape, bool numbered, std::mt19937& rng) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  std::normal_distribution<float> nd(0.0f, 0.05f);
  const int64_t cols = shape.size() > 1 ? shape.back() : 1;
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = numbered ? static_cast<float>(i / cols) : nd(rng);
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return {name, StDtype::F32, std::move(shape), std::move(b)};
}

json BpeTokenizer() {
  json t;
  t["version"] = "1.0";
  t["added_tokens"] = json::array({
      {{"id", 5}, {"content", "<|endoftext|>"}, {"special", true}, {"normalized", false}},
      {{"id", 6}, {"content", "<extra>"}, {"special", false}, {"normalized", true}},
  });
  t["normalizer"] = nullptr;
  const std::string qwen2_regex =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  t["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         json::array({{{"type", "Split"}, {"pattern", {{"Regex", qwen2_regex}}}, {"behavior", "Isolated"}},
                                      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  t["post_processor"] = nullptr;
  t["decoder"] = {{"type", "ByteLevel"}};
  t["model"] = {{"type", "BPE"},
                {"byte_fallback", false},
                {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}, {"\xC4\xA0", 3}, {"\xC4\xA0" "ab", 4}}},
                {"merges", json::array({json::array({"a", "b"}), json::array({"\xC4\xA0", "ab"})})}};
  return t;
}

}  // namespace

std::string WriteSyntheticModel(const std::string& dir, const SyntheticSpec& s) {
  fs::create_directories(dir);
  const int head_dim = s.hidden / s.heads;
  json cfg = {{"architectures", json::array({"X"})},
              {"model_type", s.model_type},
              {"num_hidden_layers", s.layers},
              {"hidden_size", s.hidden},
              {"intermediate_size", s.ffn},
              {"num_attention_heads", s.heads},
              {"num_key_value_heads", s.kv_heads},
              {"max_position_embeddings", 256},
              {"rms_norm_eps", 1e-6},
              {"rope_theta", 1000000.0},
              {"vocab_size", s.vocab},
              {"tie_word_embeddings", s.config_tie < 0 ? s.tied : s.config_tie == 1},
              {"bos_token_id", nullptr},
              {"eos_token_id", 5}};
  if (s.qk_norm) cfg["head_dim"] = head_dim;
  WriteFile(dir + "/config.json", cfg.dump(2));

  std::mt19937 rng(7);
  std::vector<StWriteTensor> ts;
  ts.push_back(F32Tensor("model.embed_tokens.weight", {s.vocab, s.hidden}, false, rng));
  if (!s.tied && s.lm_head_is_embedding) {
    ts.push_back(ts.back());
    ts.back().name = "lm_head.weight";
  } else if (!s.tied) {
    ts.push_back(F32Tensor("lm_head.weight", {s.vocab, s.hidden}, false, rng));
  }
  ts.push_back(F32Tensor("model.norm.weight", {s.hidden}, false, rng));
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const bool num = s.numbered_rows;
    ts.push_back(F32Tensor(p + "input_layernorm.weight", {s.hidden}, false, rng));
    ts.push_back(F32Tensor(p + "post_attention_layernorm.weight", {s.hidden}, false, rng));
    ts.push_back(F32Tensor(p + "self_attn.q_proj.weight", {s.heads * head_dim, s.hidden}, num, rng));
    ts.push_back(F32Tensor(p + "self_attn.k_proj.weight", {s.kv_heads * head_dim, s.hidden}, num, rng));
    ts.push_back(F32Tensor(p + "self_attn.v_proj.weight", {s.kv_heads * head_dim, s.hidden}, num, rng));
    ts.push_back(F32Tensor(p + "self_attn.o_proj.weight", {s.hidden, s.heads * head_dim}, num, rng));
    ts.push_back(F32Tensor(p + "mlp.gate_proj.weight", {s.ffn, s.hidden}, num, rng));
    ts.push_back(F32Tensor(p + "mlp.up_proj.weight", {s.ffn, s.hidden}, num, rng));
    ts.push_back(F32Tensor(p + "mlp.down_proj.weight", {s.hidden, s.ffn}, num, rng));
    if (s.biases) {
      ts.push_back(F32Tensor(p + "self_attn.q_proj.bias", {s.heads * head_dim}, false, rng));
      ts.push_back(F32Tensor(p + "self_attn.k_proj.bias", {s.kv_heads * head_dim}, false, rng));
      ts.push_back(F32Tensor(p + "self_attn.v_proj.bias", {s.kv_heads * head_dim}, false, rng));
    }
    if (s.qk_norm) {
      ts.push_back(F32Tensor(p + "self_attn.q_norm.weight", {head_dim}, false, rng));
      ts.push_back(F32Tensor(p + "self_attn.k_norm.weight", {head_dim}, false, rng));
    }
  }
  if (s.sharded) {
    std::vector<StWriteTensor> a, b;
    json wm = json::object();
    for (size_t i = 0; i < ts.size(); ++i) {
      const bool first = i % 2 == 0;
      const std::string file = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
      wm[ts[i].name] = file;
      (first ? a : b).push_back(std::move(ts[i]));
    }
    Status s1 = WriteSafetensorsFile(dir + "/model-00001-of-00002.safetensors", std::move(a));
    Status s2 = WriteSafetensorsFile(dir + "/model-00002-of-00002.safetensors", std::move(b));
    if (!s1.ok()) return s1.message();
    if (!s2.ok()) return s2.message();
    WriteFile(dir + "/model.safetensors.index.json", json({{"metadata", {{"total_size", 0}}}, {"weight_map", wm}}).dump());
  } else {
    Status st = WriteSafetensorsFile(dir + "/model.safetensors", std::move(ts));
    if (!st.ok()) return st.message();
  }

  if (s.bpe_tokenizer) {
    WriteFile(dir + "/tokenizer.json", BpeTokenizer().dump(2));
    WriteFile(dir + "/tokenizer_config.json",
              json({{"eos_token", "<|endoftext|>"}, {"bos_token", nullptr}, {"chat_template", "{{ messages }}"},
                    {"add_bos_token", false}})
                  .dump(2));
  } else {
    fs::copy_file(HouseModelDir() + "/tokenizer.model", dir + "/tokenizer.model", fs::copy_options::overwrite_existing);
  }
  return "";
}

}  // namespace qforge::test
