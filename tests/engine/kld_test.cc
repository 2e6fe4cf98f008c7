// KL divergence of quantized files against the F32 model, against the
// figures llama-perplexity reported (metrics.json).
#include "eval/kld.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "io/json_file.h"
#include "io/imatrix.h"
#include "model/model.h"
#include "plan/plan.h"
#include "sinks/gguf_sink.h"
#include "test_util.h"
#include "tokenizer/spm_tokenizer.h"

namespace qforge {
namespace {

std::string RefDir() { return test::SharedDir() + "/reference/llama.cpp/house-14m"; }

class HouseKld : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::ScratchDir();
    auto model = OpenModel(test::HouseModelDir());
    ASSERT_TRUE(model.ok());
    auto tok = SpmTokenizer::FromMetadata(model->metadata, "house");
    auto engine = LlamaEngine::Create(*model, 2);
    ASSERT_TRUE(tok.ok() && engine.ok());
    PerplexityOptions o;
    o.n_ctx = 256;
    o.max_chunks = 64;
    o.bos = tok->bos_id();
    PerplexityResult ppl;
    auto base = ComputeKldBase(**engine, tok->Encode(test::ReadFile(test::SharedDir() + "/text/eval.txt"), true), o, &ppl);
    ASSERT_TRUE(base.ok()) << base.status().message();
    ASSERT_TRUE(WriteKldBase(*base, dir_->File("base.kld")).ok());
    base_ppl_ = ppl.ppl;
  }
  static void TearDownTestSuite() { delete dir_; }
  static test::ScratchDir* dir_;
  static double base_ppl_;
};
test::ScratchDir* HouseKld::dir_ = nullptr;
double HouseKld::base_ppl_ = 0;

class HouseKldFile : public HouseKld, public ::testing::WithParamInterface<std::string> {};

TEST_P(HouseKldFile, AgainstLlamaCpp) {
  const std::string label = GetParam();
  auto metrics = ReadJsonFile(RefDir() + "/metrics.json");
  ASSERT_TRUE(metrics.ok());
  const auto& m = (*metrics)[label];
  auto base = ReadKldBase(dir_->File("base.kld"));
  ASSERT_TRUE(base.ok()) << base.status().message();
  auto model = OpenModel(RefDir() + "/house-14m-" + label + ".gguf");
  ASSERT_TRUE(model.ok());
  auto engine = LlamaEngine::Create(*model, 2);
  ASSERT_TRUE(engine.ok());
  auto s = EvaluateKld(**engine, *base, 1);
  ASSERT_TRUE(s.ok()) << s.status().message();
  std::printf("  %-8s ppl %.4f (%.4f)  kld %.6f (%.6f)  median %.6f (%.6f)  p99 %.6f (%.6f)  max %.5f (%.5f)  "
              "top1 %.4f (%.4f)  rms_dp %.5f (%.5f)\n",
              label.c_str(), s->ppl, m["ppl"].get<double>(), s->kld_mean, m["kld_mean"].get<double>(), s->kld_median,
              m["kld_median"].get<double>(), s->kld_p99, m["kld_p99"].get<double>(), s->kld_max,
              m["kld_max"].get<double>(), s->top1, m["top1"].get<double>(), s->rms_dp, m["rms_dp"].get<double>());
  EXPECT_LE(std::fabs(s->ppl - m["ppl"].get<double>()) / m["ppl"].get<double>(), 0.002);
  EXPECT_LE(std::fabs(s->kld_mean - m["kld_mean"].get<double>()) / m["kld_mean"].get<double>(), 0.02);
}

INSTANTIATE_TEST_SUITE_P(House, HouseKldFile, ::testing::Values("Q8_0", "Q4_K_M", "Q2_K"));

class HouseKldQforgeFile : public HouseKld, public ::testing::WithParamInterface<std::string> {};

