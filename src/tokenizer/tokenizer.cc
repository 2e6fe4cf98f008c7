#include "tokenizer/tokenizer.h"

#include <filesystem>

#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/spm_tokenizer.h"

namespace qforge {

void SplitOnTokens(std::string_view text, const std::vector<std::string>& tokens,
                   const std::vector<int32_t>& ids_longest_first,
                   const std::function<void(std::string_view, bool)>& on_text,
                   const std::function<void(int32_t)>& on_token) {
  size_t pos = 0;
  bool first = true;
  while (pos <= text.size()) {
    size_t best_at = std::string_view::npos;
    int32_t best_id = -1;
    for (int32_t id : ids_longest_first) {
      const size_t at = text.find(tokens[static_cast<size_t>(id)], pos);
      if (at != std::string_view::npos && (best_at == std::string_view::npos || at < best_at)) {
        best_at = at;
        best_id = id;
      }
    }
    const size_t end = best_at == std::string_view::npos ? text.size() : best_at;
    if (end > pos) on_text(text.substr(pos, end - pos), first);
    first = false;
    if (best_at == std::string_view::npos) break;
    on_token(best_id);
    pos = best_at + tokens[static_cast<size_t>(best_id)].size();
  }
}

std::optional<char> ByteTokenValue(const std::string& t) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>' || hex(t[3]) < 0 || hex(t[4]) < 0) return std::nullopt;
  return static_cast<char>(hex(t[3]) * 16 + hex(t[4]));
}

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

}  // namespace qforge
