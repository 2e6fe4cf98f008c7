// Shared helpers for qforge tests: data locations, scratch folders, running
// the qforge binary, and the Python-repr hashing the reference manifests use.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "qforge/status.h"

namespace qforge {
struct Model;
}

namespace qforge::test {

std::string SourceDir();
std::string SharedDir();
std::string QforgeBinary();
std::string HouseModelDir();  // the bundled models/house-14m

// A fresh empty folder under the system temp dir, removed on destruction.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  std::vector<std::string> List() const;  // file names inside

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs the qforge binary with arguments (shell-quoted for you).
CommandResult RunQforge(const std::vector<std::string>& args);

// Copies the house model's folder to dst (created) and returns dst.
std::string CopyHouseModel(const std::string& dst);
// Overwrites `count` elements from `index` (row-major) of BF16 tensor `name`
// in a single-file safetensors model with v rounded to BF16.
void PokeBf16(const std::string& safetensors_path, const std::string& name, int64_t index, float v, int64_t count = 1);

// Every file under path (a file, or a folder walked recursively): path
// relative to it ("" for a plain file) -> bytes. For byte-for-byte output
// comparisons.
std::map<std::string, std::string> TreeContents(const std::string& path);

// Mean KL divergence of each quantized model against base over 8 chunks of
// 128 tokens of ../shared/text/eval.txt (the base's logits computed once);
// infinity for a model the engine cannot run (with a test failure).
std::vector<double> MeanKldsAgainst(const Model& base, const std::vector<const Model*>& quants);

void WriteFile(const std::string& path, const std::string& bytes);
std::vector<std::string> SplitString(const std::string& s, const std::string& sep);
std::string ReadFile(const std::string& path);

// A label of the reference manifests ("Q4_K_M-imatrix", "Q4_0-ffnF16",
// "MXFP4_MOE-pure-ffnF16") as the llama-quantize run that made it.
struct ReferenceRun {
  std::string type;
  bool imatrix = false, ffn_f16 = false, pure = false;
};
ReferenceRun ParseReferenceLabel(const std::string& label);

// The model the reference labels of `model_name` were made from: the
// bundled house-14m folder, stories260K's F32 GGUF, or for "arch/NAME" that
// folder's hf/ (whose conversion is what llama-quantize was given).
std::string ReferenceSource(const std::string& model_name);

// Quantizes the model the labels of `model_name` ("house-14m",
// "stories260K", "arch/llama3") were made from, as `label`'s run did, into
// `out`.
Status QuantizeLikeReference(const std::string& model_name, const std::string& label, const std::string& out,
                             int threads = 2);

// Python's repr() of a GGUF array value, as the reference manifests hash it:
// ['a', 'b'] for strings, [0.0, -1000.0] for floats, [1, 2] for integers.
std::string PythonRepr(const GgufValue& v);
std::string PythonFloatRepr(double d);
std::string PythonStrRepr(const std::string& utf8);

// Deterministic test matrices (spec 2.12's xorshift32 generator).
class XorShift32 {
 public:
  explicit XorShift32(uint32_t seed) : s_(seed) {}
  uint32_t Next() {
    s_ ^= s_ << 13;
    s_ ^= s_ >> 17;
    s_ ^= s_ << 5;
    return s_;
  }
  float U01() { return static_cast<float>(Next() >> 8) * (1.0f / 16777216.0f); }

 private:
  uint32_t s_;
};

}  // namespace qforge::test
