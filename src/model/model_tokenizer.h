// The tokenizer of an opened model.
#pragma once

#include <memory>

#include "model/model.h"
#include "qforge/status.h"
#include "tokenizer/tokenizer.h"

namespace qforge {

// From a GGUF file's keys; for a Hugging Face folder from tokenizer.model
// when present (as the converter records it), else from tokenizer.json's BPE.
Result<std::unique_ptr<Tokenizer>> TokenizerForModel(const Model& model);

// A Hugging Face folder holding only a tokenizer (tokenizer.json, maybe
// tokenizer_config.json; no config.json or weights): its BPE tokenizer with
// the pre-tokenizer recognised as llama.cpp's converter would (or
// tokenizer_pre when given).
Result<std::unique_ptr<Tokenizer>> TokenizerForHfTokenizerFolder(const std::string& dir, const std::string& tokenizer_pre);

}  // namespace qforge
