// Conversion of generated qwen2, qwen3, mistral and llama folders: names,
// which tensors are permuted, biases and norms in F32, BPE tokenizer keys,
// tied embeddings and sharded checkpoints.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <limits>

#include "io/gguf.h"
#include "model/model.h"
#include "io/safetensors.h"
#include "plan/plan.h"
#include "sinks/gguf_sink.h"
#include "synthetic_model.h"
#include "test_util.h"

namespace qforge {
namespace {
using test::ScratchDir;
using test::SyntheticSpec;

std::unique_ptr<GgufFile> ConvertSynthetic(const ScratchDir& dir, const SyntheticSpec& spec, const std::string& type) {
  const std::string model = dir.File("model");
  std::string err = test::WriteSyntheticModel(model, spec);
  EXPECT_EQ(err, "");
  auto m = OpenModel(model);
  EXPECT_TRUE(m.ok()) << m.status().message();
  if (!m.ok()) return nullptr;
  auto plan = BuildPlan(*m, *FindPreset(type), {});
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  if (!plan.ok()) return nullptr;
  SinkOptions so;
  so.threads = 2;
  Status s = WriteGguf(*plan, dir.File("out.gguf"), so);
  EXPECT_TRUE(s.ok()) << s.message();
  auto g = GgufFile::Open(dir.File("out.gguf"));
  EXPECT_TRUE(g.ok()) << g.status().message();
  return g.ok() ? std::move(g).value() : nullptr;
}

std::vector<float> RowsOf(const GgufFile& g, const std::string& name) {
  const GgufTensorInfo* t = g.FindTensor(name);
  EXPECT_NE(t, nullptr) << name;
  if (t == nullptr || t->type != GgmlType::F32) return {};
  std::vector<float> v(static_cast<size_t>(t->n_elements()));
  std::memcpy(v.data(), g.TensorData(*t), t->nbytes);
  return v;
}

TEST(Synthetic, Qwen2KeepsRowOrderAndBiasesAndBpeVocab) {
  ScratchDir dir;
  SyntheticSpec spec;
  spec.model_type = "qwen2";
  spec.biases = true;
  spec.tied = true;
  spec.numbered_rows = true;
  auto g = ConvertSynthetic(dir, spec, "Q8_0");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->metadata().Find("general.architecture")->AsString(), "qwen2");
  EXPECT_NE(g->metadata().Find("qwen2.block_count"), nullptr);
  EXPECT_EQ(g->FindTensor("output.weight"), nullptr) << "tied embeddings need no output tensor";
  for (const char* b : {"blk.0.attn_q.bias", "blk.0.attn_k.bias", "blk.1.attn_v.bias"}) {
    ASSERT_NE(g->FindTensor(b), nullptr) << b;
    EXPECT_EQ(g->FindTensor(b)->type, GgmlType::F32) << b;
  }
  EXPECT_EQ(g->FindTensor("blk.0.attn_q.weight")->type, GgmlType::Q8_0);
  EXPECT_EQ(g->metadata().Find("tokenizer.ggml.model")->AsString(), "gpt2");
  EXPECT_EQ(g->metadata().Find("tokenizer.ggml.pre")->AsString(), "qwen2");
  const GgufValue* toks = g->metadata().Find("tokenizer.ggml.tokens");
  ASSERT_NE(toks, nullptr);
  EXPECT_EQ(toks->strings(), (std::vector<std::string>{"a", "b", "ab", "\xC4\xA0", "\xC4\xA0" "ab", "<|endoftext|>",
                                                        "<extra>", "[PAD7]"}));
  const GgufValue* types = g->metadata().Find("tokenizer.ggml.token_type");
  std::vector<int64_t> tv;
  for (uint64_t i = 0; i < types->count(); ++i) tv.push_back(types->ArrayI64(i));
  EXPECT_EQ(tv, (std::vector<int64_t>{1, 1, 1, 1, 1, 3, 4, 5}));
  EXPECT_EQ(g->metadata().Find("tokenizer.ggml.merges")->strings(),
            (std::vector<std::string>{"a b", "\xC4\xA0 ab"}));
  EXPECT_EQ(g->metadata().Find("tokenizer.ggml.scores"), nullptr);
  EXPECT_EQ(g->metadata().Find("tokenizer.ggml.eos_token_id")->AsU64(), 5u);
  EXPECT_EQ(g->metadata().Find("tokenizer.chat_template")->AsString(), "{{ messages }}");
  EXPECT_FALSE(g->metadata().Find("tokenizer.ggml.add_bos_token")->AsBool());
}

TEST(Synthetic, Qwen2RowsAreNotPermuted) {
  ScratchDir dir;
  SyntheticSpec spec;
  spec.model_type = "qwen2";
  spec.numbered_rows = true;
  auto g = ConvertSynthetic(dir, spec, "F32");
  ASSERT_NE(g, nullptr);
  auto q = RowsOf(*g, "blk.0.attn_q.weight");
  ASSERT_EQ(q.size(), 64u * 64u);
  for (int r = 0; r < 64; ++r) EXPECT_EQ(q[static_cast<size_t>(r) * 64], static_cast<float>(r));
}

// Expected GGUF row order of a permuted Q/K: reshape rows to (heads, 2, D/2)
// and swap the last two axes.
std::vector<int> PermutedOrder(int heads, int rows) {
  const int d = rows / heads;
  std::vector<int> order;
  for (int h = 0; h < heads; ++h)
    for (int j = 0; j < d / 2; ++j)
      for (int t = 0; t < 2; ++t) order.push_back(h * d + t * (d / 2) + j);
  return order;
}

class PermutingArch : public ::testing::TestWithParam<std::string> {};

TEST_P(PermutingArch, QAndKRowsArePermutedVAndOAreNot) {
  ScratchDir dir;
  SyntheticSpec spec;
  spec.model_type = GetParam();
  spec.numbered_rows = true;
  spec.bpe_tokenizer = false;
  spec.vocab = 4096;
  auto g = ConvertSynthetic(dir, spec, "F32");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->metadata().Find("general.architecture")->AsString(), "llama");
  auto q = RowsOf(*g, "blk.1.attn_q.weight");
  auto k = RowsOf(*g, "blk.1.attn_k.weight");
  auto v = RowsOf(*g, "blk.1.attn_v.weight");
  const auto q_order = PermutedOrder(4, 64), k_order = PermutedOrder(2, 32);
  for (int r = 0; r < 64; ++r) EXPECT_EQ(q[static_cast<size_t>(r) * 64], static_cast<float>(q_order[r])) << r;
  for (int r = 0; r < 32; ++r) EXPECT_EQ(k[static_cast<size_t>(r) * 64], static_cast<float>(k_order[r])) << r;
  for (int r = 0; r < 32; ++r) EXPECT_EQ(v[static_cast<size_t>(r) * 64], static_cast<float>(r)) << r;
  EXPECT_EQ(g->metadata().Find("tokenizer.ggml.model")->AsString(), "llama");
  EXPECT_EQ(g->metadata().Find("tokenizer.ggml.tokens")->count(), 4096u);
}

