// A sentencepiece tokenizer.model run by Debian's libsentencepiece, the
// library the model was trained with: the reference the GGUF-vocabulary
// tokenizer is checked against.
#pragma once

#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace qforge {

class SentencePieceTokenizer : public Tokenizer {
 public:
  static Result<std::unique_ptr<SentencePieceTokenizer>> Load(const std::string& model_path);
  ~SentencePieceTokenizer() override;

  std::vector<int32_t> Encode(std::string_view text, bool add_bos) const override;
  std::string TokenText(int32_t id) const override;
  std::string TokenPiece(int32_t id) const override;
  int32_t bos_id() const override;
  int32_t eos_id() const override;
  bool adds_bos() const override { return true; }
  // libsentencepiece reads control-token text as plain text, always: this
  // reference checker has only the plain mode (the default of the others).
  void SetParseSpecial(bool) override {}

 private:
  SentencePieceTokenizer() = default;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace qforge
