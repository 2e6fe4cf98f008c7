// The tokenizer interface the engine, evaluation and CLI use, and the factory
// that builds the right one from a model's GGUF tokenizer keys: the
// sentencepiece-style "llama" model or the byte-level BPE "gpt2" model.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/gguf.h"
#include "qforge/status.h"

namespace qforge {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Token ids of `text`; BOS first when add_bos and the vocabulary adds it.
  virtual std::vector<int32_t> Encode(std::string_view text, bool add_bos) const = 0;
  // The vocabulary entry as stored, and the text it stands for.
  virtual std::string TokenText(int32_t id) const = 0;
  virtual std::string TokenPiece(int32_t id) const = 0;
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  virtual bool adds_bos() const = 0;
  // Whether control tokens written in the text (<|im_start|>, <s>) become
  // those tokens, as Hugging Face and llama-tokenize do by default; off
  // (the default here) they are plain text, as llama-perplexity reads its
  // text. User-defined tokens are matched either way.
  virtual void SetParseSpecial(bool on) = 0;
};

// Splits text around verbatim occurrences of tokens (user-defined tokens
// are matched in the text itself): the earliest match wins, the longest
// token on ties (ids sorted longest first). on_text gets the text between
// matches (with whether it starts the text), on_token each matched id.
void SplitOnTokens(std::string_view text, const std::vector<std::string>& tokens,
                   const std::vector<int32_t>& ids_longest_first,
                   const std::function<void(std::string_view, bool)>& on_text,
                   const std::function<void(int32_t)>& on_token);

// The byte a byte-fallback token "<0xHH>" stands for; nullopt for any other
// text (a file may type any token BYTE).
std::optional<char> ByteTokenValue(const std::string& text);

Result<std::unique_ptr<Tokenizer>> TokenizerFromMetadata(const GgufMetadata& md, const std::string& source);

}  // namespace qforge
