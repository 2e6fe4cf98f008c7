#include "arch/llama_family.h"

#include <gtest/gtest.h>

namespace qforge {
namespace {

HfConfig Llama() {
  HfConfig c;
  c.path = "config.json";
  c.model_type = "llama";
  c.n_layer = 4;
  c.n_head = 8;
  c.n_head_kv = 4;
  c.n_embd = 512;
  return c;
}

TEST(LlamaFamily, MapsNamesAndMarksPermutations) {
  const HfConfig c = Llama();
  auto q = MapHfTensorName(c, "model.layers.3.self_attn.q_proj.weight");
  ASSERT_TRUE(q.ok() && q->has_value());
  EXPECT_EQ((*q)->gguf_name, "blk.3.attn_q.weight");
  EXPECT_EQ((*q)->permute_heads, 8);
  auto k = MapHfTensorName(c, "model.layers.0.self_attn.k_proj.bias");
  EXPECT_EQ((*k)->gguf_name, "blk.0.attn_k.bias");
  EXPECT_EQ((*k)->permute_heads, 4);
  EXPECT_EQ((*MapHfTensorName(c, "model.layers.0.self_attn.v_proj.weight"))->permute_heads, 0);
  EXPECT_EQ((*MapHfTensorName(c, "lm_head.weight"))->gguf_name, "output.weight");
  EXPECT_EQ((*MapHfTensorName(c, "model.norm.weight"))->gguf_name, "output_norm.weight");
  EXPECT_EQ((*MapHfTensorName(c, "model.layers.1.post_attention_layernorm.weight"))->gguf_name, "blk.1.ffn_norm.weight");
  auto dropped = MapHfTensorName(c, "model.layers.0.self_attn.rotary_emb.inv_freq");
  ASSERT_TRUE(dropped.ok());
  EXPECT_FALSE(dropped->has_value());
}

TEST(LlamaFamily, UnknownOrOutOfRangeNamesAreErrors) {
  const HfConfig c = Llama();
  EXPECT_FALSE(MapHfTensorName(c, "model.layers.4.mlp.up_proj.weight").ok());
  EXPECT_FALSE(MapHfTensorName(c, "model.vision_tower.weight").ok());
  auto e = MapHfTensorName(c, "model.layers.x.mlp.up_proj.weight");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("model.layers.x.mlp.up_proj.weight"), std::string::npos);
}

TEST(LlamaFamily, QwenIsNotPermuted) {
  HfConfig c = Llama();
  c.model_type = "qwen2";
  EXPECT_EQ((*MapHfTensorName(c, "model.layers.0.self_attn.q_proj.weight"))->permute_heads, 0);
  EXPECT_EQ(GgufArchitecture("mistral"), "llama");
  EXPECT_EQ(GgufArchitecture("qwen3"), "qwen3");
}

TEST(LlamaFamily, ModelCardFromFolderName) {
  auto c = ModelCardFromFolder("/x/models/house-14m", 13600000);
  EXPECT_EQ(c.name, "House 14m");
  EXPECT_EQ(c.basename, "house");
  EXPECT_EQ(c.size_label, "14M");
  auto d = ModelCardFromFolder("/m/Qwen2.5-0.5B-Instruct", 0);
  EXPECT_EQ(d.basename, "Qwen2.5");
  EXPECT_EQ(d.size_label, "0.5B");
  EXPECT_EQ(d.finetune, "Instruct");
  auto e = ModelCardFromFolder("/m/tiny", 260000);
  EXPECT_EQ(e.size_label, "260K");
  EXPECT_EQ(e.basename, "");  // a bare word is too ambiguous to be a basename
  // Counts get two significant digits; units only above 1e6, 1e9, 1e12.
  EXPECT_EQ(ModelCardFromFolder("/m/hf", 2229504).size_label, "2.2M");
  EXPECT_EQ(ModelCardFromFolder("/m/hf", 1000000).size_label, "1000K");
  EXPECT_EQ(ModelCardFromFolder("/m/hf", 7241732096).size_label, "7.2B");
  EXPECT_EQ(ModelCardFromFolder("/m/hf", 7241732096, 8).size_label, "8x7.2B");
  EXPECT_EQ(ModelCardFromFolder("/m/hf", 300).size_label, "0.30K");
}

TEST(LlamaFamily, Llama3RopeFactors) {
  HfConfig c = Llama();
  c.n_embd = 4096;
  c.n_head = 32;
  c.rope_theta = 500000.0;
  c.rope_scaling.type = "llama3";
  c.rope_scaling.factor = 8.0;
  c.rope_scaling.original_context = 8192;
  auto f = Llama3RopeFactors(c);
  ASSERT_EQ(f.size(), 64u);
  EXPECT_EQ(f.front(), 1.0f);   // high frequencies are untouched
  EXPECT_EQ(f.back(), 8.0f);    // low frequencies are divided by the factor
  for (size_t i = 1; i < f.size(); ++i) EXPECT_GE(f[i], f[i - 1]);
}

}  // namespace
}  // namespace qforge

