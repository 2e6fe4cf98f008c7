// The ArchSpec of each family beyond the LLaMA one, for the table in
// llama_family.cc (one definition per family file).
#pragma once

#include "arch/arch_spec.h"

namespace qforge {

// Gemma 2 (Gemma2ForCausalLM) and Gemma 3 (Gemma3ForCausalLM, and the
// language part of Gemma3ForConditionalGeneration): src/arch/gemma.cc.
ArchSpec Gemma2Spec();
ArchSpec Gemma3Spec();

// Phi-3, Phi-3.5 and Phi-4 (Phi3ForCausalLM): src/arch/phi3.cc.
ArchSpec Phi3Spec();

}  // namespace qforge
