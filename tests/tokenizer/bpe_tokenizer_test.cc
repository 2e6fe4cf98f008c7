// llama.cpp's tokenizer test vectors for byte-level BPE vocabularies
// (gpt-2, starcoder, falcon, deepseek-coder) and one more sentencepiece one
// (phi-3): every .inp string must give exactly the ids of its .out line.
#include <gtest/gtest.h>

#include <sstream>

#include "io/gguf.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace qforge {
namespace {


class VocabVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabVectors, EveryCase) {
  const std::string base = test::SharedDir() + "/reference/tokenizers/ggml-vocab-" + GetParam() + ".gguf";
  auto g = GgufFile::Open(base);
  ASSERT_TRUE(g.ok()) << g.status().message();
  auto tok = TokenizerFromMetadata((*g)->metadata(), base);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const auto inputs = test::SplitString(test::ReadFile(base + ".inp"), "\n__ggml_vocab_test__\n");
  const auto outputs = test::SplitString(test::ReadFile(base + ".out"), "\n");
  ASSERT_GE(outputs.size(), inputs.size());
  int failures = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::vector<int32_t> expected;
    std::istringstream ss(outputs[i]);
    for (int32_t id; ss >> id;) expected.push_back(id);
    const auto got = (*tok)->Encode(inputs[i], false);
    if (got != expected) {
      ++failures;
      std::string g_ids;
      for (int32_t id : got) g_ids += " " + std::to_string(id);
      ADD_FAILURE() << "input #" << i << " '" << inputs[i] << "': got" << g_ids << ", expected " << outputs[i];
    }
  }
  EXPECT_EQ(failures, 0) << "of " << inputs.size();
}

INSTANTIATE_TEST_SUITE_P(Vocabs, VocabVectors,
                         ::testing::Values("gpt-2", "starcoder", "falcon", "deepseek-coder", "phi-3", "llama-spm"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return s;
                         });

}  // namespace
}  // namespace qforge
