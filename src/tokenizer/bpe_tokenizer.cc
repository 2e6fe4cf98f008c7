#include "tokenizer/bpe_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <queue>

#include "io/json_file.h"
#include "tokenizer/gguf_vocab.h"

#include <cstdio>

namespace qforge {
namespace {

// The printable code point each byte stands for in byte-level BPE.
const std::vector<std::string>& ByteToUtf8() {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
      std::string s;
      if (cp < 0x80) {
        s += static_cast<char>(cp);
      } else {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      }
      t[static_cast<size_t>(b)] = s;
    }
    return t;
  }();
  return table;
}

const std::unordered_map<std::string, uint8_t>& Utf8ToByte() {
  static const std::unordered_map<std::string, uint8_t> m = [] {
    std::unordered_map<std::string, uint8_t> r;
    for (int b = 0; b < 256; ++b) r[ByteToUtf8()[static_cast<size_t>(b)]] = static_cast<uint8_t>(b);
    return r;
  }();
  return m;
}

size_t Utf8Len(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c >> 5) == 6) return 2;
  if ((c >> 4) == 14) return 3;
  if ((c >> 3) == 30) return 4;
  return 1;
}

const char* kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const char* kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// Mistral's "tekken" split (Mistral Nemo, Small 3, Pixtral): words are an
// optional non-letter, then upper-case-like letters before lower-case-like
// ones (or the reverse), single digits, punctuation runs, newlines, spaces.
const char* kTekken =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// The contractions of the GPT-4-era patterns, case-insensitive as the
// tokenizers' (?i:...) but spelled out (as llama.cpp does, so that no
// Unicode case folding such as U+017F long s joins in).
#define QF_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

// GPT-4o's o200k split (also Llama 4's): case-aware words with their
// contraction, numbers in runs of up to three digits.
const char* kGpt4o =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" QF_CONTRACTIONS "?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" QF_CONTRACTIONS "?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// Kimi K2: Han runs on their own, then GPT-4o's words over letters that are
// not Han (the tokenizer's class intersection [...&&[^\p{Han}]] as a
// negative look-ahead), newlines kept with punctuation runs.
const char* kKimiK2 =
    "\\p{Han}+|"
    "[^\\r\\n\\p{L}\\p{N}]?(?:(?!\\p{Han})[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}])*(?:(?!\\p{Han})[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}])+"
    QF_CONTRACTIONS "?|"
    "[^\\r\\n\\p{L}\\p{N}]?(?:(?!\\p{Han})[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}])+(?:(?!\\p{Han})[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}])*"
    QF_CONTRACTIONS "?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// Seed-Coder: Qwen2's split with punctuation runs that never take a newline.
const char* kSeedCoder = QF_CONTRACTIONS
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// DeepSeek LLM (v1/v2): newlines alone, words over the cased letters of
// many scripts, ASCII and full-width punctuation runs, trailing spaces,
// CJK runs, digit runs; each expression applied to what the previous left.
const char* kDeepseekLlmLetters =
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}"
    "\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}"
    "\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}"
    "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}"
    "\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}"
    "\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}"
    "\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"
    "\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}"
    "\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}"
    "\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}"
    "\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}"
    "\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"
    "\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+";

// DeepSeek V3 (and R1): digits in runs of up to three, CJK/kana runs, then
// words that may start with one ASCII punctuation mark, symbol runs, newlines.
const char* kDeepseekV3Words =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// Qwen3.5: Qwen2's split with combining marks kept in words.
const char* kQwen35 = QF_CONTRACTIONS
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// BLOOM, Poro, GPT-3 Finnish: runs up to whitespace or sentence punctuation.
const char* kBloom = " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+";

// Jais 2: Llama 3's split with whitespace cut in power-of-two runs.
const char* kJais2 = QF_CONTRACTIONS
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|"
    "\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}";

// Bailing MoE (Ling), LLaDA-MoE: Qwen2's split, one newline at a time.
const char* kBailing =
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|"
    "\\s+(?!\\S)|\\s+";

