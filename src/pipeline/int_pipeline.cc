#include "pipeline/int_pipeline.h"
#include "base/clock.h"


#include "io/json_file.h"
#include "model/model_tokenizer.h"

namespace qforge {
Status ParseIntScheme(const std::string& scheme, IntQuantSpec* spec) {
  std::string s = scheme;
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  bool asym = false;
  if (s.size() > 5 && s.compare(s.size() - 5, 5, "_ASYM") == 0) {
    asym = true;
    s.resize(s.size() - 5);
  }
  if (s.size() != 5 || s[0] != 'W' || s.compare(2, 3, "A16") != 0 || (s[1] != '2' && s[1] != '3' && s[1] != '4' && s[1] != '8')) {
    return Status::Error("--scheme '" + scheme + "': expected W4A16, W4A16_ASYM, W8A16 (or W2A16, W3A16, with _ASYM for zero points)");
  }
  spec->bits = s[1] - '0';
  spec->symmetric = !asym;
  return Status::Ok();
}

Status QuantizeToIntCheckpoint(const Model& model, const std::string& out_dir, const IntPipelineOptions& opts,
                               IntPipelineReport* report) {
  IntPipelineReport local;
  IntPipelineReport& rep = report ? *report : local;
  rep = IntPipelineReport{};
  const auto start = Clock::now();
  const IntMethod method = opts.checkpoint.method;
  QF_ASSIGN_OR_RETURN(std::unique_ptr<IntCheckpointWriter> writer,
                      IntCheckpointWriter::Create(model, out_dir, opts.checkpoint));
  rep.warnings = writer->warnings();

  std::vector<std::vector<int32_t>> calib;
  if (method != IntMethod::kRtn) {
    if (opts.calib_text.empty()) {
      return Status::Error(std::string(IntMethodName(method)) + " needs calibration text: pass --calib FILE");
    }
    QF_ASSIGN_OR_RETURN(std::string text, ReadTextFile(opts.calib_text, "--calib file"));
    QF_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, TokenizerForModel(model));
    const std::vector<int32_t> tokens = tok->Encode(text, true);
    int64_t seqlen = opts.calib_seqlen;
    if (const GgufValue* ctx = model.metadata.Find(model.architecture + ".context_length"); ctx && ctx->is_integer()) {
      seqlen = std::min<int64_t>(seqlen, ctx->AsI64());
    }
    seqlen = std::min<int64_t>(seqlen, static_cast<int64_t>(tokens.size()));
    if (seqlen < 2) return Status::Error(opts.calib_text + ": too short to calibrate on (" + std::to_string(tokens.size()) + " tokens)");
    calib = CalibrationChunks(tokens, seqlen, opts.calib_samples, tok->adds_bos() ? tok->bos_id() : -1);
    rep.samples = static_cast<int64_t>(calib.size());
    rep.seqlen = seqlen;
  }

  LayerwiseOptions lo;
  lo.method = method;
  lo.spec = writer->spec();
  lo.gptq = opts.checkpoint.gptq;
  lo.true_sequential = opts.checkpoint.true_sequential;
  lo.threads = opts.threads;
  lo.awq_search_samples = opts.awq_search_samples;
  lo.quantize = [&](const std::string& name) { return writer->Quantizes(name); };
  lo.on_layer = opts.on_layer;
  auto sink = [&](LayerOutput&& out) -> Status {
    const auto t0 = Clock::now();
    rep.quantized_linears += static_cast<int64_t>(out.quantized.size());
    Status s = writer->AddLayer(std::move(out));
    rep.pack_write_s += SecondsSince(t0);
    return s;
  };
  QF_RETURN_IF_ERROR(QuantizeLayerwise(model, calib, lo, sink, &rep.timings));
  const auto t0 = Clock::now();
  QF_RETURN_IF_ERROR(writer->Finish());
  rep.pack_write_s += SecondsSince(t0);
  rep.bytes = writer->bytes_written();
  rep.shards = writer->shards();
  rep.total_s = SecondsSince(start);
  return Status::Ok();
}

}  // namespace qforge
