// Writes a LLaMA-shaped Hugging Face folder of any size with random BF16
// weights (the house model's tokenizer, so every qforge command runs on
// it), streaming one tensor at a time so making a model larger than memory
// needs no more than one tensor of it. For bench/memory_bound and
// moe_bench. With EXPERTS and USED, a Mixtral-shaped mixture of experts:
// FFN is each expert's width, USED experts run per token. By default the
// vocabulary is the house tokenizer's 4096 tokens, heads are 64 wide with a
// quarter as many KV heads, and the output matrix is separate; the options
// give a real config's shapes (--vocab pads the tokenizer with unused
// tokens, as converters do for a config's larger vocab_size).
//   make_model OUT LAYERS HIDDEN FFN [EXPERTS USED]
//              [--vocab N] [--heads N] [--kv-heads N] [--tie]
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
  std::vector<std::string> pos;
  int64_t V = 4096, H = 0, KV = 0;
  bool tie = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--vocab" || a == "--heads" || a == "--kv-heads") && i + 1 < argc) {
      const int64_t v = std::atoll(argv[++i]);
      (a == "--vocab" ? V : a == "--heads" ? H : KV) = v;
    } else if (a == "--tie") {
      tie = true;
    } else {
      pos.push_back(a);
    }
  }
  if (pos.size() != 4 && pos.size() != 6) {
    std::fprintf(stderr,
                 "usage: make_model OUT LAYERS HIDDEN FFN [EXPERTS USED] [--vocab N] [--heads N] [--kv-heads N] "
                 "[--tie]\n");
    return 2;
  }
  const std::string out = pos[0];
  const int64_t L = std::atoll(pos[1].c_str()), E = std::atoll(pos[2].c_str()), F = std::atoll(pos[3].c_str());
  const int64_t NE = pos.size() == 6 ? std::atoll(pos[4].c_str()) : 0, K = pos.size() == 6 ? std::atoll(pos[5].c_str()) : 0;
  if (pos.size() == 6 && (NE < 2 || K < 1 || K > NE)) {
    std::fprintf(stderr, "make_model: need EXPERTS >= 2 and 1 <= USED <= EXPERTS\n");
    return 2;
  }
  if (H == 0) H = E / 64;
  if (KV == 0) KV = std::max<int64_t>(1, H / 4);
  if (L < 1 || E < 64 || H < 1 || E % H != 0 || KV < 1 || H % KV != 0 || F < 1 || V < 4096) {
    std::fprintf(stderr,
                 "make_model: need LAYERS >= 1, HIDDEN >= 64 and a multiple of HEADS, HEADS a multiple of KV-HEADS, "
                 "FFN >= 1, VOCAB >= 4096\n");
    return 2;
  }
  const int64_t D = E / H;
  fs::create_directories(out);
  const std::string house = std::string(QFORGE_SOURCE_DIR) + "/models/house-14m";
  for (const char* f : {"tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
    fs::copy_file(house + "/" + f, out + "/" + f, fs::copy_options::overwrite_existing);
  }
  nlohmann::json cfg = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", E},
                        {"intermediate_size", F}, {"num_attention_heads", H}, {"num_key_value_heads", KV},
                        {"num_hidden_layers", L}, {"vocab_size", V}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0},
                        {"max_position_embeddings", 2048}, {"tie_word_embeddings", tie}, {"bos_token_id", 1},
                        {"eos_token_id", 2}, {"torch_dtype", "bfloat16"}};
  if (NE > 0) {
    cfg["architectures"] = {"MixtralForCausalLM"};
    cfg["model_type"] = "mixtral";
    cfg["num_local_experts"] = NE;
    cfg["num_experts_per_tok"] = K;
  }
  std::ofstream(out + "/config.json") << cfg.dump(2);

  std::vector<SafetensorsStreamWriter::Entry> entries = {{"model.embed_tokens.weight", StDtype::BF16, {V, E}},
                                                         {"model.norm.weight", StDtype::BF16, {E}}};
  if (!tie) entries.push_back({"lm_head.weight", StDtype::BF16, {V, E}});
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
