// The byte-level pre-tokenizers beyond GPT-2 / Llama 3 / Qwen2 / tekken:
// recognised from a tokenizer.json's pre_tokenizer as the family ships it
// (each folder here is synthesized: the family's pre_tokenizer section, a
// byte-level vocabulary), and the pieces each splits text into, worked out
// by hand from the family's published expressions.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/gguf_vocab.h"
#include "test_util.h"

namespace qforge {
namespace {

using json = nlohmann::json;
using Pieces = std::vector<std::string>;

json SplitRegex(const std::string& re) {
  return {{"type", "Split"}, {"pattern", {{"Regex", re}}}, {"behavior", "Isolated"}, {"invert", false}};
}
json ByteLevel(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

// A folder with a tokenizer.json: the given pre_tokenizer, the 256 byte
// symbols as the vocabulary (id = the byte), then one token per merge, then
// the given added tokens.
std::string WriteTokenizer(const test::ScratchDir& dir, const std::string& name, const json& pre,
                           const std::vector<std::string>& added = {}, const std::vector<std::string>& merges = {}) {
  json vocab = json::object();
  int id = 0, extra = 0;
  for (int b = 0; b < 256; ++b) {
    // GPT-2's byte symbols: printable bytes stand for themselves, the rest map above 255.
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    vocab[s] = id++;
  }
  for (const auto& m : merges) vocab[m.substr(0, m.find(' ')) + m.substr(m.find(' ') + 1)] = id++;
  json added_tokens = json::array();
  for (const auto& a : added) added_tokens.push_back({{"id", id++}, {"content", a}, {"special", true}});
  json tok = {{"version", "1.0"},
              {"added_tokens", added_tokens},
              {"pre_tokenizer", pre},
              {"decoder", {{"type", "ByteLevel"}}},
              {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
  const std::string folder = dir.File(name);
  std::filesystem::create_directories(folder);
  test::WriteFile(folder + "/tokenizer.json", tok.dump());
  return folder;
}

std::string Pre(const std::string& folder) {
  auto v = LoadHfVocab(folder, VocabOptions{});
  EXPECT_TRUE(v.ok()) << v.status().message();
  return v.ok() ? v->pre : "";
}

// The o200k expression as GPT-4o's and Llama 4's tokenizer.json spell it.
const char* kO200k =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

TEST(PreTokenizer, RecognisedFromTokenizerJson) {
  test::ScratchDir dir;
  const json o200k = {{"type", "Sequence"}, {"pretokenizers", {SplitRegex(kO200k), ByteLevel(false)}}};
  EXPECT_EQ(Pre(WriteTokenizer(dir, "gpt4o", o200k, {"<|endoftext|>"})), "gpt-4o");
  EXPECT_EQ(Pre(WriteTokenizer(dir, "llama4", o200k, {"<|begin_of_text|>", "<|header_start|>"})), "llama4");

  const std::string k2 =
      "[\\p{Han}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*"
      "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
      "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  EXPECT_EQ(Pre(WriteTokenizer(dir, "kimi", {{"type", "Sequence"}, {"pretokenizers", {SplitRegex(k2), ByteLevel(false)}}})),
            "kimi-k2");

  const std::string seed =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\r\n]+|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";
  EXPECT_EQ(Pre(WriteTokenizer(dir, "seed", {{"type", "Sequence"}, {"pretokenizers", {SplitRegex(seed), ByteLevel(false)}}})),
            "seed-coder");

  const json v3 = {{"type", "Sequence"},
                   {"pretokenizers",
                    {SplitRegex("\\p{N}{1,3}"), SplitRegex("[\xE4\xB8\x80-\xE9\xBE\xA5\xE3\x81\x80-\xE3\x82\x9F\xE3\x82\xA0-\xE3\x83\xBF]+"),
                     SplitRegex("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
                                "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
                     ByteLevel(false)}}};
  EXPECT_EQ(Pre(WriteTokenizer(dir, "dsv3", v3)), "deepseek-v3");

  const json llm = {{"type", "Sequence"},
                    {"pretokenizers",
                     {SplitRegex("[\r\n]"), SplitRegex("\\s?[A-Za-z\xC2\xB5\xC3\x80-\xC3\x96\xC3\x98-\xC3\xB6]+"),
                      SplitRegex("\\s?[!-/:-~]+"), SplitRegex("\\s+$"), SplitRegex("\\p{N}+"), ByteLevel(false)}}};
  EXPECT_EQ(Pre(WriteTokenizer(dir, "dsllm", llm)), "deepseek-llm");

  const json digits = {{"type", "Sequence"},
                       {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, ByteLevel(true)}}};
  EXPECT_EQ(Pre(WriteTokenizer(dir, "smollm", digits, {"<|endoftext|>", "<|im_start|>", "<|im_end|>"})), "smollm");
  EXPECT_EQ(Pre(WriteTokenizer(dir, "starcoder", digits, {"<|endoftext|>", "<fim_prefix>"})), "starcoder");
  EXPECT_EQ(Pre(WriteTokenizer(dir, "gpt2", ByteLevel(true))), "gpt-2");

  // Something else still asks to be named.
  auto v = LoadHfVocab(WriteTokenizer(dir, "odd", {{"type", "Sequence"}, {"pretokenizers", {SplitRegex("x+"), ByteLevel(false)}}}),
                       VocabOptions{});
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("--tokenizer-pre"), std::string::npos);
}

Pieces Split(const std::string& pre, const std::string& text) {
  auto p = BpeTokenizer::SplitText(pre, text);
  EXPECT_TRUE(p.ok()) << p.status().message();
  return p.ok() ? *p : Pieces{};
}

TEST(PreTokenizer, Gpt4oAndLlama4SplitCaseAwareWordsWithTheirContraction) {
  for (const char* pre : {"gpt-4o", "llama4"}) {
    // Upper-case runs before lower-case ones, the contraction kept, digits by three, '/' kept with punctuation.
    EXPECT_EQ(Split(pre, "HelloWorld's 12345 a/b\n\nOK"),
              (Pieces{"Hello", "World's", " ", "123", "45", " a", "/b", "\n\n", "OK"}))
        << pre;
    EXPECT_EQ(Split(pre, "I'M HTTPServer"), (Pieces{"I'M", " HTTPServer"})) << pre;
  }
}

TEST(PreTokenizer, KimiK2KeepsHanRunsApartFromOtherLetters) {
  // U+4F60 U+597D ("ni hao"), then Latin letters glued to it.
  EXPECT_EQ(Split("kimi-k2", "\xE4\xBD\xA0\xE5\xA5\xBDWorld's 1234"),
            (Pieces{"\xE4\xBD\xA0\xE5\xA5\xBD", "World's", " ", "123", "4"}));
  EXPECT_EQ(Split("kimi-k2", "ab\xE4\xBD\xA0" "cd"), (Pieces{"ab", "\xE4\xBD\xA0", "cd"}));
}

TEST(PreTokenizer, SeedCoderSplitsSingleDigitsAndKeepsNewlinesOutOfPunctuation) {
  EXPECT_EQ(Split("seed-coder", "x=12;\n"), (Pieces{"x", "=", "1", "2", ";", "\n"}));
  EXPECT_EQ(Split("seed-coder", "it's"), (Pieces{"it", "'s"}));
}

TEST(PreTokenizer, DeepseekV3SplitsDigitsByThreeAndCjkRuns) {
  // Digits first (by three), then CJK/kana runs, then words that may start with one ASCII punctuation mark.
  EXPECT_EQ(Split("deepseek-v3", "abc1234\xE6\x97\xA5\xE6\x9C\xAC.com hello"),
            (Pieces{"abc", "123", "4", "\xE6\x97\xA5\xE6\x9C\xAC", ".com", " hello"}));
}

TEST(PreTokenizer, DeepseekLlmSplitsNewlinesLettersPunctuationAndDigits) {
  EXPECT_EQ(Split("deepseek-llm", "Hi, there\n42!"), (Pieces{"Hi", ",", " there", "\n", "42", "!"}));
  // Letters from its explicit list: Greek and Cyrillic join, a CJK run stands alone.
  EXPECT_EQ(Split("deepseek-llm", "\xCE\xB1\xCE\xB2 \xD0\xB4\xE4\xB8\xAD\xE6\x96\x87"),
            (Pieces{"\xCE\xB1\xCE\xB2", " \xD0\xB4", "\xE4\xB8\xAD\xE6\x96\x87"}));
}

TEST(PreTokenizer, SmollmSplitsEveryDigitThenAsGpt2) {
  EXPECT_EQ(Split("smollm", "abc 123 it's"), (Pieces{"abc", " ", "1", "2", "3", " it", "'s"}));
}

// Every pre name qforge splits compiles and keeps the text whole (the
// pieces join back to it); the names it cannot split say so.
TEST(PreTokenizer, EveryKnownNameSplitsOrSaysItCannot) {
  const std::string text = "Hello, World's 12345 \xE4\xBD\xA0\xE5\xA5\xBD!\n\n  x\xCE\xB1\xCE\xB2 1,000.5";
  int supported = 0;
  for (const char* pre :
       {"default", "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "deepseek-llm",
        "deepseek-coder", "deepseek-v3", "youtu", "falcon", "mpt", "starcoder", "gpt-2", "phi-2", "jina-es", "jina-de",
        "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "jina-v1-en", "jina-v2-code", "roberta-bpe", "refact",
        "command-r", "qwen2", "deepseek-r1-qwen", "kormo", "qwen35", "stablelm2", "olmo", "dbrx", "smaug-bpe", "poro-chat",
        "glm4", "chatglm-bpe", "viking", "jais", "jais-2", "tekken", "smollm", "codeshell", "bloom", "gpt3-finnish", "exaone",
        "exaone4", "exaone-moe", "minerva-7b", "megrez", "gpt-4o", "llama4", "kanana2", "talkie", "tiny_aya", "trillion",
        "granite-docling", "bailingmoe", "bailingmoe2", "llada-moe", "seed-coder", "hunyuan", "hunyuan-dense", "joyai-llm",
        "kimi-k2", "grok-2", "laguna", "minimax-m2", "solar-open", "mellum2"}) {
    auto p = BpeTokenizer::SplitText(pre, text);
    ASSERT_TRUE(p.ok()) << pre << ": " << p.status().message();
    std::string joined;
    for (const auto& piece : *p) joined += piece;
    EXPECT_EQ(joined, text) << pre;
    EXPECT_GT(p->size(), 5u) << pre;
    ++supported;
  }
  EXPECT_EQ(supported, 74);
  // A split qforge does not have (SuperBPE cuts digits at zero-width matches) is refused by name.
  auto p = BpeTokenizer::SplitText("superbpe", text);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("'superbpe'"), std::string::npos);
  // BLOOM matches runs between punctuation; what lies between matches stays one piece.
  EXPECT_EQ(Split("bloom", "Hi, you. \xE3\x80\x82ok"), (Pieces{"Hi", ",", " you", ". \xE3\x80\x82", "ok"}));
  EXPECT_EQ(Split("jais-2", "a      b"), (Pieces{"a", "    ", " ", " b"}));
}

// A tokenizer built from one of these folders encodes through the split:
// "i !" is the first merge, but "Hi!" splits into "Hi" and "!", so only
// "H i" can apply.
TEST(PreTokenizer, EncodesThroughTheRecognisedSplit) {
  test::ScratchDir dir;
  const json o200k = {{"type", "Sequence"}, {"pretokenizers", {SplitRegex(kO200k), ByteLevel(false)}}};
  auto tok = BpeTokenizer::FromHfFolder(WriteTokenizer(dir, "gpt4o", o200k, {}, {"i !", "H i"}), "");
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const int32_t hi = 257;  // after the 256 byte symbols and "i!"
  EXPECT_EQ((*tok)->Encode("Hi!", false), (std::vector<int32_t>{hi, '!'}));
  EXPECT_EQ((*tok)->Encode("xi!", false), (std::vector<int32_t>{'x', 'i', '!'}));
}

}  // namespace
}  // namespace qforge
