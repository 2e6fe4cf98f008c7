// The pieces of a sentencepiece tokenizer.model (a serialized ModelProto),
// read with a small bounds-checked protobuf walker.
#pragma once

#include <string>
#include <vector>

#include "qforge/status.h"

namespace qforge {

struct SpmPiece {
  enum Type { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };
  std::string text;
  float score = 0.0f;
  int type = kNormal;
};

struct SpmModel {
  std::vector<SpmPiece> pieces;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
};

Result<SpmModel> ReadSpmModel(const std::string& path);

}  // namespace qforge