// EXAONE MoE: words may span single spaces between letters.
const char* kExaoneMoe = QF_CONTRACTIONS
    "|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";

// Youtu: Hangul, CJK punctuation, Bopomofo and CJK/kana runs first, then
// GPT-4o's case-aware words with single digits.
const char* kYoutuScripts =
    "[\\x{AC00}-\\x{D7A3}\\x{3131}-\\x{318E}]+|[\\x{FF01}\\x{2026}\\x{201C}\\x{201D}\\x{2018}\\x{2019}\\x{2014}\\x{FF1A}"
    "\\x{FF1B}\\x{FF0C}\\x{3001}-\\x{303F}\\x{FE30}-\\x{FE4F}]+|[\\x{3105}-\\x{312F}]+|"
    "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+";
const char* kYoutuWords =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" QF_CONTRACTIONS "?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" QF_CONTRACTIONS "?|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// The pre-tokenizer expressions llama.cpp applies for each pre name, in order.
bool RegexesFor(const std::string& pre, std::vector<std::string>* out, bool* ignore_merges) {
  *ignore_merges = false;
  if (pre == "mpt" || pre == "olmo" || pre == "jais" || pre == "default") {
    *out = {kGpt2};
  } else if (pre == "gpt-2" || pre == "phi-2" || pre == "jina-es" || pre == "jina-de" || pre == "gigachat" ||
             pre == "jina-v2-es" || pre == "jina-v2-de" || pre == "a.x-4.0" || pre == "mellum" || pre == "jina-v1-en" ||
             pre == "jina-v2-code" || pre == "roberta-bpe" || pre == "exaone4" || pre == "trillion" ||
             pre == "granite-docling") {
    *out = {kGpt2};
  } else if (pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "smollm" || pre == "codeshell" ||
             pre == "exaone" || pre == "minerva-7b" || pre == "mellum2") {
    *out = {"\\p{N}", kGpt2};
  } else if (pre == "falcon") {
    *out = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"};
  } else if (pre == "deepseek-coder") {
    *out = {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+",
            "\\p{N}"};
  } else if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3" || pre == "falcon-h1" ||
             pre == "pixtral" || pre == "midm-2.0" || pre == "lfm2" || pre == "dbrx" || pre == "smaug-bpe" ||
             pre == "glm4" || pre == "chatglm-bpe") {
    *out = {kLlama3};
    *ignore_merges = pre != "dbrx" && pre != "smaug-bpe" && pre != "glm4" && pre != "chatglm-bpe";
  } else if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "kormo" || pre == "megrez" || pre == "stablelm2" ||
             pre == "hunyuan" || pre == "solar-open" || pre == "grok-2") {
    *out = {kQwen2};
  } else if (pre == "qwen35") {
    *out = {kQwen35};
  } else if (pre == "poro-chat" || pre == "bloom" || pre == "gpt3-finnish") {
    *out = {kBloom};
  } else if (pre == "viking") {
    *out = {kBloom, "\\p{N}"};
  } else if (pre == "jais-2") {
    *out = {kJais2};
  } else if (pre == "bailingmoe" || pre == "bailingmoe2" || pre == "llada-moe") {
    *out = {kBailing};
  } else if (pre == "exaone-moe") {
    *out = {kExaoneMoe};
  } else if (pre == "youtu") {
    *out = {kYoutuScripts, kYoutuWords};
  } else if (pre == "deepseek-v3" || pre == "hunyuan-dense" || pre == "joyai-llm") {
    *out = {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+", kDeepseekV3Words};
  } else if (pre == "gpt-4o" || pre == "llama4" || pre == "minimax-m2" || pre == "kanana2" || pre == "talkie") {
    *out = {kGpt4o};
  } else if (pre == "tiny_aya") {
    *out = {"\\d{1,3}(?=(?:\\d{3})*\\b)", kGpt4o};
  } else if (pre == "laguna") {
    *out = {"[^\\n]+|[\\n]+", kQwen2};
  } else if (pre == "kimi-k2") {
    *out = {kKimiK2};
  } else if (pre == "seed-coder") {
    *out = {kSeedCoder};
  } else if (pre == "deepseek-llm") {
    *out = {"[\\r\\n]", kDeepseekLlmLetters, "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
            "\\s+$", "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", "\\p{N}+"};
  } else if (pre == "tekken") {
    *out = {kTekken};
    *ignore_merges = true;  // a whole word in the vocabulary is one token, as tekken's BPE says
  } else {
    return false;
  }
  return true;
}

}  // namespace

