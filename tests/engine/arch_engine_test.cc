// The engine against llama.cpp's forward pass on the tiny architecture
// references (../shared/reference/llama.cpp/arch/NAME): qforge's F32
// conversion of hf/ scored against the KLD base llama-perplexity saved from
// its own conversion (ctx 128, 32 chunks of eval.txt), the HF folder giving
// the GGUF's logits, and greedy continuations equal to llama-completion's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "conversion/arch_references.h"
#include "conversion/manifest_check.h"
#include "engine/generate.h"
#include "eval/imatrix_collector.h"
#include "eval/kld.h"
#include "io/imatrix.h"
#include "io/json_file.h"
#include "model/model.h"
#include "model/model_tokenizer.h"
#include "test_util.h"

namespace qforge {
namespace {

std::string RefDir(const std::string& arch) { return test::SharedDir() + "/reference/llama.cpp/arch/" + arch; }

class ArchEngine : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    gguf_ = dir_.File("conv-F32.gguf");
    Status s = test::ConvertWithPreset(test::ReferenceSource("arch/" + GetParam()), "F32", gguf_);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  test::ScratchDir dir_;
  std::string gguf_;
};

// Mean KLD <= 1e-4 and top-1 agreement >= 99% against llama.cpp's own
// log-probabilities; the references were built so that one wrong detail
// (every norm weight +0.5, rope base x10) scores far above this.
TEST_P(ArchEngine, AgreesWithLlamaPerplexityBase) {
  const std::string kld = dir_.File("base-f32.kld");
  const std::string cmd = "xz -dc '" + RefDir(GetParam()) + "/base-f32.kld.xz' > '" + kld + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto base = ReadKldBase(kld);
  ASSERT_TRUE(base.ok()) << base.status().message();
  auto model = OpenModel(gguf_);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto tok = TokenizerForModel(*model);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  auto engine = LlamaEngine::Create(*model, 2);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto s = EvaluateKld(**engine, *base, (*tok)->bos_id());
  ASSERT_TRUE(s.ok()) << s.status().message();
  std::printf("  %-10s kld_mean %.3g  kld_max %.3g  top1 %.5f  (n %lld)\n", GetParam().c_str(), s->kld_mean,
              s->kld_max, s->top1, static_cast<long long>(s->n));
  EXPECT_EQ(s->n, static_cast<int64_t>(base->n_chunk) * static_cast<int64_t>(base->PredictionsPerChunk()));
  EXPECT_LE(s->kld_mean, 1e-4);
  EXPECT_GE(s->top1, 0.99);
}

// The HF folder read directly (BF16 widened to F32) and its F32 GGUF are the
// same model: the same logits at every position.
TEST_P(ArchEngine, HfFolderGivesTheGgufLogits) {
  auto hf = OpenModel(test::ReferenceSource("arch/" + GetParam()));
  auto gg = OpenModel(gguf_);
  ASSERT_TRUE(hf.ok() && gg.ok());
  auto e_hf = LlamaEngine::Create(*hf, 2);
  auto e_gg = LlamaEngine::Create(*gg, 2);
  ASSERT_TRUE(e_hf.ok()) << e_hf.status().message();
  ASSERT_TRUE(e_gg.ok()) << e_gg.status().message();
  auto tok = TokenizerForModel(*gg);
  ASSERT_TRUE(tok.ok());
  const std::vector<int32_t> ids = (*tok)->Encode(test::ReadFile(test::SharedDir() + "/text/eval.txt").substr(0, 600), true);
  ASSERT_GE(ids.size(), 64u);
  std::vector<float> a, b;
  ASSERT_TRUE((*e_hf)->Forward(ids, 0, &a).ok());
  ASSERT_TRUE((*e_gg)->Forward(ids, 0, &b).ok());
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(a.size(), ids.size() * static_cast<size_t>((*e_gg)->hparams().n_vocab));
  double max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) max_diff = std::max(max_diff, double(std::fabs(a[i] - b[i])));
  EXPECT_EQ(max_diff, 0.0);
}

// llama-completion -p "In the beginning" -n 32 --temp 0: the prompt's ids and
// the 32 greedy ids, with the context llama.cpp had (both recorded runs).
TEST_P(ArchEngine, GreedyContinuationMatchesLlamaCompletion) {
  auto ref = ReadJsonFile(RefDir(GetParam()) + "/completion.json");
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  auto model = OpenModel(gguf_);
  ASSERT_TRUE(model.ok());
  auto tok = TokenizerForModel(*model);
  auto engine = LlamaEngine::Create(*model, 2);
  ASSERT_TRUE(tok.ok() && engine.ok());
  for (const char* run : {"default_ctx", "ctx128"}) {
    const auto& r = (*ref)[run];
    EXPECT_EQ((*tok)->Encode("In the beginning", true), r["prompt_ids"].get<std::vector<int32_t>>()) << run;
    (*engine)->SetContextLength(r["n_ctx"].get<int64_t>());  // LongRoPE (phi3) picks its table by it
    GenerateOptions o;
    o.n_predict = 32;
    auto g = Generate(**engine, **tok, "In the beginning", o);
    ASSERT_TRUE(g.ok()) << g.status().message();
    EXPECT_EQ(g->tokens, r["generated_ids"].get<std::vector<int32_t>>()) << run;
  }
}

