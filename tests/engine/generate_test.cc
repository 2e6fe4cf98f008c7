// Greedy generation of stories260K from "Once upon a time" against the
// continuation llama.cpp printed (reference README), on F32 and on
// quantizations llama.cpp also reproduced it with; and the KV cache giving
// the same logits as a full pass.
#include "engine/generate.h"

#include "tokenizer/spm_tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "model/model.h"
#include "plan/plan.h"
#include "sinks/gguf_sink.h"
#include "test_util.h"

namespace qforge {
namespace {

const char* kPrompt = "Once upon a time";
const char* kContinuation =
    ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. "
    "She wanted to play with it, but it was too high.\nLily's mom said";

std::string Stories() { return test::SharedDir() + "/models/stories260K/stories260K-f32.gguf"; }

std::string GreedyFrom(const std::string& path) {
  auto model = OpenModel(path);
  EXPECT_TRUE(model.ok());
  if (!model.ok()) return "";
  auto tok = SpmTokenizer::FromMetadata(model->metadata, path);
  auto engine = LlamaEngine::Create(*model, 2);
  EXPECT_TRUE(tok.ok() && engine.ok());
  GenerateOptions o;
  o.n_predict = 64;
  auto r = Generate(**engine, *tok, kPrompt, o);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r->tokens.size(), 64u);
  return r->text;
}

TEST(Generate, StoriesF32MatchesLlamaCpp) { EXPECT_EQ(GreedyFrom(Stories()), kContinuation); }

class GenerateQuantized : public ::testing::TestWithParam<std::string> {};

// Greedy text can flip at a near-tie when the BLAS kernels of another CPU
// sum in another order, so quantized models are checked step by step with
// llama.cpp's continuation forced: its token must be our top choice at
// every step, or within a hair (0.05 in logit) of it; this machine (AMD EPYC,
// OpenBLAS Zen kernels) puts Q4_K_M 0.013 short at one step.
TEST_P(GenerateQuantized, SameContinuation) {
  test::ScratchDir dir;
  auto model = OpenModel(Stories());
  ASSERT_TRUE(model.ok());
  auto plan = BuildPlan(*model, *FindPreset(GetParam()), {});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ASSERT_TRUE(WriteGguf(*plan, dir.File("q.gguf"), {}).ok());
  auto q = OpenModel(dir.File("q.gguf"));
  ASSERT_TRUE(q.ok());
  auto tok = SpmTokenizer::FromMetadata(q->metadata, dir.File("q.gguf"));
  auto engine = LlamaEngine::Create(*q, 2);
  ASSERT_TRUE(tok.ok() && engine.ok());
  const std::vector<int32_t> prompt = tok->Encode(kPrompt, true);
  std::vector<int32_t> all = tok->Encode(std::string(kPrompt) + kContinuation, true);
  ASSERT_GT(all.size(), prompt.size() + 40);
  ASSERT_TRUE(std::equal(prompt.begin(), prompt.end(), all.begin()));
  std::vector<float> logits;
  const int64_t first = static_cast<int64_t>(prompt.size()) - 1;
  ASSERT_TRUE((*engine)->Forward(all, first, &logits).ok());
  const int64_t V = (*engine)->hparams().n_vocab;
  int exact = 0, near = 0;
  for (size_t i = prompt.size(); i < all.size(); ++i) {
    const float* row = logits.data() + (static_cast<int64_t>(i) - 1 - first) * V;
    const float best = *std::max_element(row, row + V);
    const float chosen = row[all[i]];
    EXPECT_LE(best - chosen, 0.05f) << "step " << i - prompt.size() << ": llama.cpp's token is not our choice";
    (chosen == best ? exact : near) += 1;
  }
  EXPECT_LE(near, 2) << "more than two near-ties";
  if (near == 0) {
    EXPECT_EQ(GreedyFrom(dir.File("q.gguf")), kContinuation);
  }
}

INSTANTIATE_TEST_SUITE_P(Stories, GenerateQuantized, ::testing::Values("F16", "BF16", "Q6_K", "Q4_K_M"));

TEST(Generate, KvCacheGivesTheLogitsOfAFullPass) {
  auto model = OpenModel(test::HouseModelDir());
  ASSERT_TRUE(model.ok());
  auto engine = LlamaEngine::Create(*model, 2);
  ASSERT_TRUE(engine.ok());
  const std::vector<int32_t> tokens = {1, 705, 264, 3398, 1000, 42, 7, 999};
  std::vector<float> full;
  ASSERT_TRUE((*engine)->Forward(tokens, 0, &full).ok());
  const int64_t V = (*engine)->hparams().n_vocab;
  KvCache cache;
  std::vector<float> step;
  // Prompt of three, then one token at a time.
  ASSERT_TRUE((*engine)->Decode({tokens[0], tokens[1], tokens[2]}, &cache, &step).ok());
  double worst = 0;
  for (size_t i = 2; i < tokens.size(); ++i) {
    if (i > 2) {
      ASSERT_TRUE((*engine)->Decode({tokens[i]}, &cache, &step).ok());
    }
    for (int64_t j = 0; j < V; ++j) {
      worst = std::max(worst, static_cast<double>(std::fabs(step[static_cast<size_t>(j)] - full[i * V + j])));
    }
  }
  EXPECT_EQ(cache.n_past, static_cast<int64_t>(tokens.size()));
  EXPECT_LT(worst, 2e-3) << "largest logit difference";
}

}  // namespace
}  // namespace qforge