struct BpeTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() {
    if (code) pcre2_code_free(code);
  }
};

BpeTokenizer::~BpeTokenizer() = default;

Result<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromMetadata(const GgufMetadata& md, const std::string& source) {
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  const GgufValue* toks = md.Find("tokenizer.ggml.tokens");
  const GgufValue* merges = md.Find("tokenizer.ggml.merges");
  if (!toks || !toks->is_array() || toks->elem_type() != GgufType::STRING || toks->count() == 0) {
    return Status::Error(source + ": metadata 'tokenizer.ggml.tokens': expected a non-empty array of strings");
  }
  if (!merges || !merges->is_array() || merges->elem_type() != GgufType::STRING) {
    return Status::Error(source + ": metadata 'tokenizer.ggml.merges': a BPE tokenizer needs its merges");
  }
  const GgufValue* pre = md.Find("tokenizer.ggml.pre");
  const std::string pre_name = pre && pre->type() == GgufType::STRING ? pre->AsString() : "default";
  QF_RETURN_IF_ERROR(t->SetPreTokenizer(pre_name).WithContext(source + ": metadata 'tokenizer.ggml.pre'"));
  t->tokens_ = toks->strings();
  const uint64_t n = toks->count();
  t->types_.assign(n, kTokNormal);
  if (const GgufValue* types = md.Find("tokenizer.ggml.token_type"); types && types->is_array() && types->count() >= n) {
    for (uint64_t i = 0; i < n; ++i) t->types_[i] = static_cast<int32_t>(types->ArrayI64(i));
  }
  for (uint64_t i = 0; i < n; ++i) {
    t->ids_.emplace(t->tokens_[i], static_cast<int32_t>(i));
    if (t->types_[i] == kTokUserDefined) t->user_defined_.push_back(static_cast<int32_t>(i));
    if (t->types_[i] == kTokControl && !t->tokens_[i].empty()) t->control_.push_back(static_cast<int32_t>(i));
  }
  t->SetParseSpecial(false);
  const auto& ms = merges->strings();
  for (size_t i = 0; i < ms.size(); ++i) t->merge_rank_.emplace(ms[i], static_cast<int32_t>(i));
  auto id_key = [&](const char* key, int32_t def) {
    const GgufValue* v = md.Find(key);
    if (v == nullptr || !v->is_integer()) return def;
    const int64_t id = v->AsI64();
    return id >= 0 && static_cast<uint64_t>(id) < n ? static_cast<int32_t>(id) : def;
  };
  t->bos_ = id_key("tokenizer.ggml.bos_token_id", 11);
  t->eos_ = id_key("tokenizer.ggml.eos_token_id", 11);
  if (const GgufValue* v = md.Find("tokenizer.ggml.add_bos_token")) t->add_bos_ = v->AsBool();
  return t;
}

Status BpeTokenizer::SetPreTokenizer(const std::string& pre) {
  std::vector<std::string> exprs;
  if (!RegexesFor(pre, &exprs, &ignore_merges_)) {
    return Status::Error("pre-tokenizer '" + pre + "' is not supported by qforge's tokenizer yet");
  }
  regexes_.clear();
  for (const auto& e : exprs) {
    int err = 0;
    PCRE2_SIZE off = 0;
    auto r = std::make_unique<Regex>();
    r->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(e.c_str()), e.size(), PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    if (r->code == nullptr) {
      PCRE2_UCHAR msg[160];
      pcre2_get_error_message(err, msg, sizeof msg);
      return Status::Error("internal: pre-tokenizer '" + pre + "': expression does not compile at offset " +
                           std::to_string(off) + " (" + reinterpret_cast<const char*>(msg) + "): " + e);
    }
    regexes_.push_back(std::move(r));
  }
  return Status::Ok();
}

