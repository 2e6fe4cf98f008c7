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

namespace qforge {
namespace {

// Mixture of experts (the Qwen2-MoE reference): a router, stacked experts or
// a shared expert of the wrong shape, and expert_count disagreeing with the
// stacks, are refused when the GGUF is opened, before the engine or the
// imatrix index an expert.
TEST(ShapeCheckMoe, RouterExpertsAndSharedExpert) {
  test::ScratchDir dir;
  const auto r = test::RunQforge({"quantize", test::SharedDir() + "/reference/llama.cpp/arch/qwen2moe/hf", "-f", "F32",
                                  "-q", "-o", dir.File("f32.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  struct Bad {
    const char* name;
    std::vector<int64_t> ne;
    const char* expect;
  };
  const Bad cases[] = {
      {"blk.0.ffn_gate_inp.weight", {4, 256}, "expected [256, 4]"},
      {"blk.1.ffn_up_exps.weight", {256, 128, 3}, "expected [256, 128, 4]"},
      {"blk.0.ffn_down_exps.weight", {256, 128, 4}, "expected [128, 256, 4]"},
      {"blk.1.ffn_down_shexp.weight", {128, 256}, "expected [256, 256]"},
  };
  for (const Bad& c : cases) {
    SCOPED_TRACE(c.name);
    RewriteWithShape(dir.File("f32.gguf"), dir.File("bad.gguf"), c.name, c.ne);
    const auto q = test::RunQforge({"perplexity", dir.File("bad.gguf"), "--text", test::SharedDir() + "/text/eval.txt",
                                    "--ctx", "64", "--chunks", "1"});
    EXPECT_EQ(q.exit_code, 1) << q.err;
    EXPECT_NE(q.err.find(c.name), std::string::npos) << q.err;
    EXPECT_NE(q.err.find(c.expect), std::string::npos) << q.err;
  }
  // expert_count 3 where every stack holds 4.
  auto g = GgufFile::Open(dir.File("f32.gguf"));
  ASSERT_TRUE(g.ok());
  GgufWriter w;
  for (const auto& kv : (*g)->metadata().items()) {
    w.metadata().Append(kv.key, kv.key == "qwen2moe.expert_count" ? GgufValue::U32(3) : kv.value);
  }
  for (const auto& ti : (*g)->tensors()) w.AddTensor(ti.name, ti.ne, ti.type);
  ASSERT_TRUE(w.Begin(dir.File("count.gguf")).ok());
  for (const auto& ti : (*g)->tensors()) ASSERT_TRUE(w.WriteTensorData((*g)->TensorData(ti), ti.nbytes).ok());
  ASSERT_TRUE(w.Finish().ok());
  const auto q = test::RunQforge({"imatrix", dir.File("count.gguf"), "--text", test::SharedDir() + "/text/eval.txt", "--ctx",
                                  "64", "--chunks", "1", "-o", dir.File("i.gguf")});
  EXPECT_EQ(q.exit_code, 1) << q.err;
  EXPECT_NE(q.err.find("expert_count 3"), std::string::npos) << q.err;  // the stacks no longer fit expert_count
  EXPECT_FALSE(fs::exists(dir.File("i.gguf")));
}

}  // namespace
}  // namespace qforge
