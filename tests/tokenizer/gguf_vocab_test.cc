#include "tokenizer/gguf_vocab.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "io/gguf.h"
#include "test_util.h"
#include "tokenizer/spm_model.h"

namespace qforge {
namespace {
namespace fs = std::filesystem;
using test::ScratchDir;

TEST(SpmModel, ReadsBundledTokenizer) {
  auto m = ReadSpmModel(test::HouseModelDir() + "/tokenizer.model");
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->pieces.size(), 4096u);
  EXPECT_EQ(m->pieces[0].text, "<unk>");
  EXPECT_EQ(m->pieces[0].type, SpmPiece::kUnknown);
  EXPECT_EQ(m->pieces[1].type, SpmPiece::kControl);
  EXPECT_EQ(m->pieces[3].text, "<0x00>");
  EXPECT_EQ(m->pieces[3].type, SpmPiece::kByte);
  // Ordinary pieces carry their (negative) log-probability scores.
  EXPECT_LT(m->pieces[400].score, 0.0f);
}

// The unknown token's type follows llama.cpp's converter: UNKNOWN as the
// sentencepiece model says, CONTROL once tokenizer_config.json's
// added_tokens_decoder marks it special (llama.cpp's own conversion of the
// house model types <unk> CONTROL, as the reference file shows).
TEST(HfVocab, UnknownTokenTypedAsLlamaCppTypesIt) {
  auto ref = GgufFile::Open(test::SharedDir() + "/reference/llama.cpp/house-14m/house-14m-Q8_0.gguf");
  ASSERT_TRUE(ref.ok());
  const GgufValue* types = (*ref)->metadata().Find("tokenizer.ggml.token_type");
  ASSERT_NE(types, nullptr);
  auto with_config = LoadHfVocab(test::HouseModelDir(), {});
  ASSERT_TRUE(with_config.ok()) << with_config.status().message();
  EXPECT_EQ(with_config->types[0], kTokControl);
  EXPECT_EQ(with_config->types[0], types->ArrayI64(0));
  ScratchDir dir;
  fs::copy_file(test::HouseModelDir() + "/tokenizer.model", dir.File("tokenizer.model"));
  auto spm_only = LoadHfVocab(dir.path(), {});
  ASSERT_TRUE(spm_only.ok()) << spm_only.status().message();
  EXPECT_EQ(spm_only->tokens[0], "<unk>");
  EXPECT_EQ(spm_only->types[0], kTokUnknown);
  EXPECT_EQ(spm_only->types[1], kTokControl);
}

TEST(SpmModel, RejectsGarbage) {
  ScratchDir dir;
  test::WriteFile(dir.File("t.model"), std::string("\x0a\xff\xff\xff\xff\x0f", 6));
  auto m = ReadSpmModel(dir.File("t.model"));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find(dir.File("t.model")), std::string::npos);
}

TEST(HfVocab, BundledSentencePieceAsTheConverterWritesIt) {
  auto v = LoadHfVocab(test::HouseModelDir(), {});
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->model, "llama");
  EXPECT_EQ(v->pre, "default");
  ASSERT_EQ(v->tokens.size(), 4096u);
  // added_tokens_decoder marks <unk>, <s>, </s> special: control, score -1000.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(v->types[i], kTokControl);
    EXPECT_EQ(v->scores[i], -1000.0f);
  }
  EXPECT_EQ(v->types[3], kTokByte);
  ASSERT_EQ(v->special_ids.size(), 3u);
  EXPECT_EQ(v->special_ids[0], (std::pair<std::string, uint32_t>{"bos", 1}));
  EXPECT_EQ(v->special_ids[1], (std::pair<std::string, uint32_t>{"eos", 2}));
  EXPECT_EQ(v->special_ids[2], (std::pair<std::string, uint32_t>{"unk", 0}));
  ASSERT_EQ(v->add_flags.size(), 3u);
  EXPECT_EQ(v->add_flags[0], (std::pair<std::string, bool>{"bos", true}));
  EXPECT_EQ(v->add_flags[1], (std::pair<std::string, bool>{"sep", false}));
  EXPECT_EQ(v->add_flags[2], (std::pair<std::string, bool>{"eos", false}));
}

TEST(HfVocab, TokenizerJsonAloneGivesTheSameTokens) {
  // Without tokenizer.model, the byte-fallback tokenizer.json is read instead;
  // its tokens and types must agree with the sentencepiece model's.
  ScratchDir dir;
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "config.json", "special_tokens_map.json"}) {
    fs::copy_file(test::HouseModelDir() + "/" + f, dir.File(f));
  }
  auto spm = LoadHfVocab(test::HouseModelDir(), {});
  auto bpe = LoadHfVocab(dir.path(), {});
  ASSERT_TRUE(spm.ok() && bpe.ok()) << bpe.status().message();
  EXPECT_EQ(bpe->model, "llama");
  EXPECT_EQ(bpe->tokens, spm->tokens);
  EXPECT_EQ(bpe->types, spm->types);
}

TEST(HfVocab, UnknownPreTokenizerNeedsAName) {
  ScratchDir dir;
  test::WriteFile(dir.File("tokenizer.json"),
                  R"({"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":{"type":"Whitespace"}})");
  auto v = LoadHfVocab(dir.path(), {});
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("--tokenizer-pre"), std::string::npos);
  VocabOptions o;
  o.tokenizer_pre = "gpt-2";
  auto named = LoadHfVocab(dir.path(), o);
  ASSERT_TRUE(named.ok()) << named.status().message();
  EXPECT_EQ(named->pre, "gpt-2");
  o.tokenizer_pre = "no-such-pre";
  EXPECT_FALSE(LoadHfVocab(dir.path(), o).ok());
}

TEST(HfVocab, MissingTokenizerIsAnError) {
  ScratchDir dir;
  auto v = LoadHfVocab(dir.path(), {});
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("tokenizer"), std::string::npos);
}

}  // namespace
}  // namespace qforge
