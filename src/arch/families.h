// The ArchSpec of each family beyond the LLaMA one, for the table in
// llama_family.cc (one definition per family file).
#pragma once

#include <string>
#include <vector>

#include "arch/arch_spec.h"

namespace qforge {

// The LLaMA-family spec (src/arch/llama_family.cc), which Mixtral extends,
// and its block layout (pre-norm attention, gated FFN), which Gemma shares.
ArchSpec LlamaFamily(std::string gguf_arch, std::vector<std::string> model_types, bool permutes_qk);
BlockLayout LlamaBlock();

// Gemma 2 (Gemma2ForCausalLM) and Gemma 3 (Gemma3ForCausalLM, and the
// language part of Gemma3ForConditionalGeneration): src/arch/gemma.cc.
ArchSpec Gemma2Spec();
ArchSpec Gemma3Spec();

// Phi-3, Phi-3.5 and Phi-4 (Phi3ForCausalLM): src/arch/phi3.cc.
ArchSpec Phi3Spec();

// Mixture of experts (src/arch/moe.cc): Mixtral (-> llama with experts),
// Qwen2-MoE (shared expert) and Qwen3-MoE.
ArchSpec MixtralSpec();
ArchSpec Qwen2MoeSpec();
ArchSpec Qwen3MoeSpec();

}  // namespace qforge
