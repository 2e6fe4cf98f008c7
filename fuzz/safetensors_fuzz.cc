// safetensors bytes: the header (JSON, dtypes, shapes, offsets) and, in the
// second part, a model.safetensors.index.json naming that file.
#include "fuzz_util.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qforge;
  const auto parts = fuzz::SplitParts(data, size, 2);
  fuzz::WriteScratch("a.safetensors", parts[0]);
  const std::string index = fuzz::WriteScratch("model.safetensors.index.json", parts[1]);
  for (const std::string& path : {fuzz::ScratchDir() + "/a.safetensors", index}) {
    auto st = SafetensorsModel::Open(path);
    if (!st.ok()) continue;
    volatile uint8_t sink = 0;
    for (const auto& t : st->tensors()) {
      if (t.nbytes > 0) sink = sink + t.data[0] + t.data[t.nbytes - 1];
    }
  }
  return 0;
}
