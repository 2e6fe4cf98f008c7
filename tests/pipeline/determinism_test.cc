// The same input and options give the same bytes with 1 and 2 threads, for
// every method: plain and imatrix GGUF types, GPTQ into GGUF blocks, and the
// RTN, GPTQ (with act-order) and AWQ checkpoints; also the imatrix itself.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "test_util.h"

namespace qforge {
namespace {
namespace fs = std::filesystem;

class Determinism : public ::testing::TestWithParam<std::vector<std::string>> {};

TEST_P(Determinism, OneAndTwoThreadsWriteTheSameBytes) {
  test::ScratchDir dir;
  std::map<std::string, std::string> first;
  for (const char* threads : {"1", "2"}) {
    const std::string out = dir.File(std::string("t") + threads);
    std::vector<std::string> args = GetParam();
    for (auto& a : args) {
      if (a == "{calib}") a = test::SharedDir() + "/text/calib.txt";
      if (a == "{imatrix}") a = test::SharedDir() + "/reference/llama.cpp/house-14m/house-14m.imatrix.gguf";
      if (a == "{house}") a = test::HouseModelDir();
    }
    args.insert(args.end(), {"-t", threads, "-q", "-o", out});
    const auto r = test::RunQforge(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto c = test::TreeContents(out);
    ASSERT_FALSE(c.empty());
    if (first.empty()) {
      first = c;
      continue;
    }
    ASSERT_EQ(c.size(), first.size());
    for (const auto& [name, bytes] : first) EXPECT_TRUE(c.at(name) == bytes) << name << " differs between 1 and 2 threads";
  }
}

const std::vector<std::string> kCalib = {"--calib", "{calib}", "--calib-samples", "4", "--calib-seqlen", "128"};

std::vector<std::string> With(std::vector<std::string> a, const std::vector<std::string>& more) {
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

INSTANTIATE_TEST_SUITE_P(
    Methods, Determinism,
    ::testing::Values(std::vector<std::string>{"quantize", "{house}", "-f", "Q4_K_M"},
                      std::vector<std::string>{"quantize", "{house}", "-f", "IQ4_XS", "--imatrix", "{imatrix}"},
                      With({"quantize", "{house}", "-f", "Q4_K_M", "--method", "gptq"}, kCalib),
                      std::vector<std::string>{"quantize", "{house}", "--scheme", "W4A16", "--method", "rtn"},
                      With({"quantize", "{house}", "--scheme", "W4A16", "--method", "gptq", "--act-order"}, kCalib),
                      With({"quantize", "{house}", "--method", "awq"}, kCalib),
                      std::vector<std::string>{"imatrix", "{house}", "--text", "{calib}", "--ctx", "128", "--chunks", "4"}),
    [](const auto& info) {
      const auto& p = info.param;
      if (p[0] == "imatrix") return std::string("Imatrix");
      std::string name = p[2] == "-f" ? "Gguf" + p[3] : p[3];
      for (size_t i = 4; i + 1 < p.size(); ++i) {
        if (p[i] == "--method" || p[i] == "--imatrix") name += p[i] == "--imatrix" ? "Imatrix" : p[i + 1];
      }
      for (char& ch : name) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
      return name;
    });

}  // namespace
}  // namespace qforge
