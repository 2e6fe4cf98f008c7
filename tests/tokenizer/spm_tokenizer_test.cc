// The sentencepiece-style tokenizer on the bundled model (llama.cpp's test
// vectors for this vocabulary type run in bpe_tokenizer_test.cc).
#include "tokenizer/spm_tokenizer.h"

#include <gtest/gtest.h>

#include <sstream>

#include "io/gguf.h"
#include "model/model.h"
#include "test_util.h"

namespace qforge {
namespace {


TEST(SpmTokenizer, BundledModelRoundTripsText) {
  auto m = OpenModel(test::HouseModelDir());
  ASSERT_TRUE(m.ok());
  auto tok = SpmTokenizer::FromMetadata(m->metadata, "house-14m");
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const std::string text = "In the beginning God created the heaven and the earth.\nZ\xC3\xBCrich \xE2\x82\xAC 42";
  const auto ids = tok->Encode(text, true);
  ASSERT_GT(ids.size(), 5u);
  EXPECT_EQ(ids[0], 1);
  // Decoding the pieces (U+2581 back to spaces, byte tokens to bytes) gives the text back.
  std::string decoded;
  for (size_t i = 1; i < ids.size(); ++i) {
    std::string piece = tok->TokenText(ids[i]);
    if (piece.size() == 6 && piece.rfind("<0x", 0) == 0) {
      decoded += static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16));
      continue;
    }
    size_t p;
    while ((p = piece.find("\xE2\x96\x81")) != std::string::npos) piece.replace(p, 3, " ");
    decoded += piece;
  }
  EXPECT_EQ(decoded, " " + text);
  EXPECT_TRUE(tok->Encode("", false).empty());
}

}  // namespace
}  // namespace qforge
