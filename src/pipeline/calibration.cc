#include "pipeline/calibration.h"

#include <algorithm>

#include "io/json_file.h"
#include "model/model_tokenizer.h"
#include "pipeline/layerwise.h"

namespace qforge {

Result<Calibration> LoadCalibration(const Model& model, const CalibrationOptions& opts, const std::string& what) {
  if (opts.text_path.empty()) return Status::Error(what + " needs calibration text: pass --calib FILE");
  QF_ASSIGN_OR_RETURN(std::string text, ReadTextFile(opts.text_path, "--calib file"));
  QF_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, TokenizerForModel(model));
  const std::vector<int32_t> tokens = tok->Encode(text, true);
  int64_t seqlen = opts.seqlen;
  if (const GgufValue* ctx = model.metadata.Find(model.architecture + ".context_length"); ctx && ctx->is_integer()) {
    seqlen = std::min<int64_t>(seqlen, ctx->AsI64());
  }
  seqlen = std::min<int64_t>(seqlen, static_cast<int64_t>(tokens.size()));
  if (seqlen < 2) {
    return Status::Error(opts.text_path + ": too short to calibrate on (" + std::to_string(tokens.size()) + " tokens)");
  }
  Calibration c;
  c.seqlen = seqlen;
  c.sequences = CalibrationChunks(tokens, seqlen, opts.samples, tok->adds_bos() ? tok->bos_id() : -1);
  return c;
}

}  // namespace qforge
