#include "tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

namespace qforge {

Result<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::Load(const std::string& model_path) {
  std::unique_ptr<SentencePieceTokenizer> t(new SentencePieceTokenizer());
  t->sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = t->sp_->Load(model_path);
  if (!status.ok()) return Status::Error(model_path + ": cannot load sentencepiece model: " + status.ToString());
  return t;
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int32_t> SentencePieceTokenizer::Encode(std::string_view text, bool add_bos) const {
  std::vector<int> ids;
  sp_->Encode(std::string(text), &ids).IgnoreError();
  std::vector<int32_t> out;
  if (add_bos && sp_->bos_id() >= 0) out.push_back(sp_->bos_id());
  out.insert(out.end(), ids.begin(), ids.end());
  return out;
}

std::string SentencePieceTokenizer::TokenText(int32_t id) const { return sp_->IdToPiece(id); }

std::string SentencePieceTokenizer::TokenPiece(int32_t id) const {
  std::string s;
  sp_->Decode(std::vector<int>{id}, &s).IgnoreError();
  return s;
}

int32_t SentencePieceTokenizer::bos_id() const { return sp_->bos_id(); }
int32_t SentencePieceTokenizer::eos_id() const { return sp_->eos_id(); }

}  // namespace qforge
