// The engine reads a Hugging Face folder and the GGUF converted from it as
// the same model (which checks the Q/K permutation against the RoPE
// orientation), for llama, mistral, qwen2 (biases) and qwen3 (q/k norms).
#include <gtest/gtest.h>

#include <cmath>

#include "../conversion/synthetic_model.h"
#include "engine/llama_engine.h"
#include "model/model.h"
#include "plan/plan.h"
#include "sinks/gguf_sink.h"
#include "test_util.h"

namespace qforge {
namespace {

double MaxLogitDiff(const std::string& a, const std::string& b) {
  auto ma = OpenModel(a), mb = OpenModel(b);
  EXPECT_TRUE(ma.ok() && mb.ok());
  auto ea = LlamaEngine::Create(*ma, 1), eb = LlamaEngine::Create(*mb, 1);
  EXPECT_TRUE(ea.ok() && eb.ok()) << (ea.ok() ? eb.status().message() : ea.status().message());
  const std::vector<int32_t> tokens = {1, 3, 5, 2, 7, 4, 6, 0, 3, 3, 1, 2, 5, 6, 7, 4, 2, 1};
  std::vector<float> la, lb;
  EXPECT_TRUE((*ea)->Forward(tokens, 0, &la).ok());
  EXPECT_TRUE((*eb)->Forward(tokens, 0, &lb).ok());
  EXPECT_EQ(la.size(), lb.size());
  double worst = 0;
  for (size_t i = 0; i < la.size() && i < lb.size(); ++i) worst = std::max(worst, std::fabs(double(la[i]) - lb[i]));
  return worst;
}

class EngineSources : public ::testing::TestWithParam<std::string> {};

TEST_P(EngineSources, HfFolderAndConvertedGgufAgree) {
  test::ScratchDir dir;
  test::SyntheticSpec spec;
  spec.model_type = GetParam();
  spec.biases = GetParam() == "qwen2";
  spec.qk_norm = GetParam() == "qwen3";
  spec.bpe_tokenizer = GetParam() == "qwen2" || GetParam() == "qwen3";
  spec.vocab = spec.bpe_tokenizer ? 8 : 4096;
  ASSERT_EQ(test::WriteSyntheticModel(dir.File("m"), spec), "");
  auto model = OpenModel(dir.File("m"));
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto plan = BuildPlan(*model, *FindPreset("F32"), {});
  ASSERT_TRUE(plan.ok());
  ASSERT_TRUE(WriteGguf(*plan, dir.File("m.gguf"), {}).ok());
  const double diff = MaxLogitDiff(dir.File("m"), dir.File("m.gguf"));
  EXPECT_LT(diff, 1e-5) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Arch, EngineSources, ::testing::Values("llama", "mistral", "qwen2", "qwen3"));

TEST(EngineSources, LlamaAndQwenRopeConventionsAreTheSameFunction) {
  // The converter permutes llama's Q/K rows so that interleaved-pair RoPE on
  // the permuted weights equals rotate-half RoPE on the originals; a qwen2
  // folder holding the same weights (no permutation, rotate-half) must then
  // compute the same logits as the llama one. A wrong permutation or RoPE
  // orientation in either path breaks this.
  test::ScratchDir dir;
  test::SyntheticSpec spec;
  spec.model_type = "llama";
  spec.bpe_tokenizer = false;
  spec.vocab = 4096;
  ASSERT_EQ(test::WriteSyntheticModel(dir.File("m"), spec), "");
  test::SyntheticSpec q = spec;
  q.model_type = "qwen2";
  ASSERT_EQ(test::WriteSyntheticModel(dir.File("q"), q), "");
  EXPECT_LT(MaxLogitDiff(dir.File("m"), dir.File("q")), 1e-5);
}

// ForwardLayer(stop_at) reports the inputs of the linears up to and
// including stop_at, and nothing after it, wherever in the layer it stops.
TEST(EngineLayerPieces, StopAtEndsTheHookAtThatLinear) {
  auto model = OpenModel(test::HouseModelDir());
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto engine = LlamaEngine::Create(*model, 1);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  std::vector<float> x0;
  ASSERT_TRUE((*engine)->Embed({1, 20, 30, 40, 50, 60}, &x0).ok());
  const int64_t T = 6;
  const std::vector<std::string> order = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
  for (size_t stop = 0; stop < order.size(); ++stop) {
    std::vector<std::string> seen;
    (*engine)->SetActivationHook([&](const std::string& name, const float*, int64_t, int64_t) { seen.push_back(name); });
    std::vector<float> x = x0;
    ASSERT_TRUE((*engine)->ForwardLayer(1, x.data(), T, "blk.1." + order[stop] + ".weight").ok());
    (*engine)->SetActivationHook(nullptr);
    ASSERT_EQ(seen.size(), stop + 1) << "stop at " << order[stop] << ": last seen " << seen.back();
    for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], "blk.1." + order[i] + ".weight");
  }
}

}  // namespace
}  // namespace qforge
