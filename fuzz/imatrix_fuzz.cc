// Importance matrices: llama.cpp's GGUF imatrix and the legacy .dat layout
// (the same bytes are tried as both).
#include "fuzz_util.h"
#include "io/imatrix.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qforge;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)ReadImatrix(fuzz::WriteScratch("i.gguf", bytes));
  (void)ReadImatrix(fuzz::WriteScratch("i.dat", bytes));
  return 0;
}