Result<std::vector<std::string>> BpeTokenizer::SplitText(const std::string& pre, std::string_view text) {
  BpeTokenizer t;
  QF_RETURN_IF_ERROR(t.SetPreTokenizer(pre));
  return t.PreTokenize(text);
}

Result<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromHfFolder(const std::string& folder, const std::string& pre) {
  VocabOptions vo;
  vo.tokenizer_pre = pre;
  QF_ASSIGN_OR_RETURN(GgufVocab v, LoadHfVocab(folder, vo));
  const std::string path = folder + "/tokenizer.json";
  if (v.model == "gpt2") {
    GgufMetadata md;
    AddVocabMetadata(v, &md);
    return FromMetadata(md, path);
  }
  // Sentencepiece-style BPE: the vocabulary and merges as tokenizer.json has them.
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  t->spm_style_ = true;
  t->add_space_prefix_ = v.add_space_prefix;
  t->tokens_ = v.tokens;
  t->types_ = v.types;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    t->ids_.emplace(v.tokens[i], static_cast<int32_t>(i));
    if (t->types_[i] == kTokUserDefined) t->user_defined_.push_back(static_cast<int32_t>(i));
    if (t->types_[i] == kTokControl && !t->tokens_[i].empty()) t->control_.push_back(static_cast<int32_t>(i));
  }
  t->SetParseSpecial(false);
  for (size_t i = 0; i < v.merges.size(); ++i) t->merge_rank_.emplace(v.merges[i], static_cast<int32_t>(i));
  if (v.merges.empty()) {
    QF_ASSIGN_OR_RETURN(nlohmann::json j, ReadJsonFile(path));
    for (const auto& m : j["model"]["merges"]) {
      if (m.is_string()) t->merge_rank_.emplace(m.get<std::string>(), static_cast<int32_t>(t->merge_rank_.size()));
    }
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto it = t->ids_.find(name);
    t->byte_ids_[b] = it == t->ids_.end() ? 0 : it->second;
  }
  for (const auto& [typ, id] : v.special_ids) {
    if (typ == "bos") t->bos_ = static_cast<int32_t>(id);
    if (typ == "eos") t->eos_ = static_cast<int32_t>(id);
  }
  for (const auto& [typ, on] : v.add_flags) {
    if (typ == "bos") t->add_bos_ = on;
  }
  return t;
}

std::string BpeTokenizer::TokenText(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < tokens_.size() ? tokens_[static_cast<size_t>(id)] : "";
}

std::string BpeTokenizer::TokenPiece(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size()) return "";
  const int32_t type = types_[static_cast<size_t>(id)];
  const std::string& t = tokens_[static_cast<size_t>(id)];
  if (type == kTokControl) return "";
  if (type == kTokUserDefined) return t;
  if (spm_style_) {
    if (type == kTokByte) {
      if (auto b = ByteTokenValue(t)) return std::string(1, *b);  // other text typed BYTE reads as text
    }
    std::string out;
    for (size_t i = 0; i < t.size();) {
      if (t.compare(i, 3, "\xE2\x96\x81") == 0) {
        out += ' ';
        i += 3;
      } else {
        out += t[i++];
      }
    }
    return out;
  }
  std::string out;
  for (size_t i = 0; i < t.size();) {
    const size_t len = std::min(Utf8Len(static_cast<unsigned char>(t[i])), t.size() - i);
    auto it = Utf8ToByte().find(t.substr(i, len));
    if (it != Utf8ToByte().end()) out += static_cast<char>(it->second);
    else out += t.substr(i, len);
    i += len;
  }
  return out;
}

