// The bundled model's three tokenizers agree on the shared texts: the
// GGUF-vocabulary tokenizer llama.cpp's way, libsentencepiece on
// tokenizer.model, and tokenizer.json's BPE with byte fallback.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/model.h"
#include "test_util.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/spm_tokenizer.h"

namespace qforge {
namespace {

class Agreement : public ::testing::TestWithParam<std::string> {};

TEST_P(Agreement, SameIds) {
  auto model = OpenModel(test::HouseModelDir());
  ASSERT_TRUE(model.ok());
  auto gguf = SpmTokenizer::FromMetadata(model->metadata, "house");
  auto sp = SentencePieceTokenizer::Load(test::HouseModelDir() + "/tokenizer.model");
  auto hf = BpeTokenizer::FromHfFolder(test::HouseModelDir(), "");
  ASSERT_TRUE(gguf.ok() && sp.ok()) << sp.status().message();
  ASSERT_TRUE(hf.ok()) << hf.status().message();
  const std::string text = GetParam() == "edge cases"
                               ? std::string("  leading spaces,  double  spaces\t\ttabs\n\nZ\xC3\xBCrich \xE2\x82\xAC 42 "
                                             "\xF0\x9F\x98\x80 emoji, \xE4\xB8\xAD\xE6\x96\x87 and trailing   ")
                               : test::ReadFile(test::SharedDir() + "/text/" + GetParam());
  const auto a = gguf->Encode(text, true);
  const auto b = (*sp)->Encode(text, true);
  const auto c = (*hf)->Encode(text, true);
  EXPECT_GT(a.size(), 1u);
  EXPECT_EQ(a, b) << "GGUF vocabulary vs libsentencepiece";
  EXPECT_EQ(a, c) << "GGUF vocabulary vs tokenizer.json";
}

INSTANTIATE_TEST_SUITE_P(House, Agreement, ::testing::Values("eval.txt", "calib.txt", "edge cases"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return s;
                         });

// Gemma's tokenizer.json without tokenizer.model: sentencepiece-style BPE
// with byte fallback whose normalizer replaces spaces but prepends none.
// Made from the gemma3 reference's tokenizer.json with Gemma's normalizer;
// the converted model's vocabulary (tokenizer.model, add_space_prefix
// false, as llama.cpp writes Gemma) gives the expected ids.
TEST(GemmaTokenizerJson, SameIdsAsItsSentencepieceVocabulary) {
  const std::string src = test::SharedDir() + "/reference/llama.cpp/arch/gemma3/hf";
  auto model = OpenModel(src);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto gguf = SpmTokenizer::FromMetadata(model->metadata, "gemma3");
  ASSERT_TRUE(gguf.ok());
  test::ScratchDir dir;
  auto tok = nlohmann::json::parse(test::ReadFile(src + "/tokenizer.json"));
  tok["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}};
  test::WriteFile(dir.File("tokenizer.json"), tok.dump());
  for (const char* f : {"tokenizer_config.json", "special_tokens_map.json"}) {
    test::WriteFile(dir.File(f), test::ReadFile(src + "/" + f));
  }
  auto hf = BpeTokenizer::FromHfFolder(dir.path(), "");
  ASSERT_TRUE(hf.ok()) << hf.status().message();
  for (const std::string& text : {test::ReadFile(test::SharedDir() + "/text/eval.txt"),
                                 std::string("  leading spaces,  double  spaces\t\ttabs\n\nZ\xC3\xBCrich 42 \xF0\x9F\x98\x80 end  ")}) {
    const auto want = gguf->Encode(text, false);
    EXPECT_GT(want.size(), 10u);
    EXPECT_EQ((*hf)->Encode(text, false), want);
  }
  // LLaMA-style (a space prepended) reads "Hello" as Gemma-style reads " Hello".
  auto llama_style = BpeTokenizer::FromHfFolder(src, "");
  ASSERT_TRUE(llama_style.ok()) << llama_style.status().message();
  EXPECT_EQ((*llama_style)->Encode("Hello there", false), (*hf)->Encode(" Hello there", false));
  EXPECT_NE((*llama_style)->Encode("Hello there", false), (*hf)->Encode("Hello there", false));
}

TEST(TokenizerEdgeCases, EmptyWhitespaceAndInvalidUtf8) {
  auto model = OpenModel(test::HouseModelDir());
  ASSERT_TRUE(model.ok());
  auto tok = SpmTokenizer::FromMetadata(model->metadata, "house");
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(tok->Encode("", true), std::vector<int32_t>{1});
  EXPECT_TRUE(tok->Encode("", false).empty());
  EXPECT_FALSE(tok->Encode("     ", false).empty());
  // Invalid UTF-8 falls back to byte tokens and round-trips byte for byte
  // (stray bytes, and a lead byte cut off at the end of the text).
  const std::string bad = "ok \xFF\xFEx end \xC3";
  std::string back;
  for (int32_t id : tok->Encode(bad, false)) back += tok->TokenPiece(id);
  EXPECT_EQ(back, " " + bad);
}

}  // namespace
}  // namespace qforge