namespace qforge {
namespace {

// The architecture facts live in one ArchSpec per family.
// Gemma: the sandwich norms' names, lm_head dropped (tied), the multimodal
// wrapper's language_model prefixes read and its vision tower left out.
TEST(GemmaFamily, MapsNamesAsTheConverter) {
  HfConfig c = Llama();
  c.model_type = "gemma3_text";
  auto name = [&](const std::string& hf) -> std::string {
    auto m = MapHfTensorName(c, hf);
    EXPECT_TRUE(m.ok()) << m.status().message();
    return m.ok() && m->has_value() ? (*m)->gguf_name : "(dropped)";
  };
  EXPECT_EQ(name("model.layers.1.post_attention_layernorm.weight"), "blk.1.post_attention_norm.weight");
  EXPECT_EQ(name("model.layers.1.pre_feedforward_layernorm.weight"), "blk.1.ffn_norm.weight");
  EXPECT_EQ(name("model.layers.1.post_feedforward_layernorm.weight"), "blk.1.post_ffw_norm.weight");
  EXPECT_EQ(name("model.layers.0.self_attn.q_norm.weight"), "blk.0.attn_q_norm.weight");
  EXPECT_EQ(name("lm_head.weight"), "(dropped)");
  EXPECT_EQ(name("language_model.model.layers.2.mlp.down_proj.weight"), "blk.2.ffn_down.weight");
  EXPECT_EQ(name("model.language_model.embed_tokens.weight"), "token_embd.weight");
  EXPECT_EQ((*MapHfTensorName(c, "model.layers.0.self_attn.q_proj.weight"))->permute_heads, 0);
  // A vision tower is an error in a text model, left out of a multimodal one.
  EXPECT_FALSE(MapHfTensorName(c, "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight").ok());
  c.multimodal = true;
  EXPECT_EQ(name("vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight"), "(dropped)");
  EXPECT_EQ(name("multi_modal_projector.mm_input_projection_weight"), "(dropped)");
  const ArchSpec* g = ArchOfModelType("gemma3_text");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->gguf_arch, "gemma3");
  EXPECT_EQ(g->norm_shift, 1.0f);
  EXPECT_EQ(ArchOfGguf("gemma2")->swa_period, 2);
}

TEST(ArchSpec, FamiliesAndTheirBlockLayout) {
  const ArchSpec* mistral = ArchOfModelType("mistral");
  ASSERT_NE(mistral, nullptr);
  EXPECT_EQ(mistral->gguf_arch, "llama");
  EXPECT_TRUE(mistral->permutes_qk);
  EXPECT_FALSE(mistral->rope_neox);
  ASSERT_NE(ArchOfModelType("qwen3"), nullptr);
  EXPECT_TRUE(ArchOfModelType("qwen3")->rope_neox);
  EXPECT_EQ(ArchOfModelType("gpt_neox"), nullptr);
  EXPECT_EQ(ArchOfGguf("qwen2"), ArchOfModelType("qwen2"));
  EXPECT_EQ(KnownModelTypes(),
            "llama, mistral, qwen2, qwen3, gemma2, gemma3_text, gemma3, phi3, mixtral, qwen2_moe or qwen3_moe");
  EXPECT_EQ(ArchOfGguf("llama"), ArchOfModelType("llama"));  // not Mixtral's, which shares the GGUF name
  EXPECT_FALSE(ArchOfModelType("mixtral")->expert_names.empty());

  const BlockLayout& b = BlockOfArch("llama", false);
  EXPECT_EQ(LayerLinears(b, 2), (std::vector<std::string>{"blk.2.attn_q.weight", "blk.2.attn_k.weight", "blk.2.attn_v.weight",
                                                          "blk.2.attn_output.weight", "blk.2.ffn_gate.weight",
                                                          "blk.2.ffn_up.weight", "blk.2.ffn_down.weight"}));
  EXPECT_TRUE(IsLayerLinear(b, "blk.31.ffn_up.weight"));
  EXPECT_FALSE(IsLayerLinear(b, "blk.3.attn_norm.weight"));
  EXPECT_FALSE(IsLayerLinear(b, "blk.3.ffn_up.bias"));
  EXPECT_FALSE(IsLayerLinear(b, "output.weight"));
  // AWQ folds into the two norms and the two linears before o and down.
  ASSERT_EQ(b.scaling.size(), 4u);
  EXPECT_EQ(b.scaling[0].prev, "attn_norm");
  EXPECT_TRUE(b.scaling[0].prev_is_norm);
  EXPECT_EQ(b.scaling[3].prev, "ffn_up");
  EXPECT_EQ(b.scaling[3].linears, std::vector<std::string>{"ffn_down"});
}

}  // namespace
}  // namespace qforge
