// Byte-level BPE ("gpt2" tokenizer model) as llama.cpp runs it: the text is
// split by the pre-tokenizer's regular expressions (PCRE2, Unicode classes),
// each piece is mapped byte by byte to printable code points, and adjacent
// symbols merge by merge rank, lowest first.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace qforge {

class BpeTokenizer : public Tokenizer {
 public:
  static Result<std::unique_ptr<BpeTokenizer>> FromMetadata(const GgufMetadata& md, const std::string& source);
  // A Hugging Face tokenizer.json with a BPE model: byte-level (GPT-2 style,
  // pre-tokenizer named by `pre`) or sentencepiece-style (spaces as U+2581
  // with a leading one, no pre-tokenizer, byte fallback to <0xXX> tokens).
  static Result<std::unique_ptr<BpeTokenizer>> FromHfFolder(const std::string& folder, const std::string& pre);
  ~BpeTokenizer() override;
  // The pieces the byte-level pre-tokenizer `pre` (llama.cpp's name:
  // "llama-bpe", "gpt-4o", "deepseek-v3", ...) cuts text into before any
  // merge, in order; an error when qforge has no split for that name.
  static Result<std::vector<std::string>> SplitText(const std::string& pre, std::string_view text);

  std::vector<int32_t> Encode(std::string_view text, bool add_bos) const override;
  std::string TokenText(int32_t id) const override;
  std::string TokenPiece(int32_t id) const override;
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  bool adds_bos() const override { return add_bos_; }
  void SetParseSpecial(bool on) override;

 private:
  BpeTokenizer() = default;
  std::vector<std::string> PreTokenize(std::string_view text) const;
  // Compiles the split expressions of a pre name (sets ignore_merges_).
  Status SetPreTokenizer(const std::string& pre);
  void EncodeWord(const std::string& word, std::vector<int32_t>* out) const;

  struct Regex;
  std::vector<std::unique_ptr<Regex>> regexes_;
  std::vector<std::string> tokens_;
  std::vector<int32_t> types_;
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<std::string, int32_t> merge_rank_;  // "left right" -> rank
  std::vector<int32_t> user_defined_;
  std::vector<int32_t> control_;   // control tokens that have a text
  std::vector<int32_t> verbatim_;  // what Encode matches in the text: user-defined (+ control)
  bool ignore_merges_ = false;
  bool spm_style_ = false;  // sentencepiece-style BPE from tokenizer.json
  bool add_space_prefix_ = true;  // spm style: a U+2581 before the text (not Gemma's)
  int32_t byte_ids_[256] = {};
  int32_t bos_ = 11, eos_ = 11;
  bool add_bos_ = false;
};

}  // namespace qforge
