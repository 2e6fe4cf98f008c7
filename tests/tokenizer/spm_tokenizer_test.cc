// llama.cpp's tokenizer test vectors for the sentencepiece ("llama") vocab:
// every .inp string must give exactly the ids of its .out line.
#include "tokenizer/spm_tokenizer.h"

#include <gtest/gtest.h>

#include <sstream>

#include "io/gguf.h"
#include "io/model.h"
#include "test_util.h"

namespace qforge {
namespace {

std::vector<std::string> Split(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t at = s.find(sep, pos);
    if (at == std::string::npos) {
      out.push_back(s.substr(pos));
      break;
    }
    out.push_back(s.substr(pos, at - pos));
    pos = at + sep.size();
  }
  return out;
}

TEST(SpmTokenizer, LlamaCppTestVectors) {
  const std::string base = test::SharedDir() + "/reference/tokenizers/ggml-vocab-llama-spm.gguf";
  auto g = GgufFile::Open(base);
  ASSERT_TRUE(g.ok()) << g.status().message();
  auto tok = SpmTokenizer::FromMetadata((*g)->metadata(), base);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const auto inputs = Split(test::ReadFile(base + ".inp"), "\n__ggml_vocab_test__\n");
  const auto outputs = Split(test::ReadFile(base + ".out"), "\n");
  ASSERT_GE(outputs.size(), inputs.size());
  int failures = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::vector<int32_t> expected;
    std::istringstream ss(outputs[i]);
    for (int32_t id; ss >> id;) expected.push_back(id);
    const auto got = tok->Encode(inputs[i], false);
    if (got != expected) {
      ++failures;
      std::string g_ids;
      for (int32_t id : got) g_ids += " " + std::to_string(id);
      ADD_FAILURE() << "input #" << i << " '" << inputs[i] << "': got" << g_ids << ", expected " << outputs[i];
    }
  }
  EXPECT_EQ(failures, 0) << "of " << inputs.size();
}

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
