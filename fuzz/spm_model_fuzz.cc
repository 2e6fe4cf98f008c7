// A sentencepiece tokenizer.model (protobuf) read directly and as the
// vocabulary of a Hugging Face folder.
#include "fuzz_util.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/spm_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qforge;
  const std::string path = fuzz::WriteScratch("tokenizer.model", {reinterpret_cast<const char*>(data), size});
  auto m = ReadSpmModel(path);
  if (m.ok()) (void)LoadHfVocab(fuzz::ScratchDir(), VocabOptions{});
  return 0;
}
