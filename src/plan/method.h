// How a tensor's values are chosen: the algorithm of a recipe, shared by the
// plan, the layer-by-layer run and the sinks' records of how a file was made.
#pragma once

namespace qforge {

// Copied, converted between float types, rounded to nearest, imatrix-weighted
// search, GPTQ error feedback, AWQ.
enum class Method { kCopy, kConvert, kRtn, kImatrix, kGptq, kAwq };

inline const char* MethodName(Method m) {  // "copy", "convert", "rtn", "imatrix", "gptq", "awq"
  switch (m) {
    case Method::kCopy: return "copy";
    case Method::kConvert: return "convert";
    case Method::kRtn: return "rtn";
    case Method::kImatrix: return "imatrix";
    case Method::kGptq: return "gptq";
    case Method::kAwq: return "awq";
  }
  return "?";
}

}  // namespace qforge
