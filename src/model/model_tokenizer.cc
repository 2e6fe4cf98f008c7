#include "model/model_tokenizer.h"

#include <filesystem>

#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/gguf_vocab.h"

namespace qforge {

Result<std::unique_ptr<Tokenizer>> TokenizerForModel(const Model& model) {
  namespace fs = std::filesystem;
  if (model.source == ModelSource::kHfFolder && !fs::exists(fs::path(model.path) / "tokenizer.model") &&
      fs::exists(fs::path(model.path) / "tokenizer.json")) {
    const GgufValue* pre = model.metadata.Find("tokenizer.ggml.pre");
    QF_ASSIGN_OR_RETURN(auto t, BpeTokenizer::FromHfFolder(model.path, pre ? pre->AsString() : ""));
    return std::unique_ptr<Tokenizer>(std::move(t));
  }
  return TokenizerFromMetadata(model.metadata, model.path);
}

Result<std::unique_ptr<Tokenizer>> TokenizerForHfTokenizerFolder(const std::string& dir, const std::string& tokenizer_pre) {
  VocabOptions vo;
  vo.tokenizer_pre = tokenizer_pre;
  QF_ASSIGN_OR_RETURN(GgufVocab vocab, LoadHfVocab(dir, vo));
  QF_ASSIGN_OR_RETURN(auto t, BpeTokenizer::FromHfFolder(dir, vocab.pre));
  return std::unique_ptr<Tokenizer>(std::move(t));
}

}  // namespace qforge
