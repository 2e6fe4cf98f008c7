// Tensors whose shapes disagree with the model's own hyper-parameters are
// refused when the model is opened, naming the tensor, the shape found and
// the one expected: no crash (a zero-length norm), no NaN (a half-size norm),
// no file written (a reshaped attn_k, an embedding short of the vocabulary).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "test_util.h"

namespace qforge {
namespace {
namespace fs = std::filesystem;

// src with tensor `name` given shape `ne` (F32 zeros), everything else as is.
void RewriteWithShape(const std::string& src, const std::string& dst, const std::string& name, std::vector<int64_t> ne) {
  auto g = GgufFile::Open(src);
  ASSERT_TRUE(g.ok()) << g.status().message();
  GgufWriter w;
  w.metadata() = (*g)->metadata();
  for (const auto& ti : (*g)->tensors()) w.AddTensor(ti.name, ti.name == name ? ne : ti.ne, ti.type);
  ASSERT_TRUE(w.Begin(dst).ok());
  for (const auto& ti : (*g)->tensors()) {
    if (ti.name == name) {
      int64_t n = 1;
      for (int64_t d : ne) n *= d;
      std::vector<float> zeros(static_cast<size_t>(n), 0.0f);
      ASSERT_TRUE(w.WriteTensorData(zeros.data(), zeros.size() * 4).ok());
    } else {
      ASSERT_TRUE(w.WriteTensorData((*g)->TensorData(ti), ti.nbytes).ok());
    }
  }
  ASSERT_TRUE(w.Finish().ok());
}

class ShapeCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto r = test::RunQforge({"quantize", test::HouseModelDir(), "-f", "F32", "-q", "-o", dir_.File("f32.gguf")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // Runs perplexity and quantize on the rewritten file; both must refuse it
  // with one line holding every part, and write nothing.
  void ExpectRefused(const std::string& name, std::vector<int64_t> ne, const std::vector<std::string>& parts) {
    const std::string bad = dir_.File("bad.gguf");
    RewriteWithShape(dir_.File("f32.gguf"), bad, name, ne);
    for (const auto& args : {std::vector<std::string>{"perplexity", bad, "--text", test::SharedDir() + "/text/eval.txt", "--ctx", "64",
                                                      "--chunks", "1"},
                             std::vector<std::string>{"quantize", bad, "-f", "Q8_0", "-o", dir_.File("out.gguf")}}) {
      const auto r = test::RunQforge(args);
      EXPECT_EQ(r.exit_code, 1) << args[0] << ": " << r.err;  // an error, not a signal
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
      for (const auto& p : parts) EXPECT_NE(r.err.find(p), std::string::npos) << "'" << p << "' not in: " << r.err;
      EXPECT_FALSE(fs::exists(dir_.File("out.gguf")));
    }
  }
  test::ScratchDir dir_;
};

TEST_F(ShapeCheck, ZeroLengthNorm) { ExpectRefused("blk.0.attn_norm.weight", {0}, {"blk.0.attn_norm.weight", "shape [0]", "expected [512]"}); }

TEST_F(ShapeCheck, HalfSizeNorm) { ExpectRefused("blk.2.ffn_norm.weight", {256}, {"blk.2.ffn_norm.weight", "shape [256]", "expected [512]"}); }

TEST_F(ShapeCheck, ReshapedAttnK) {
  ExpectRefused("blk.1.attn_k.weight", {512, 128}, {"blk.1.attn_k.weight", "shape [512, 128]", "expected [512, 256]", "head_count_kv"});
}

TEST_F(ShapeCheck, EmbeddingShortOfTheVocabulary) {
  ExpectRefused("token_embd.weight", {512, 4000}, {"token_embd.weight", "shape [512, 4000]", "expected [512, 4096]", "4096 tokens"});
}

// A Hugging Face folder whose config.json disagrees with its tensors.
TEST(ShapeCheckHf, ConfigThatDisagreesWithTheTensors) {
  test::ScratchDir dir;
  const std::string src = dir.File("m");
  fs::create_directories(src);
  for (const auto& e : fs::directory_iterator(test::HouseModelDir())) fs::copy_file(e.path(), src + "/" + e.path().filename().string());
  nlohmann::json cfg;
  {
    std::ifstream in(src + "/config.json");
    in >> cfg;
  }
  cfg["intermediate_size"] = 2048;
  {
    std::ofstream out(src + "/config.json");
    out << cfg.dump(2);
  }
  const auto r = test::RunQforge({"quantize", src, "-f", "Q8_0", "-o", dir.File("o.gguf")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("model.layers.0.mlp"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("feed_forward_length 2048"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.File("o.gguf")));
}

}  // namespace
}  // namespace qforge
