// The tiny architecture references under ../shared/reference/llama.cpp/arch/
// that qforge converts and runs; each grows the suite by its conversion,
// quantization, forward-pass and generation checks.
#pragma once

#include <string>
#include <vector>

namespace qforge::test {

// Folder names under arch/ ("llama3", ...).
inline std::vector<std::string> ArchReferences() { return {"llama3", "gemma2", "gemma3", "phi3", "mixtral", "qwen2moe", "qwen3moe"}; }

}  // namespace qforge::test
