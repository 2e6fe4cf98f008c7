// KL divergence of quantized files against the F32 model, against the
// figures llama-perplexity reported (metrics.json).
#include "eval/kld.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "io/json_file.h"
#include "io/model.h"
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

}  // namespace
}  // namespace qforge