INSTANTIATE_TEST_SUITE_P(Arch, PermutingArch, ::testing::Values("llama", "mistral"));

TEST(Synthetic, GenerationConfigGivesSamplingKeys) {
  ScratchDir dir;
  SyntheticSpec spec;
  spec.model_type = "qwen2";
  ASSERT_EQ(test::WriteSyntheticModel(dir.File("model"), spec), "");
  test::WriteFile(dir.File("model/generation_config.json"),
                  R"({"do_sample": true, "temperature": 0.7, "top_k": 20, "top_p": 0.8, "repetition_penalty": 1.05})");
  auto m = OpenModel(dir.File("model"));
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->metadata.Find("general.sampling.top_k")->type(), GgufType::INT32);
  EXPECT_EQ(m->metadata.Find("general.sampling.top_k")->AsI64(), 20);
  EXPECT_FLOAT_EQ(static_cast<float>(m->metadata.Find("general.sampling.temp")->AsF64()), 0.7f);
  EXPECT_FLOAT_EQ(static_cast<float>(m->metadata.Find("general.sampling.penalty_repeat")->AsF64()), 1.05f);
  test::WriteFile(dir.File("model/generation_config.json"), "{oops");
  auto bad = OpenModel(dir.File("model"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("generation_config.json"), std::string::npos);
}

