// Real Hugging Face tokenizers (../shared/reference/tokenizers-hf/: Qwen3's
// byte-level BPE, Mistral Nemo's tekken) against the ids the Hugging Face
// tokenizers algorithm gives for three texts, without BOS: every id equal.
// The folders hold only tokenizer files; the pre-tokenizer is recognised
// from tokenizer.json as llama.cpp's converter would name it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/json_file.h"
#include "model/model_tokenizer.h"
#include "test_util.h"

namespace qforge {
namespace {

struct Case {
  std::string tokenizer, text;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.tokenizer << "/" << c.text; }

class HfTokenizer : public ::testing::TestWithParam<Case> {};

TEST_P(HfTokenizer, SameIdsAsHuggingFace) {
  const std::string dir = test::SharedDir() + "/reference/tokenizers-hf";
  auto tok = TokenizerForHfTokenizerFolder(dir + "/" + GetParam().tokenizer, "");
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  auto ref = ReadJsonFile(dir + "/" + GetParam().tokenizer + "/" + GetParam().text + ".ids.json");
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  const std::vector<int32_t> want = ref->get<std::vector<int32_t>>();
  const std::vector<int32_t> got = (*tok)->Encode(test::ReadFile(dir + "/" + GetParam().text + ".txt"), false);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << "at token " << i;
}

// Special (control) tokens written in the text: single tokens when parsed
// (Hugging Face's and llama-tokenize's default, qforge tokenize's), plain
// text otherwise (llama-perplexity's reading of its text, qforge's default
// for perplexity/eval/imatrix). Qwen3: <|im_start|> is control 151644,
// <think> user-defined 151667 (matched either way).
TEST(HfTokenizerSpecial, ControlTokensOnlyWhenParsed) {
  auto tok = TokenizerForHfTokenizerFolder(test::SharedDir() + "/reference/tokenizers-hf/qwen3", "");
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const std::string text = "<|im_start|>user hi<think>";
  const std::vector<int32_t> plain = (*tok)->Encode(text, false);
  EXPECT_EQ(plain.front(), 27);  // '<'
  EXPECT_EQ(plain.back(), 151667);
  (*tok)->SetParseSpecial(true);
  EXPECT_EQ((*tok)->Encode(text, false), (std::vector<int32_t>{151644, 872, 15588, 151667}));
  (*tok)->SetParseSpecial(false);
  EXPECT_EQ((*tok)->Encode(text, false), plain);
  // The CLI: tokenize parses by default, --no-parse-special does not.
  const std::string dir = test::SharedDir() + "/reference/tokenizers-hf/qwen3";
  auto r = test::RunQforge({"tokenize", dir, "-p", text, "--no-bos", "--ids"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[151644, 872, 15588, 151667]\n");
  r = test::RunQforge({"tokenize", dir, "-p", text, "--no-bos", "--ids", "--no-parse-special"});
  EXPECT_EQ(r.out.rfind("[27, ", 0), 0u) << r.out;
}

std::vector<Case> Cases() {
  std::vector<Case> out;
  for (const char* t : {"qwen3", "mistral_nemo"})
    for (const char* x : {"prose", "code", "mixed"}) out.push_back({t, x});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Real, HfTokenizer, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.tokenizer + "_" + info.param.text; });

}  // namespace
}  // namespace qforge
