// Writes a LLaMA-shaped Hugging Face folder of any size with random BF16
// weights (the house model's tokenizer, so every qforge command runs on
// it), streaming one tensor at a time so making a model larger than memory
// needs no more than one tensor of it. For bench/memory_bound and
// moe_bench. With EXPERTS and USED, a Mixtral-shaped mixture of experts:
// FFN is each expert's width, USED experts run per token.
//   make_model OUT LAYERS HIDDEN FFN [EXPERTS USED]
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "io/safetensors.h"
#include "numeric/half.h"

namespace fs = std::filesystem;
using namespace qforge;

int main(int argc, char** argv) {
  if (argc != 5 && argc != 7) {
    std::fprintf(stderr, "usage: make_model OUT LAYERS HIDDEN FFN [EXPERTS USED]\n");
    return 2;
  }
  const std::string out = argv[1];
  const int64_t L = std::atoll(argv[2]), E = std::atoll(argv[3]), F = std::atoll(argv[4]);
  const int64_t NE = argc == 7 ? std::atoll(argv[5]) : 0, K = argc == 7 ? std::atoll(argv[6]) : 0;
  if (argc == 7 && (NE < 2 || K < 1 || K > NE)) {
    std::fprintf(stderr, "make_model: need EXPERTS >= 2 and 1 <= USED <= EXPERTS\n");
    return 2;
  }
  const int64_t V = 4096, H = E / 64, KV = std::max<int64_t>(1, H / 4), D = 64;
  if (L < 1 || E < 64 || E % 64 != 0 || F < 1) {
    std::fprintf(stderr, "make_model: need LAYERS >= 1, HIDDEN a multiple of 64, FFN >= 1\n");
    return 2;
  }
  fs::create_directories(out);
  const std::string house = std::string(QFORGE_SOURCE_DIR) + "/models/house-14m";
  for (const char* f : {"tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
    fs::copy_file(house + "/" + f, out + "/" + f, fs::copy_options::overwrite_existing);
  }
  nlohmann::json cfg = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", E},
                        {"intermediate_size", F}, {"num_attention_heads", H}, {"num_key_value_heads", KV},
                        {"num_hidden_layers", L}, {"vocab_size", V}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0},
                        {"max_position_embeddings", 2048}, {"tie_word_embeddings", false}, {"bos_token_id", 1},
                        {"eos_token_id", 2}, {"torch_dtype", "bfloat16"}};
  if (NE > 0) {
    cfg["architectures"] = {"MixtralForCausalLM"};
    cfg["model_type"] = "mixtral";
    cfg["num_local_experts"] = NE;
    cfg["num_experts_per_tok"] = K;
  }
  std::ofstream(out + "/config.json") << cfg.dump(2);

  std::vector<SafetensorsStreamWriter::Entry> entries = {{"model.embed_tokens.weight", StDtype::BF16, {V, E}},
                                                         {"lm_head.weight", StDtype::BF16, {V, E}},
                                                         {"model.norm.weight", StDtype::BF16, {E}}};
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    entries.push_back({p + "input_layernorm.weight", StDtype::BF16, {E}});
    entries.push_back({p + "post_attention_layernorm.weight", StDtype::BF16, {E}});
    entries.push_back({p + "self_attn.q_proj.weight", StDtype::BF16, {H * D, E}});
    entries.push_back({p + "self_attn.k_proj.weight", StDtype::BF16, {KV * D, E}});
    entries.push_back({p + "self_attn.v_proj.weight", StDtype::BF16, {KV * D, E}});
    entries.push_back({p + "self_attn.o_proj.weight", StDtype::BF16, {E, H * D}});
    if (NE > 0) {
      entries.push_back({p + "block_sparse_moe.gate.weight", StDtype::BF16, {NE, E}});
      for (int64_t x = 0; x < NE; ++x) {
        const std::string q = p + "block_sparse_moe.experts." + std::to_string(x) + ".";
        entries.push_back({q + "w1.weight", StDtype::BF16, {F, E}});
        entries.push_back({q + "w2.weight", StDtype::BF16, {E, F}});
        entries.push_back({q + "w3.weight", StDtype::BF16, {F, E}});
      }
      continue;
    }
    entries.push_back({p + "mlp.gate_proj.weight", StDtype::BF16, {F, E}});
    entries.push_back({p + "mlp.up_proj.weight", StDtype::BF16, {F, E}});
    entries.push_back({p + "mlp.down_proj.weight", StDtype::BF16, {E, F}});
  }
  auto w = SafetensorsStreamWriter::Create(out + "/model.safetensors", entries);
  if (!w.ok()) {
    std::fprintf(stderr, "make_model: %s\n", w.status().message().c_str());
    return 1;
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const auto& e : entries) {
    int64_t n = 1;
    for (int64_t d : e.shape) n *= d;
    const bool norm = e.shape.size() == 1;
    const float scale = norm ? 0.0f : 1.0f / std::sqrt(static_cast<float>(e.shape.back()));
    std::vector<uint8_t> bytes(static_cast<size_t>(n) * 2);
    auto* h = reinterpret_cast<uint16_t*>(bytes.data());
    for (int64_t i = 0; i < n; ++i) h[i] = FloatToBf16(norm ? 1.0f : normal(rng) * scale);
    if (Status s = (*w)->Write(e.name, bytes); !s.ok()) {
      std::fprintf(stderr, "make_model: %s\n", s.message().c_str());
      return 1;
    }
  }
  if (Status s = (*w)->Commit(); !s.ok()) {
    std::fprintf(stderr, "make_model: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}
