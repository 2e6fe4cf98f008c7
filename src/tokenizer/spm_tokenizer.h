// The sentencepiece-style ("llama" model) tokenizer as llama.cpp runs it from
// a GGUF vocabulary: spaces become U+2581, a leading one is added, adjacent
// symbols merge greedily by vocabulary score, and pieces that are not in the
// vocabulary fall back to byte tokens <0xXX>.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/gguf.h"
#include "qforge/status.h"
#include "tokenizer/tokenizer.h"

namespace qforge {

class SpmTokenizer : public Tokenizer {
 public:
  // Reads tokenizer.ggml.* keys; fails unless tokenizer.ggml.model is "llama".
  static Result<SpmTokenizer> FromMetadata(const GgufMetadata& md, const std::string& source);

  // Token ids of `text`; BOS first when add_bos (and the vocabulary adds it).
  std::vector<int32_t> Encode(std::string_view text, bool add_bos) const override;
  std::string TokenText(int32_t id) const override;
  // The text a token stands for: U+2581 as a space, byte tokens as their
  // byte, control tokens as nothing.
  std::string TokenPiece(int32_t id) const override;

  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  bool adds_bos() const override { return add_bos_; }
  void SetParseSpecial(bool on) override;
  size_t vocab_size() const { return tokens_.size(); }

 private:
  void EncodeFragment(std::string_view text, std::vector<int32_t>* out) const;

  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::vector<int32_t> types_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<int32_t> user_defined_;  // matched verbatim in text, longest first
  std::vector<int32_t> control_;   // control tokens that have a text
  std::vector<int32_t> verbatim_;  // what Encode matches in the text: user-defined (+ control)
  int32_t bos_ = 1, eos_ = 2, unk_ = 0;
  bool add_bos_ = true;
  bool add_space_prefix_ = true;
  int32_t byte_ids_[256];
};

}  // namespace qforge
