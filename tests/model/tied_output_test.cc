// config.json's tie_word_embeddings against the tensors present: a model
// that says "untied" but has no lm_head is used tied, as llama.cpp does,
// with a warning, and a checkpoint written from it says tied (else no
// runtime could load it); "tied" with a different lm_head keeps lm_head
// (llama.cpp's converter does) and warns; an lm_head equal to the
// embedding is quietly accepted.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "conversion/synthetic_model.h"
#include "test_util.h"

namespace qforge {
namespace {

struct Outputs {
  test::CommandResult gguf, ckpt;
  bool gguf_has_output = false;
  nlohmann::json ckpt_config;
};

Outputs QuantizeBoth(const test::SyntheticSpec& spec) {
  test::ScratchDir dir;
  Outputs r;
  EXPECT_EQ(test::WriteSyntheticModel(dir.File("m"), spec), "");
  r.gguf = test::RunQforge({"quantize", dir.File("m"), "-f", "Q8_0", "-q", "-o", dir.File("o.gguf")});
  if (auto g = GgufFile::Open(dir.File("o.gguf")); g.ok()) {
    for (const auto& t : (*g)->tensors()) r.gguf_has_output |= t.name == "output.weight";
  }
  r.ckpt = test::RunQforge({"quantize", dir.File("m"), "--scheme", "W4A16", "--method", "rtn", "--group-size", "32", "-q", "-o",
                            dir.File("ckpt")});
  r.ckpt_config = nlohmann::json::parse(test::ReadFile(dir.File("ckpt/config.json")), nullptr, false);
  return r;
}

TEST(TiedOutput, UntiedConfigWithoutLmHeadIsUsedTiedAndSaysSo) {
  test::SyntheticSpec spec;
  spec.tied = true;       // no lm_head.weight
  spec.config_tie = 0;    // but the config says untied
  const Outputs r = QuantizeBoth(spec);
  ASSERT_EQ(r.gguf.exit_code, 0) << r.gguf.err;
  EXPECT_NE(r.gguf.err.find("tie_word_embeddings is false but there is no lm_head.weight"), std::string::npos) << r.gguf.err;
  EXPECT_FALSE(r.gguf_has_output);
  ASSERT_EQ(r.ckpt.exit_code, 0) << r.ckpt.err;
  EXPECT_NE(r.ckpt.err.find("tie_word_embeddings is false"), std::string::npos) << r.ckpt.err;
  EXPECT_EQ(r.ckpt_config.value("tie_word_embeddings", false), true);
}

TEST(TiedOutput, TiedConfigWithADifferentLmHeadKeepsItAndWarns) {
  test::SyntheticSpec spec;
  spec.config_tie = 1;  // lm_head.weight present, random
  const Outputs r = QuantizeBoth(spec);
  ASSERT_EQ(r.gguf.exit_code, 0) << r.gguf.err;
  EXPECT_NE(r.gguf.err.find("lm_head.weight differs from model.embed_tokens.weight"), std::string::npos) << r.gguf.err;
  EXPECT_TRUE(r.gguf_has_output);
  ASSERT_EQ(r.ckpt.exit_code, 0) << r.ckpt.err;
  EXPECT_NE(r.ckpt.err.find("differs"), std::string::npos) << r.ckpt.err;
}

TEST(TiedOutput, ConsistentModelsGiveNoWarning) {
  for (const bool equal_head : {false, true}) {
    test::SyntheticSpec spec;
    spec.config_tie = equal_head ? 1 : -1;  // tied with a copy of the embedding, or plainly untied
    spec.lm_head_is_embedding = equal_head;
    const Outputs r = QuantizeBoth(spec);
    ASSERT_EQ(r.gguf.exit_code, 0) << r.gguf.err;
    EXPECT_EQ(r.gguf.err.find("warning"), std::string::npos) << r.gguf.err;
    EXPECT_EQ(r.ckpt.err.find("warning"), std::string::npos) << r.ckpt.err;
    EXPECT_EQ(r.ckpt_config.value("tie_word_embeddings", true), equal_head);
  }
}

}  // namespace
}  // namespace qforge
