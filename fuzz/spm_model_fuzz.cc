// A sentencepiece tokenizer.model (protobuf) read directly, as the
// vocabulary of a Hugging Face folder, and as a tokenizer encoding a text
// (the second part: calibration and evaluation texts are untrusted too).
#include "fuzz_util.h"
#include "io/gguf.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/spm_model.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qforge;
  const auto parts = fuzz::SplitParts(data, size, 2);
  const std::string path = fuzz::WriteScratch("tokenizer.model", parts[0]);
  auto m = ReadSpmModel(path);
  if (!m.ok()) return 0;
  auto v = LoadHfVocab(fuzz::ScratchDir(), VocabOptions{});
  if (!v.ok()) return 0;
  GgufMetadata md;
  AddVocabMetadata(*v, &md);
  auto t = TokenizerFromMetadata(md, "fuzz");
  if (!t.ok()) return 0;
  for (std::string_view text : {std::string_view("Hello, world! <s> 123 \xE2\x96\x81x\n\t"), parts[1]}) {
    for (int32_t id : (*t)->Encode(text, true)) (void)(*t)->TokenPiece(id);
  }
  return 0;
}
