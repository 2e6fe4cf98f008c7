#include "tokenizer/tokenizer.h"

#include <filesystem>

#include "io/model.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/spm_tokenizer.h"

namespace qforge {

Result<std::unique_ptr<Tokenizer>> TokenizerFromMetadata(const GgufMetadata& md, const std::string& source) {
  const GgufValue* model = md.Find("tokenizer.ggml.model");
  if (model == nullptr || model->type() != GgufType::STRING) {
    return Status::Error(source + ": metadata 'tokenizer.ggml.model': missing (the model has no tokenizer)");
  }
  if (model->AsString() == "llama") {
    QF_ASSIGN_OR_RETURN(SpmTokenizer t, SpmTokenizer::FromMetadata(md, source));
    return std::unique_ptr<Tokenizer>(new SpmTokenizer(std::move(t)));
  }
  if (model->AsString() == "gpt2") {
    QF_ASSIGN_OR_RETURN(auto t, BpeTokenizer::FromMetadata(md, source));
    return std::unique_ptr<Tokenizer>(std::move(t));
  }
  return Status::Error(source + ": metadata 'tokenizer.ggml.model': '" + model->AsString() +
                       "' tokenizers are not supported yet (expected 'llama' or 'gpt2')");
}

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

}  // namespace qforge