// llama-imatrix -c 128 -b 128 over calib.txt: the same entries and chunk
// count; see below for the bounds.
TEST_P(ArchEngine, ImatrixAgreesWithLlamaImatrix) {
  auto model = OpenModel(gguf_);
  ASSERT_TRUE(model.ok());
  auto tok = TokenizerForModel(*model);
  auto engine = LlamaEngine::Create(*model, 2);
  ASSERT_TRUE(tok.ok() && engine.ok());
  ImatrixCollectOptions o;
  o.n_ctx = 128;
  o.bos = (*tok)->bos_id();
  o.dataset = "calib.txt";
  auto sums = CollectImatrix(**engine, (*tok)->Encode(test::ReadFile(test::SharedDir() + "/text/calib.txt"), true), o);
  ASSERT_TRUE(sums.ok()) << sums.status().message();
  ASSERT_TRUE(WriteImatrixGguf(*sums, dir_.File("ours.imatrix.gguf")).ok());
  auto ours = ReadImatrix(dir_.File("ours.imatrix.gguf"));
  ASSERT_TRUE(ours.ok()) << ours.status().message();
  auto ref = ReadImatrix(RefDir(GetParam()) + "/" + GetParam() + ".imatrix.gguf");
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  EXPECT_EQ(ours->chunk_count, ref->chunk_count);
  ASSERT_EQ(ours->entries.size(), ref->entries.size());
  // Dense entries: the same rows, every column's mean within 1e-3.
  // Expert entries: llama.cpp's routing is reproduced but for near-ties
  // that the last bits of the router logits decide (at most 8 of 142848 token-slot
  // assignments on these models), so the per-expert counts may differ by a
  // few rows and each expert's means by those rows' share.
  double worst = 0, worst_expert = 0;
  int64_t moved = 0, assigned = 0;
  std::string worst_name;
  for (const auto& [name, e] : ref->entries) {
    auto it = ours->entries.find(name);
    ASSERT_NE(it, ours->entries.end()) << name;
    const ImatrixEntry& o = it->second;
    ASSERT_EQ(o.values.size(), e.values.size()) << name;
    ASSERT_EQ(o.counts.size(), e.counts.size()) << name;
    if (e.n_mat == 1) {
      EXPECT_EQ(o.counts, e.counts) << name;
      for (size_t j = 0; j < e.values.size(); ++j) {
        const double rel = std::fabs(o.values[j] - e.values[j]) / std::max(1e-30, std::fabs(double(e.values[j])));
        if (rel > worst) {
          worst = rel;
          worst_name = name;
        }
      }
      continue;
    }
    int64_t total_o = 0, total_e = 0;
    const size_t cols = e.values.size() / static_cast<size_t>(e.n_mat);
    for (size_t k = 0; k < e.counts.size(); ++k) {
      total_o += o.counts[k];
      total_e += e.counts[k];
      // Routing is counted once per layer (gate, up and down share it).
      if (name.find("ffn_up_exps") != std::string::npos) moved += std::llabs(o.counts[k] - e.counts[k]);
      double diff = 0, norm = 0;  // L1 over the expert's columns
      for (size_t j = k * cols; j < (k + 1) * cols; ++j) {
        diff += std::fabs(o.values[j] - e.values[j]);
        norm += std::fabs(e.values[j]);
      }
      worst_expert = std::max(worst_expert, diff / std::max(1e-30, norm));
    }
    EXPECT_EQ(total_o, total_e) << name;  // every token reaches K experts
    if (name.find("ffn_up_exps") != std::string::npos) assigned += total_e;
  }
  std::printf("  %-10s imatrix: largest per-column relative difference %.3g (%s); experts: %lld of %lld assignments "
              "moved, largest per-expert L1 relative difference %.3g\n",
              GetParam().c_str(), worst, worst_name.c_str(), static_cast<long long>(moved / 2),
              static_cast<long long>(assigned), worst_expert);
  EXPECT_LE(worst, 1e-3);
  EXPECT_LE(static_cast<double>(moved), 1e-3 * static_cast<double>(std::max<int64_t>(1, assigned)));
  EXPECT_LE(worst_expert, 2e-3);
}

INSTANTIATE_TEST_SUITE_P(Arch, ArchEngine, ::testing::ValuesIn(test::ArchReferences()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace qforge
