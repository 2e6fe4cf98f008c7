// The tokenizer of a Hugging Face folder as llama.cpp's converter records it
// in GGUF metadata: sentencepiece (tokenizer.model) or BPE (tokenizer.json),
// special token ids, add_bos/add_eos/add_sep flags and the chat template.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/gguf.h"
#include "qforge/status.h"

namespace qforge {

enum TokenType : int32_t {
  kTokNormal = 1, kTokUnknown = 2, kTokControl = 3, kTokUserDefined = 4, kTokUnused = 5, kTokByte = 6,
};

struct GgufVocab {
  std::string model;  // "llama" (sentencepiece style) or "gpt2" (byte-level BPE)
  std::string pre;    // pre-tokenizer name
  std::vector<std::string> tokens;
  std::vector<float> scores;  // empty for BPE
  std::vector<int32_t> types;
  std::vector<std::string> merges;
  std::vector<std::pair<std::string, uint32_t>> special_ids;  // ("bos", 1), in insertion order
  std::vector<std::pair<std::string, bool>> add_flags;        // ("bos", true), in insertion order
  std::optional<std::string> chat_template;
  // A sentencepiece-style tokenizer.json: whether the text gets a leading
  // U+2581 (a Prepend normalizer or a prepending Metaspace, as LLaMA's and
  // Mistral's have; Gemma's replaces spaces only).
  bool add_space_prefix = true;
  std::vector<std::string> warnings;  // what was skipped, and why
};

struct VocabOptions {
  std::string tokenizer_pre;  // overrides the detected BPE pre-tokenizer name
  std::optional<int64_t> config_vocab_size;
};

Result<GgufVocab> LoadHfVocab(const std::string& folder, const VocabOptions& opts);

// Appends the tokenizer keys in the converter's order.
void AddVocabMetadata(const GgufVocab& v, GgufMetadata* md);

// Names llama.cpp's loader accepts for tokenizer.ggml.pre.
bool IsKnownPreTokenizer(const std::string& name);

}  // namespace qforge
