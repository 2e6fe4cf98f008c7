// GGUF bytes as a model: header, metadata, tensor table, shapes against the
// hyper-parameters, tensor data and the vocabulary through its tokenizer.
#include "fuzz_util.h"
#include "model_touch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qforge;
  const std::string path = fuzz::WriteScratch("m.gguf", {reinterpret_cast<const char*>(data), size});
  auto m = OpenModel(path);
  if (m.ok()) fuzz::TouchModel(*m);
  return 0;
}
