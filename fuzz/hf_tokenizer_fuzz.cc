// A Hugging Face folder's JSON: tokenizer.json, tokenizer_config.json and
// config.json (three parts) through vocabulary conversion and tokenizer
// construction, as opening a model does, then encoding a fixed text and the
// fourth part (calibration and evaluation texts are untrusted too).
#include "arch/hf_config.h"
#include "fuzz_util.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/gguf_vocab.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qforge;
  const auto parts = fuzz::SplitParts(data, size, 4);
  fuzz::WriteScratch("tokenizer.json", parts[0]);
  fuzz::WriteScratch("tokenizer_config.json", parts[1]);
  fuzz::WriteScratch("config.json", parts[2]);
  (void)ReadHfConfig(fuzz::ScratchDir());
  VocabOptions vo;
  auto v = LoadHfVocab(fuzz::ScratchDir(), vo);
  auto t = BpeTokenizer::FromHfFolder(fuzz::ScratchDir(), v.ok() ? v->pre : "");
  if (!t.ok()) return 0;
  for (std::string_view text : {std::string_view("Hello, world! 123 <|endoftext|> \xC4\xA0x"), parts[3]}) {
    for (int32_t id : (*t)->Encode(text, true)) (void)(*t)->TokenPiece(id);
  }
  return 0;
}