// Files qforge writes (byte-identical to llama-quantize's) against the
// figures llama.cpp measured on its copies.
TEST_P(HouseKldQforgeFile, AgainstLlamaCpp) {
  const std::string label = GetParam();
  const bool with_imatrix = label.find("-imatrix") != std::string::npos;
  const std::string preset = with_imatrix ? label.substr(0, label.find("-imatrix")) : label;
  auto metrics = ReadJsonFile(RefDir() + "/metrics.json");
  ASSERT_TRUE(metrics.ok());
  const auto& m = (*metrics)[label];
  auto src = OpenModel(test::HouseModelDir());
  ASSERT_TRUE(src.ok());
  Imatrix im;
  PlanOptions po;
  if (with_imatrix) {
    auto r = ReadImatrix(RefDir() + "/house-14m.imatrix.gguf");
    ASSERT_TRUE(r.ok());
    im = std::move(*r);
    po.imatrix = &im;
  }
  auto plan = BuildPlan(*src, *FindPreset(preset), po);
  ASSERT_TRUE(plan.ok());
  SinkOptions so;
  so.threads = 2;
  const std::string out = dir_->File(label + ".gguf");
  ASSERT_TRUE(WriteGguf(*plan, out, so).ok());
  auto base = ReadKldBase(dir_->File("base.kld"));
  auto model = OpenModel(out);
  ASSERT_TRUE(base.ok() && model.ok());
  auto engine = LlamaEngine::Create(*model, 2);
  ASSERT_TRUE(engine.ok());
  auto s = EvaluateKld(**engine, *base, 1);
  ASSERT_TRUE(s.ok());
  std::printf("  %-15s kld %.6f (llama.cpp %.6f)  top1 %.4f (%.4f)\n", label.c_str(), s->kld_mean,
              m["kld_mean"].get<double>(), s->top1, m["top1"].get<double>());
  EXPECT_LE(std::fabs(s->kld_mean - m["kld_mean"].get<double>()) / m["kld_mean"].get<double>(), 0.02);
  EXPECT_LE(std::fabs(s->ppl - m["ppl"].get<double>()) / m["ppl"].get<double>(), 0.002);
}

INSTANTIATE_TEST_SUITE_P(House, HouseKldQforgeFile,
                         ::testing::Values("IQ4_XS", "Q3_K_M", "Q4_0", "Q6_K", "Q4_K_M-imatrix"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

TEST_F(HouseKld, BaseFileChecksSizeVocabularyAndTokens) {
  auto base = ReadKldBase(dir_->File("base.kld"));
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(base->n_ctx, 256);
  EXPECT_EQ(base->n_vocab, 4096);
  EXPECT_EQ(base->n_chunk, 64);
  const std::string bytes = test::ReadFile(dir_->File("base.kld"));
  test::WriteFile(dir_->File("short.kld"), bytes.substr(0, bytes.size() - 2));
  auto short_file = ReadKldBase(dir_->File("short.kld"));
  ASSERT_FALSE(short_file.ok());
  EXPECT_NE(short_file.status().message().find("size"), std::string::npos);
  std::string bad = bytes;
  const int32_t huge = 99999;
  std::memcpy(&bad[20], &huge, 4);  // first token id
  test::WriteFile(dir_->File("bad.kld"), bad);
  auto bad_tok = ReadKldBase(dir_->File("bad.kld"));
  ASSERT_FALSE(bad_tok.ok());
  EXPECT_NE(bad_tok.status().message().find("outside the vocabulary"), std::string::npos);
  // A model with another vocabulary cannot be compared with this base.
  auto stories = OpenModel(test::SharedDir() + "/models/stories260K/stories260K-f32.gguf");
  ASSERT_TRUE(stories.ok());
  auto engine = LlamaEngine::Create(*stories, 1);
  ASSERT_TRUE(engine.ok());
  auto s = EvaluateKld(**engine, *base, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("vocabulary"), std::string::npos);
}

}  // namespace
}  // namespace qforge