// Each expression splits every current piece into its matches and the text
// between them, all kept in order.
std::vector<std::string> BpeTokenizer::PreTokenize(std::string_view text) const {
  std::vector<std::string> pieces = {std::string(text)};
  for (const auto& re : regexes_) {
    std::vector<std::string> next;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(re->code, nullptr);
    for (const auto& piece : pieces) {
      size_t start = 0, last = 0;
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
      while (start <= piece.size()) {
        const int rc = pcre2_match(re->code, subject, piece.size(), start, 0, md, nullptr);
        if (rc < 0) break;
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        const size_t b = ov[0], e = ov[1];
        if (e == b) {  // empty match: step one character
          start = b + (b < piece.size() ? Utf8Len(static_cast<unsigned char>(piece[b])) : 1);
          continue;
        }
        if (b > last) next.push_back(piece.substr(last, b - last));
        next.push_back(piece.substr(b, e - b));
        last = start = e;
      }
      if (last < piece.size()) next.push_back(piece.substr(last));
    }
    pcre2_match_data_free(md);
    pieces = std::move(next);
  }
  return pieces;
}

void BpeTokenizer::EncodeWord(const std::string& raw, std::vector<int32_t>* out) const {
  std::string word;
  if (spm_style_) {
    word = raw;
  } else {
    for (unsigned char c : raw) word += ByteToUtf8()[c];
  }
  if (ignore_merges_) {
    auto it = ids_.find(word);
    if (it != ids_.end()) {
      out->push_back(it->second);
      return;
    }
  }
  struct Sym {
    int prev, next;
    size_t off, n;
  };
  std::vector<Sym> syms;
  for (size_t off = 0; off < word.size();) {
    const size_t len = std::min(Utf8Len(static_cast<unsigned char>(word[off])), word.size() - off);
    const int idx = static_cast<int>(syms.size());
    syms.push_back({idx - 1, off + len == word.size() ? -1 : idx + 1, off, len});
    off += len;
  }
  struct Bigram {
    int left, right, rank;
    size_t size;
    bool operator<(const Bigram& o) const { return rank > o.rank || (rank == o.rank && left > o.left); }
  };
  std::priority_queue<Bigram> queue;
  auto try_add = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const std::string key = word.substr(syms[l].off, syms[l].n) + " " + word.substr(syms[r].off, syms[r].n);
    auto it = merge_rank_.find(key);
    if (it == merge_rank_.end()) return;
    queue.push({l, r, it->second, syms[l].n + syms[r].n});
  };
  for (int i = 1; i < static_cast<int>(syms.size()); ++i) try_add(i - 1, i);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Sym& l = syms[b.left];
    Sym& r = syms[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (int i = syms.empty() ? -1 : 0; i != -1; i = syms[i].next) {
    const std::string s = word.substr(syms[i].off, syms[i].n);
    auto it = ids_.find(s);
    if (it != ids_.end()) {
      out->push_back(it->second);
      continue;
    }
    if (spm_style_) {  // byte fallback
      for (unsigned char c : s) out->push_back(byte_ids_[c]);
      continue;
    }
    for (size_t k = 0; k < s.size();) {  // fall back to single byte symbols
      const size_t len = Utf8Len(static_cast<unsigned char>(s[k]));
      auto jt = ids_.find(s.substr(k, len));
      if (jt != ids_.end()) out->push_back(jt->second);
      k += len;
    }
  }
}

void BpeTokenizer::SetParseSpecial(bool on) {
  verbatim_ = user_defined_;
  if (on) verbatim_.insert(verbatim_.end(), control_.begin(), control_.end());
  std::stable_sort(verbatim_.begin(), verbatim_.end(),
                   [&](int32_t a, int32_t b) { return tokens_[a].size() > tokens_[b].size(); });
}

std::vector<int32_t> BpeTokenizer::Encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos && add_bos_) out.push_back(bos_);
  SplitOnTokens(
      text, tokens_, verbatim_,
      [&](std::string_view piece, bool first) {
        if (spm_style_) {
          std::string norm = first && add_space_prefix_ ? "\xE2\x96\x81" : "";
          for (char c : piece) {
            if (c == ' ') norm += "\xE2\x96\x81";
            else norm += c;
          }
          EncodeWord(norm, &out);
        } else {
          for (const auto& w : PreTokenize(piece)) EncodeWord(w, &out);
        }
      },
      [&](int32_t id) { out.push_back(id); });
  return out;
}

}  // namespace qforge
