// Values a format cannot hold are refused, never written as Inf: a block
// scale that overflows F16 (Q8_0, Q4_0, Q5_0, IQ4_NL at 1e7), an F16 output
// value beyond 65504, an F16 group scale of the GPTQ layout, and NaN/Inf
// source weights on the integer-checkpoint path. Each names the tensor and
// writes nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/model.h"
#include "test_util.h"

namespace qforge {
namespace {
namespace fs = std::filesystem;

constexpr const char* kDown = "model.layers.1.mlp.down_proj.weight";  // blk.1.ffn_down.weight

class NonFinite : public ::testing::Test {
 protected:
  // The house model with element 5 (row 0) of blk.1.ffn_down set to v.
  std::string ModelWith(float v) {
    const std::string src = test::CopyHouseModel(dir_.File("m"));
    test::PokeBf16(src + "/model.safetensors", kDown, 5, v);
    return src;
  }
  void ExpectRefused(const std::vector<std::string>& args, const std::string& out, const std::vector<std::string>& parts) {
    const auto r = test::RunQforge(args);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    for (const auto& p : parts) EXPECT_NE(r.err.find(p), std::string::npos) << "'" << p << "' not in: " << r.err;
    EXPECT_FALSE(fs::exists(out)) << out;
  }
  test::ScratchDir dir_;
};

TEST_F(NonFinite, BlockScaleOverflowIsRefused) {
  const std::string src = ModelWith(1e7f);
  for (const char* type : {"Q8_0", "Q4_0", "Q5_0", "IQ4_NL"}) {
    const std::string out = dir_.File("out.gguf");
    ExpectRefused({"quantize", src, "-f", type, "--pure", "-o", out},
                  out, {"blk.1.ffn_down.weight", "row 0", std::string("overflows ") + type, "1.003e+07"});
  }
  // Q6_K's scale (amax / 32 / 127 at most) still fits: written.
  const auto r = test::RunQforge({"quantize", src, "-f", "Q6_K", "--pure", "-q", "-o", dir_.File("q6k.gguf")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(NonFinite, F16OverflowIsRefusedAndBf16Holds) {
  const std::string src = ModelWith(1e5f);
  const std::string out = dir_.File("f16.gguf");
  ExpectRefused({"quantize", src, "-f", "F16", "-o", out}, out, {"blk.1.ffn_down.weight", "row 0", "beyond F16", "9.984e+04"});
  const auto r = test::RunQforge({"quantize", src, "-f", "BF16", "-q", "-o", dir_.File("bf16.gguf")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(NonFinite, GptqLayoutF16ScaleOverflowIsRefused) {
  const std::string src = ModelWith(1e6f);
  const std::string out = dir_.File("ckpt");
  ExpectRefused({"quantize", src, "--scheme", "W4A16", "--method", "rtn", "--layout", "gptq", "-o", out}, out,
                {kDown, "row 0, group 0", "overflows F16", "--ignore"});
}

TEST_F(NonFinite, IntCheckpointRefusesNanWeights) {
  const std::string src = ModelWith(NAN);
  const std::string out = dir_.File("ckpt");
  ExpectRefused({"quantize", src, "--scheme", "W4A16", "--method", "rtn", "-o", out}, out, {kDown, "row 0", "NaN or Inf"});
}

// A layer no calibration input reaches (its input norm is all zero, so
// attn_q/k/v see only zeros, and attn_output the zero attention result):
// GPTQ rounds those linears to nearest instead of writing all-zero weights,
// and says so, for checkpoints and GGUF alike.
TEST_F(NonFinite, DeadLayerUnderGptqIsRoundedAndReported) {
  const std::string src = test::CopyHouseModel(dir_.File("m"));
  test::PokeBf16(src + "/model.safetensors", "model.layers.1.input_layernorm.weight", 0, 0.0f, 512);
  const std::vector<std::string> calib = {"--calib", test::SharedDir() + "/text/calib.txt", "--calib-samples", "2",
                                          "--calib-seqlen", "64", "--json"};
  std::vector<std::string> ckpt = {"quantize", src, "--scheme", "W4A16", "--method", "gptq", "-o", dir_.File("ckpt")};
  std::vector<std::string> gguf = {"quantize", src, "-f", "Q4_K_M", "--method", "gptq", "-o", dir_.File("o.gguf")};
  for (auto args : {ckpt, gguf}) {
    args.insert(args.end(), calib.begin(), calib.end());
    const auto r = test::RunQforge(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string w = nlohmann::json::parse(r.out)["warnings"].dump();
    for (const char* t : {"blk.1.attn_q.weight", "blk.1.attn_k.weight", "blk.1.attn_v.weight", "blk.1.attn_output.weight"}) {
      EXPECT_NE(w.find(std::string(t) + ": no calibration input reached it (all-zero Hessian); rounded to nearest"),
                std::string::npos) << w;
    }
    EXPECT_EQ(w.find("blk.0."), std::string::npos) << w;
  }
  // The checkpoint's q_proj holds the rounded weights, not zeros.
  auto m = OpenModel(dir_.File("ckpt"));
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto q = ReadTensorF32(*m->Find("blk.1.attn_q.weight"));
  ASSERT_TRUE(q.ok()) << q.status().message();
  const auto zeros = std::count(q->begin(), q->end(), 0.0f);
  EXPECT_LT(zeros, static_cast<long>(q->size() / 4)) << zeros << " of " << q->size();
}

}  // namespace
}  // namespace qforge
