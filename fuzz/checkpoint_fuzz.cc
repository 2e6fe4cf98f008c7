// A quantized checkpoint: config.json (with its quantization_config:
// compressed-tensors, GPTQ or AWQ) and model.safetensors, opened as a model
// and every packed linear decoded. The folder's tokenizer is fixed (the
// seeds' tiny byte-level BPE), so the inputs spend their bytes on layouts.
#include "fuzz_util.h"
#include "model_touch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qforge;
  const auto parts = fuzz::SplitParts(data, size, 3);
  fuzz::WriteScratch("config.json", parts[0]);
  fuzz::WriteScratch("model.safetensors", parts[1]);
  fuzz::WriteScratch("tokenizer.json", parts[2]);
  auto m = OpenModel(fuzz::ScratchDir());
  if (m.ok()) fuzz::TouchModel(*m);
  return 0;
}
