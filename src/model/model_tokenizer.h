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

}  // namespace qforge
