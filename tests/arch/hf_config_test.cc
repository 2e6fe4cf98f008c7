#include "arch/hf_config.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "io/json_file.h"
#include "model/model.h"
#include "test_util.h"

namespace qforge {
namespace {
using test::ScratchDir;

TEST(HfConfig, BundledModel) {
  auto c = ReadHfConfig(test::HouseModelDir());
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->model_type, "llama");
  EXPECT_EQ(c->n_layer, 4);
  EXPECT_EQ(c->n_embd, 512);
  EXPECT_EQ(c->n_ff, 1024);
  EXPECT_EQ(c->n_head, 8);
  EXPECT_EQ(c->n_head_kv, 4);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->n_ctx, 512);
  EXPECT_DOUBLE_EQ(c->rms_eps, 1e-5);
  EXPECT_FALSE(c->tie_word_embeddings);
}

struct Bad {
  std::string json;
  const char* expect;
};

TEST(HfConfig, ErrorsNameTheField) {
  ScratchDir dir;
  auto missing = ReadHfConfig(dir.path());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("config.json"), std::string::npos);
  const std::string base =
      R"("num_hidden_layers":2,"hidden_size":64,"intermediate_size":128,"num_attention_heads":4,)"
      R"("max_position_embeddings":128,"rms_norm_eps":1e-5)";
  const Bad cases[] = {
      {"{not json", "invalid JSON"},
      {R"({"model_type":"gpt_neox",)" "\"x\":1}", "model_type: 'gpt_neox' is not supported"},
      {R"({"model_type":"llama","num_hidden_layers":2})", "hidden_size: missing"},
      {std::string(R"({"model_type":"llama",)") + base + R"(,"num_key_value_heads":3})", "num_key_value_heads"},
      {R"({"model_type":"llama","num_hidden_layers":"2"})", "num_hidden_layers: expected an integer"},
      {R"({"num_hidden_layers":2})", "model_type: missing"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json);
    test::WriteFile(dir.File("config.json"), c.json);
    auto r = ReadHfConfig(dir.path());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find(dir.File("config.json")), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().message();
  }
}

// A Gemma3ForConditionalGeneration config.json: the language model under
// text_config with most keys left to Gemma3TextConfig's defaults.
TEST(HfConfig, Gemma3TextConfigDefaults) {
  ScratchDir dir;
  test::WriteFile(dir.File("config.json"),
                  R"({"architectures":["Gemma3ForConditionalGeneration"],"model_type":"gemma3",)"
                  R"("text_config":{"hidden_size":2560,"intermediate_size":10240,"model_type":"gemma3_text",)"
                  R"("num_hidden_layers":34,"rope_scaling":{"factor":8.0,"rope_type":"linear"},"sliding_window":1024},)"
                  R"("vision_config":{"model_type":"siglip_vision_model"}})");
  auto c = ReadHfConfig(dir.path());
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->model_type, "gemma3_text");
  EXPECT_TRUE(c->multimodal);
  EXPECT_EQ(c->n_head, 8);
  EXPECT_EQ(c->n_head_kv, 4);
  EXPECT_EQ(c->HeadDim(), 256);
  EXPECT_EQ(c->n_ctx, 131072);
  EXPECT_EQ(c->rope_theta, 1000000.0);
  EXPECT_EQ(c->rope_local_base_freq, 10000.0);
  EXPECT_EQ(c->sliding_window, 1024);
  EXPECT_EQ(c->rope_scaling.type, "linear");
  EXPECT_TRUE(c->tie_word_embeddings);  // Gemma's default when the key is absent
  EXPECT_FALSE(c->final_logit_softcapping.has_value());
}

// Values that would wrap in a UINT32 key or break a formula are refused
// with the field named; a reference model with one of them refuses to open.
TEST(HfConfig, ArchitectureFieldsOutOfRange) {
  ScratchDir dir;
  const std::string base = test::SharedDir() + "/reference/llama.cpp/arch/";
  struct Edit {
    const char* arch;
    const char* key;
    nlohmann::json value;
    const char* expect;
  };
  const Edit edits[] = {
      {"gemma2", "sliding_window", -1, "sliding_window: -1 is out of range"},
      {"qwen2moe", "moe_intermediate_size", 0, "moe_intermediate_size: 0 is out of range"},
      {"mixtral", "num_experts_per_tok", 9, "num_experts_per_tok 9"},
      {"mixtral", "num_local_experts", 0, "expected 1..4096 experts"},
  };
  for (const Edit& e : edits) {
    SCOPED_TRACE(e.key);
    auto j = ReadJsonFile(base + e.arch + "/hf/config.json");
    ASSERT_TRUE(j.ok());
    (*j)[e.key] = e.value;
    test::WriteFile(dir.File("config.json"), j->dump());
    auto r = ReadHfConfig(dir.path());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find(e.expect), std::string::npos) << r.status().message();
  }
}

// Phi-3's LongRoPE needs an original context it can take the log of.
TEST(HfConfig, Phi3LongRopeNeedsTheOriginalContext) {
  ScratchDir dir;
  const std::string src = test::SharedDir() + "/reference/llama.cpp/arch/phi3/hf";
  std::filesystem::copy(src, dir.path(), std::filesystem::copy_options::recursive);
  auto j = ReadJsonFile(dir.File("config.json"));
  ASSERT_TRUE(j.ok());
  (*j)["original_max_position_embeddings"] = 1;
  test::WriteFile(dir.File("config.json"), j->dump());
  auto m = OpenModel(dir.path());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("original_max_position_embeddings: 1"), std::string::npos) << m.status().message();
}

}  // namespace
}  // namespace qforge
