// The bundled model's three tokenizers agree on the shared texts: the
// GGUF-vocabulary tokenizer llama.cpp's way, libsentencepiece on
// tokenizer.model, and tokenizer.json's BPE with byte fallback.
#include <gtest/gtest.h>

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
