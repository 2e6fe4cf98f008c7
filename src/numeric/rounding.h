// Float -> integer rounding as ggml does it, shared by the codecs, the
// engine's activation rounding and the logits file format.
#pragma once

#include <cstdint>

namespace qforge {

// Round half to even via the 1.5*2^23 trick (valid for |v| <= 4194303).
inline int NearestInt(float v) {
  float val = v + 12582912.0f;
  int32_t i;
  __builtin_memcpy(&i, &val, 4);
  return (i & 0x007fffff) - 0x00400000;
}

}  // namespace qforge
