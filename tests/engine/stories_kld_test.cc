// Every quantization of stories260K that llama.cpp measured (metrics.json:
// all 388 chunks of ctx 512 of stories-eval.txt, KLD against F32), made by
// qforge (byte-identical to llama-quantize's) and measured by qforge: PPL
// within 0.2% and mean KLD within 2% of llama.cpp's figures.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "eval/kld.h"
#include "io/imatrix.h"
#include "io/json_file.h"
#include "model/model.h"
#include "plan/plan.h"
#include "sinks/gguf_sink.h"
#include "test_util.h"
#include "model/model_tokenizer.h"

namespace qforge {
namespace {

std::string RefDir() { return test::SharedDir() + "/reference/llama.cpp/stories260K"; }
std::string Source() { return test::SharedDir() + "/models/stories260K/stories260K-f32.gguf"; }

std::vector<std::string> Labels() {
  std::vector<std::string> out;
  auto m = ReadJsonFile(RefDir() + "/metrics.json");
  if (!m.ok()) return out;
  for (auto it = m->begin(); it != m->end(); ++it) {
    if (it.key() != "F32") out.push_back(it.key());
  }
  return out;
}

class StoriesKld : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::ScratchDir();
    auto model = OpenModel(Source());
    ASSERT_TRUE(model.ok());
    auto tok = TokenizerForModel(*model);
    auto engine = LlamaEngine::Create(*model, 2);
    ASSERT_TRUE(tok.ok() && engine.ok());
    PerplexityOptions o;
    o.n_ctx = 512;
    o.bos = (*tok)->bos_id();
    auto base = ComputeKldBase(**engine, (*tok)->Encode(test::ReadFile(test::SharedDir() + "/text/stories-eval.txt"), true),
                               o, nullptr);
    ASSERT_TRUE(base.ok()) << base.status().message();
    ASSERT_TRUE(WriteKldBase(*base, dir_->File("base.kld")).ok());
  }
  static void TearDownTestSuite() { delete dir_; }
  static test::ScratchDir* dir_;
};
test::ScratchDir* StoriesKld::dir_ = nullptr;

TEST_P(StoriesKld, AgainstLlamaCpp) {
  const std::string out = dir_->File("q.gguf");
  ASSERT_TRUE(test::QuantizeLikeReference("stories260K", GetParam(), out).ok());
  auto base = ReadKldBase(dir_->File("base.kld"));
  auto model = OpenModel(out);
  ASSERT_TRUE(base.ok() && model.ok());
  auto engine = LlamaEngine::Create(*model, 2);
  ASSERT_TRUE(engine.ok());
  auto s = EvaluateKld(**engine, *base, 1);
  ASSERT_TRUE(s.ok()) << s.status().message();
  auto metrics = ReadJsonFile(RefDir() + "/metrics.json");
  const auto& m = (*metrics)[GetParam()];
  std::printf("  %-24s ppl %.4f (%.4f)  kld %.6f (%.6f)  top1 %.4f (%.4f)\n", GetParam().c_str(), s->ppl,
              m["ppl"].get<double>(), s->kld_mean, m["kld_mean"].get<double>(), s->top1, m["top1"].get<double>());
  EXPECT_LE(std::fabs(s->ppl - m["ppl"].get<double>()) / m["ppl"].get<double>(), 0.002);
  // metrics.json prints KLD with 6 decimals: allow half a unit of that too.
  EXPECT_LE(std::fabs(s->kld_mean - m["kld_mean"].get<double>()), std::max(0.02 * m["kld_mean"].get<double>(), 5e-7));
}

INSTANTIATE_TEST_SUITE_P(Stories, StoriesKld, ::testing::ValuesIn(Labels()), [](const auto& info) {
  std::string s = info.param;
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return s;
});

}  // namespace
}  // namespace qforge