TEST(Synthetic, Qwen3HasQkNormsInF32AndHeadDimKeys) {
  ScratchDir dir;
  SyntheticSpec spec;
  spec.model_type = "qwen3";
  spec.qk_norm = true;
  auto g = ConvertSynthetic(dir, spec, "BF16");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->metadata().Find("general.architecture")->AsString(), "qwen3");
  ASSERT_NE(g->FindTensor("blk.0.attn_q_norm.weight"), nullptr);
  EXPECT_EQ(g->FindTensor("blk.0.attn_q_norm.weight")->type, GgmlType::F32);
  EXPECT_EQ(g->FindTensor("blk.1.attn_k_norm.weight")->ne, (std::vector<int64_t>{16}));
  EXPECT_EQ(g->FindTensor("blk.0.ffn_up.weight")->type, GgmlType::BF16);
  EXPECT_EQ(g->metadata().Find("qwen3.attention.key_length")->AsU64(), 16u);
  EXPECT_FLOAT_EQ(static_cast<float>(g->metadata().Find("qwen3.rope.freq_base")->AsF64()), 1e6f);
}

TEST(Synthetic, ShardedCheckpointConvertsLikeSingleFile) {
  ScratchDir a, b;
  SyntheticSpec spec;
  spec.model_type = "qwen2";
  auto single = ConvertSynthetic(a, spec, "F16");
  spec.sharded = true;
  auto sharded = ConvertSynthetic(b, spec, "F16");
  ASSERT_NE(single, nullptr);
  ASSERT_NE(sharded, nullptr);
  ASSERT_EQ(single->tensors().size(), sharded->tensors().size());
  for (const auto& t : single->tensors()) {
    const GgufTensorInfo* u = sharded->FindTensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(std::memcmp(single->TensorData(t), sharded->TensorData(*u), t.nbytes), 0) << t.name;
  }
}

struct PoisonCase {
  const char* preset;
  float value;
};

class PoisonedWeight : public ::testing::TestWithParam<PoisonCase> {};

TEST_P(PoisonedWeight, IsRefusedWithTheTensorNamed) {
  ScratchDir dir;
  const std::string model = dir.File("model");
  SyntheticSpec spec;
  spec.model_type = "qwen2";
  spec.hidden = 256;
  ASSERT_EQ(test::WriteSyntheticModel(model, spec), "");
  // Poison one weight of layer 1's up projection.
  std::vector<StWriteTensor> ts;
  {
    auto st = SafetensorsModel::Open(model);
    ASSERT_TRUE(st.ok());
    for (const auto& t : st->tensors()) {
      StWriteTensor w{t.name, t.dtype, t.shape, std::vector<uint8_t>(t.data, t.data + t.nbytes)};
      if (t.name == "model.layers.1.mlp.up_proj.weight") std::memcpy(w.bytes.data() + 4 * 70, &GetParam().value, 4);
      ts.push_back(std::move(w));
    }
  }
  ASSERT_TRUE(WriteSafetensorsFile(model + "/model.safetensors", std::move(ts)).ok());
  auto m = OpenModel(model);
  ASSERT_TRUE(m.ok());
  auto plan = BuildPlan(*m, *FindPreset(GetParam().preset), {});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  Status s = WriteGguf(*plan, dir.File("out.gguf"), {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("model.layers.1.mlp.up_proj.weight"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("NaN or Inf"), std::string::npos) << s.message();
  EXPECT_EQ(dir.List(), std::vector<std::string>{"model"}) << "no temporary file may be left behind";
}

INSTANTIATE_TEST_SUITE_P(Values, PoisonedWeight,
                         ::testing::Values(PoisonCase{"Q8_0", std::numeric_limits<float>::quiet_NaN()},
                                           PoisonCase{"Q4_K_M", std::numeric_limits<float>::infinity()},
                                           PoisonCase{"IQ4_XS", -std::numeric_limits<float>::infinity()}));

}  // namespace
}  // namespace qforge
