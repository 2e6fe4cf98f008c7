// qforge quantize -f Q4_K_M --method gptq: a stock GGUF whose tensor types
// are exactly the plain Q4_K_M plan's, whose GPTQ'd linears differ from
// plain Q4_K_M and whose other tensors do not, that qforge's engine loads,
// with its mean KL divergence measured beside plain Q4_K_M's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "base/sha256.h"
#include "io/gguf.h"
#include "test_util.h"

namespace qforge {
namespace {

std::map<std::string, std::pair<std::string, std::string>> TypesAndHashes(const std::string& path) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  auto g = GgufFile::Open(path);
  EXPECT_TRUE(g.ok()) << g.status().message();
  if (!g.ok()) return out;
  for (const auto& ti : (*g)->tensors()) {
    out[ti.name] = {GgmlTypeName(ti.type), Sha256::HexOf((*g)->TensorData(ti), ti.nbytes)};
  }
  return out;
}

TEST(GgufGptq, StockQ4KMFileWithThePlansTypesAndLowerKld) {
  test::ScratchDir dir;
  const std::string calib = test::SharedDir() + "/text/calib.txt", eval = test::SharedDir() + "/text/eval.txt";
  const auto plain = test::RunQforge({"quantize", test::HouseModelDir(), "-f", "Q4_K_M", "-q", "-o", dir.File("plain.gguf")});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const auto gptq = test::RunQforge({"quantize", test::HouseModelDir(), "-f", "Q4_K_M", "--method", "gptq", "--calib", calib,
                                     "--calib-samples", "16", "--calib-seqlen", "256", "--json", "-o", dir.File("gptq.gguf")});
  ASSERT_EQ(gptq.exit_code, 0) << gptq.err;
  const auto report = nlohmann::json::parse(gptq.out);
  EXPECT_EQ(report["gptq"]["tensors"], 28);
  EXPECT_EQ(report["gptq"]["calib_samples"], 16);

  // Types: what `plan -f Q4_K_M` prints; GPTQ recipes are the layer linears.
  const auto plan = nlohmann::json::parse(test::RunQforge({"plan", test::HouseModelDir(), "-f", "Q4_K_M", "--json"}).out);
  const auto a = TypesAndHashes(dir.File("plain.gguf")), b = TypesAndHashes(dir.File("gptq.gguf"));
  ASSERT_EQ(a.size(), plan["tensors"].size());
  ASSERT_EQ(b.size(), plan["tensors"].size());
  int differ = 0;
  for (size_t i = 0; i < plan["tensors"].size(); ++i) {
    const auto& pt = plan["tensors"][i];
    const auto& rt = report["tensors"][i];
    const std::string name = pt["name"];
    EXPECT_EQ(rt["name"], name);
    EXPECT_EQ(b.at(name).first, pt["type"].get<std::string>()) << name;
    const bool is_gptq = rt["method"] == "gptq";
    EXPECT_EQ(is_gptq, name.rfind("blk.", 0) == 0 && name.find("_norm") == std::string::npos) << name;
    if (is_gptq) {
      differ += a.at(name).second != b.at(name).second;
    } else {
      EXPECT_EQ(a.at(name).second, b.at(name).second) << name << " is not GPTQ'd and must equal plain Q4_K_M";
    }
  }
  EXPECT_EQ(differ, 28);

  const auto ev = test::RunQforge({"eval", "--base", test::HouseModelDir(), dir.File("plain.gguf"), dir.File("gptq.gguf"),
                                   "--text", eval, "--ctx", "256", "--chunks", "32", "--json", "-q"});
  ASSERT_EQ(ev.exit_code, 0) << ev.err;
  const auto j = nlohmann::json::parse(ev.out);
  const double kld_plain = j["models"][0]["kld_mean"], kld_gptq = j["models"][1]["kld_mean"];
  std::printf("[ figure ] house-14m Q4_K_M mean KLD (eval.txt ctx 256, 32 chunks): plain %.4g, GPTQ %.4g (%.2fx)\n",
              kld_plain, kld_gptq, kld_gptq / kld_plain);
  EXPECT_LT(kld_gptq, kld_plain);
}

// A weight GPTQ would spread an Inf from is refused, naming the tensor, as
// the plain encoders refuse it; nothing is written.
TEST(GgufGptq, NonFiniteWeightIsRefused) {
  test::ScratchDir dir;
  const std::string src = test::CopyHouseModel(dir.File("m"));
  test::PokeBf16(src + "/model.safetensors", "model.layers.1.mlp.down_proj.weight", 700, INFINITY);  // row 0, column 700
  const auto r = test::RunQforge({"quantize", src, "-f", "Q4_K_M", "--method", "gptq", "--calib",
                                  test::SharedDir() + "/text/calib.txt", "--calib-samples", "2", "--calib-seqlen", "64", "-o",
                                  dir.File("out.gguf")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("model.layers.1.mlp.down_proj.weight"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("NaN or Inf"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.File("out.gguf")));
}

// compressed-tensors with act-order but one group per row: g_idx is in column
// order, and the checkpoint still holds the weight_g_idx its plan counted
// (this used to abort with "not next in the checkpoint's order").
TEST(IntCheckpointActOrder, OneGroupPerRowStillWritesItsGIdx) {
  test::ScratchDir dir;
  const auto r = test::RunQforge({"quantize", test::HouseModelDir(), "--scheme", "W4A16", "--group-size", "512", "--act-order",
                                  "--method", "gptq", "--calib", test::SharedDir() + "/text/calib.txt", "--calib-samples", "2",
                                  "--calib-seqlen", "64", "--json", "-o", dir.File("ct")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto ppl = test::RunQforge({"perplexity", dir.File("ct"), "--text", test::SharedDir() + "/text/eval.txt", "--ctx",
                                    "128", "--chunks", "2", "--json"});
  ASSERT_EQ(ppl.exit_code, 0) << ppl.err;
  EXPECT_LT(nlohmann::json::parse(ppl.out)["ppl"].get<double>(), 300.0);
}

TEST(GgufGptq, ClearErrors) {
  test::ScratchDir dir;
  const auto nocalib = test::RunQforge({"quantize", test::HouseModelDir(), "-f", "Q4_K_M", "--method", "gptq", "-o", dir.File("x.gguf")});
  EXPECT_NE(nocalib.exit_code, 0);
  EXPECT_NE(nocalib.err.find("--calib"), std::string::npos) << nocalib.err;
  const auto awq = test::RunQforge({"quantize", test::HouseModelDir(), "-f", "Q4_K_M", "--method", "awq", "-o", dir.File("x.gguf")});
  EXPECT_NE(awq.exit_code, 0);
  EXPECT_NE(awq.err.find("--method 'awq'"), std::string::npos) << awq.err;
  EXPECT_TRUE(dir.List().empty());
}

}  // namespace
}  // namespace qforge
