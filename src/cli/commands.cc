#include "cli/commands.h"
#include "cli/cli_util.h"

#include <fmt/core.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>

#include "base/parallel.h"
#include "base/progress.h"
#include "io/imatrix.h"
#include "io/json_file.h"
#include "model/model.h"
#include "io/output_file.h"
#include "plan/plan.h"
#include "pipeline/run_plan.h"
#include "sinks/gguf_sink.h"
#include "engine/generate.h"
#include "engine/llama_engine.h"
#include "eval/imatrix_collector.h"
#include "eval/kld.h"
#include "eval/perplexity.h"
#include "model/model_tokenizer.h"

namespace qforge::cli {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

std::string ValueSummary(const GgufValue& v, int max_items) {
  switch (v.type()) {
    case GgufType::STRING: {
      std::string s = v.AsString();
      if (s.size() > 120) s = s.substr(0, 117) + "...";
      for (char& c : s) if (c == '\n') c = ' ';
      return "\"" + s + "\"";
    }
    case GgufType::BOOL: return v.AsBool() ? "true" : "false";
    case GgufType::FLOAT32: case GgufType::FLOAT64: return fmt::format("{}", v.AsF64());
    case GgufType::ARRAY: {
      std::string s = fmt::format("[{} x {}]", v.count(), GgufTypeName(v.elem_type()));
      std::string items;
      const uint64_t n = std::min<uint64_t>(v.count(), static_cast<uint64_t>(max_items));
      for (uint64_t i = 0; i < n; ++i) {
        if (v.elem_type() == GgufType::STRING) items += (i ? ", " : "") + ("\"" + v.strings()[i] + "\"");
        else if (v.elem_type() == GgufType::FLOAT32 || v.elem_type() == GgufType::FLOAT64)
          items += (i ? ", " : "") + fmt::format("{}", v.ArrayF64(i));
        else items += (i ? ", " : "") + std::to_string(v.ArrayI64(i));
      }
      return s + " " + items + (v.count() > n ? ", ..." : "");
    }
    default:
      return (v.type() == GgufType::INT8 || v.type() == GgufType::INT16 || v.type() == GgufType::INT32 ||
              v.type() == GgufType::INT64)
                 ? std::to_string(v.AsI64())
                 : std::to_string(v.AsU64());
  }
}

ordered_json ValueJson(const GgufValue& v) {
  switch (v.type()) {
    case GgufType::STRING: return v.AsString();
    case GgufType::BOOL: return v.AsBool();
    case GgufType::FLOAT32: case GgufType::FLOAT64: return v.AsF64();
    case GgufType::INT8: case GgufType::INT16: case GgufType::INT32: case GgufType::INT64: return v.AsI64();
    case GgufType::ARRAY: {
      ordered_json a = ordered_json::array();
      for (uint64_t i = 0; i < v.count(); ++i) {
        if (v.elem_type() == GgufType::STRING) a.push_back(v.strings()[i]);
        else if (v.elem_type() == GgufType::FLOAT32 || v.elem_type() == GgufType::FLOAT64) a.push_back(v.ArrayF64(i));
        else a.push_back(v.ArrayI64(i));
      }
      return a;
    }
    default: return v.AsU64();
  }
}

struct TableRow {
  std::string name, shape, type;
  uint64_t bytes;
  int64_t elements;
};

void PrintTensorTable(const std::vector<TableRow>& rows) {
  size_t wn = 6, ws = 5, wt = 4;
  for (const auto& r : rows) {
    wn = std::max(wn, r.name.size());
    ws = std::max(ws, r.shape.size());
    wt = std::max(wt, r.type.size());
  }
  fmt::print("{:<{}}  {:<{}}  {:<{}}  {:>12}  {:>7}\n", "tensor", wn, "shape", ws, "type", wt, "bytes", "bpw");
  uint64_t total_bytes = 0;
  int64_t total_el = 0;
  for (const auto& r : rows) {
    const double bpw = r.elements ? 8.0 * static_cast<double>(r.bytes) / static_cast<double>(r.elements) : 0.0;
    fmt::print("{:<{}}  {:<{}}  {:<{}}  {:>12}  {:>7.3f}\n", r.name, wn, r.shape, ws, r.type, wt, r.bytes, bpw);
    total_bytes += r.bytes;
    total_el += r.elements;
  }
  const double bpw = total_el ? 8.0 * static_cast<double>(total_bytes) / static_cast<double>(total_el) : 0.0;
  fmt::print("total: {} tensors, {} parameters, {} ({} bytes), {:.3f} bits per weight\n", rows.size(), total_el,
             HumanBytes(total_bytes), total_bytes, bpw);
}

// Everything a plan needs, kept alive together (the plan points into the model).
struct PreparedPlan {
  Model model;
  Imatrix imatrix;
  Plan plan;
  const Preset* preset = nullptr;
};

Result<GgmlType> TypeArg(const std::string& flag, const std::string& name) {
  auto t = GgmlTypeFromName(name);
  if (!t || TraitsOf(*t).encode == nullptr) {
    return Status::Error(flag + ": '" + name + "' is not a tensor type qforge can write");
  }
  return *t;
}

Status Prepare(const GlobalOptions& g, const QuantizeArgs& a, PreparedPlan* pp) {
  pp->preset = FindPreset(a.type);
  if (pp->preset == nullptr) {
    std::string names;
    for (const auto& p : AllPresets()) names += (names.empty() ? "" : ", ") + std::string(p.name);
    return Status::Error("-f/--type: '" + a.type + "' is not a known output type (expected one of " + names +
                         "; see 'qforge list-formats')");
  }
  PlanOptions po;
  po.allow_requantize = a.allow_requantize;
  po.pure = a.pure;
  po.leave_output_tensor = a.leave_output_tensor;
  po.loader_order = a.method == "gptq";
  if (!a.output_tensor_type.empty()) {
    QF_ASSIGN_OR_RETURN(po.output_tensor_type, TypeArg("--output-tensor-type", a.output_tensor_type));
  }
  if (!a.token_embedding_type.empty()) {
    QF_ASSIGN_OR_RETURN(po.token_embedding_type, TypeArg("--token-embedding-type", a.token_embedding_type));
  }
  std::vector<std::string> specs = a.tensor_types;
  if (!a.tensor_type_file.empty()) {
    std::ifstream in(a.tensor_type_file);
    if (!in) return Status::Error(a.tensor_type_file + ": cannot open --tensor-type-file");
    std::string word;
    while (in >> word) specs.push_back(word);
  }
  for (const auto& spec : specs) {
    QF_ASSIGN_OR_RETURN(auto o, ParseTensorTypeOverride(spec));
    po.tensor_types.push_back(std::move(o));
  }
  if (!a.include_weights.empty() && !a.exclude_weights.empty()) {
    return Status::Error("--include-weights and --exclude-weights cannot be used together");
  }
  if ((!a.include_weights.empty() || !a.exclude_weights.empty()) && a.imatrix.empty()) {
    return Status::Error("--include-weights/--exclude-weights filter an importance matrix: pass --imatrix FILE");
  }
  QF_ASSIGN_OR_RETURN(pp->model, OpenModel(a.source, ModelOpenOptions(g)));
  if (!a.imatrix.empty()) {
    QF_ASSIGN_OR_RETURN(pp->imatrix, ReadImatrix(a.imatrix));
    FilterImatrix(&pp->imatrix, a.include_weights, a.exclude_weights);
    po.imatrix = &pp->imatrix;
    po.imatrix_arg = a.imatrix;
  }
  QF_ASSIGN_OR_RETURN(pp->plan, BuildPlan(pp->model, *pp->preset, po));
  if (a.method == "gptq" && UseGptqForLayerLinears(&pp->plan, pp->model) == 0) {
    pp->plan.warnings.push_back("--method gptq: no decoder-layer linear has a type GPTQ can fill (Q8_0, Q4_K, Q5_K, Q6_K); "
                                "the file is written as plain " + std::string(pp->preset->name));
  }
  return Status::Ok();
}

// --method with -f: only gptq, which fills the GGUF types' blocks.
Status CheckGgufMethod(const QuantizeArgs& a) {
  if (!a.scheme.empty()) return Status::Error("--type (GGUF) and --scheme (safetensors checkpoint) exclude each other");
  if (!a.method.empty() && a.method != "gptq") {
    return Status::Error("--method '" + a.method + "' with --type: GGUF files take --method gptq only (rtn is the default; awq needs --scheme)");
  }
  if (a.static_groups) return Status::Error("--static-groups: GGUF blocks are always fitted from their own columns");
  if (a.resume && a.method != "gptq") return Status::Error("--resume: only a --method gptq run keeps a journal to resume");
  return CheckGptqAndCalibrationArgs(a);
}

// GGUF GPTQ's run options from the command line.
PlanRunOptions GgufGptqOptions(const GlobalOptions& g, const QuantizeArgs& a) {
  PlanRunOptions ro;
  ro.layerwise.method = Method::kGptq;
  ro.layerwise.gptq.damp = a.damp;
  ro.layerwise.gptq.act_order = a.act_order;
  ro.layerwise.threads = Threads(g);
  ro.layerwise.min_expert_tokens = a.min_expert_tokens;
  ro.calib.text_path = a.calib;
  ro.calib.samples = a.calib_samples;
  ro.calib.seqlen = a.calib_seqlen;
  return ro;
}

}  // namespace

int RunPlan(const GlobalOptions& g, const QuantizeArgs& a) {
  if (a.type.empty() && (!a.scheme.empty() || !a.method.empty())) return RunIntPlan(g, a);
  if (Status s = CheckGgufMethod(a); !s.ok()) return Fail(s);
  if (a.type.empty()) return Fail(Status::Error("plan: give --type (a GGUF type or preset) or --scheme/--method (a safetensors checkpoint)"));
  PreparedPlan pp;
  Status s = Prepare(g, a, &pp);
  if (!s.ok()) return Fail(s);
  if (g.json) {
    ordered_json j;
    j["source"] = a.source;
    j["type"] = pp.preset->name;
    j["tensors"] = PlanJson(pp.plan);
    j["tensor_bytes"] = pp.plan.tensor_bytes();
    j["file_bytes"] = pp.plan.FileBytes();
    j["bits_per_weight"] = pp.plan.bits_per_weight();
    j["warnings"] = pp.plan.warnings;
    PrintJson(j);
    return 0;
  }
  for (const auto& w : pp.plan.warnings) fmt::print(stderr, "qforge: warning: {}\n", w);
  fmt::print("plan for {} as {}:\n", a.source, pp.preset->name);
  PrintPlanTable(pp.plan);
  return 0;
}

int RunQuantize(const GlobalOptions& g, const QuantizeArgs& a) {
  if (a.type.empty() && (!a.scheme.empty() || !a.method.empty())) return RunIntQuantize(g, a);
  if (Status s = CheckGgufMethod(a); !s.ok()) return Fail(s);
  if (a.type.empty()) return Fail(Status::Error("quantize: give --type (a GGUF type or preset) or --scheme/--method (a safetensors checkpoint: W4A16, W8A16, ...)"));
  PreparedPlan pp;
  Status prep = Prepare(g, a, &pp);
  if (!prep.ok()) return Fail(prep);
  const Plan& plan = pp.plan;
  const Preset* preset = pp.preset;
  for (const auto& w : plan.warnings) fmt::print(stderr, "qforge: warning: {}\n", w);

  std::string out = a.output.empty() ? ModelStem(a.source) + "-" + preset->name + ".gguf" : a.output;
  if (fs::is_directory(out)) out = (fs::path(out) / (ModelStem(a.source) + "-" + preset->name + ".gguf")).string();
  std::error_code same_ec;
  if (fs::equivalent(fs::path(a.source), fs::path(out), same_ec)) {
    return Fail(Status::Error(out + ": output would overwrite the source model"));
  }
  InstallOutputCleanupHandlers();
  const auto t0 = std::chrono::steady_clock::now();
  ProgressBar bar("quantize " + std::string(preset->name), pp.model.n_bytes(), !g.quiet && !g.json);
  SinkOptions so;
  so.threads = Threads(g);
  so.on_progress = [&](uint64_t n, const std::string& name) { bar.Advance(n, name); };
  GgufSink sink(out, so);
  PlanRunReport report;
  PlanRunOptions ro = GgufGptqOptions(g, a);
  ro.journal_dir = LayerJournal::DirFor(out);
  ro.resume = a.resume;
  Status s = RunPlan(pp.model, plan, sink, ro, &report);
  bar.Finish();
  if (!s.ok()) return Fail(s);
  for (const auto& w : report.warnings) fmt::print(stderr, "qforge: warning: {}\n", w);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::map<std::string, std::pair<int, uint64_t>> by_type;
  for (const auto& t : plan.tensors) {
    auto& e = by_type[GgmlTypeName(t.type)];
    e.first += 1;
    e.second += t.nbytes;
  }
  if (g.json) {
    ordered_json j;
    j["output"] = out;
    j["type"] = preset->name;
    j["tensors"] = PlanJson(plan);
    j["tensor_bytes"] = plan.tensor_bytes();
    j["file_bytes"] = fs::file_size(out);
    j["bits_per_weight"] = plan.bits_per_weight();
    j["seconds"] = secs;
    j["resumed_layers"] = report.resumed_layers;
    std::vector<std::string> warnings = plan.warnings;
    warnings.insert(warnings.end(), report.warnings.begin(), report.warnings.end());
    j["warnings"] = warnings;
    if (report.layerwise_tensors > 0) {
      const auto& t = report.timings;
      j["gptq"] = {{"tensors", report.layerwise_tensors}, {"calib_samples", report.samples}, {"calib_seqlen", report.seqlen},
                   {"seconds", {{"forward", t.forward_s}, {"hessian", t.hessian_s}, {"solve", t.solve_s}}}};
      if (!report.expert_tokens.empty()) j["expert_coverage"] = ExpertCoverageJson(report.expert_tokens, a.min_expert_tokens);
    }
    ordered_json types = ordered_json::object();
    for (const auto& [k, v] : by_type) types[k] = {{"tensors", v.first}, {"bytes", v.second}};
    j["by_type"] = types;
    PrintJson(j);
  } else if (!g.quiet) {
    PrintPlanTable(plan);
    for (const auto& [k, v] : by_type) fmt::print("  {:<7} {:>4} tensors  {}\n", k, v.first, HumanBytes(v.second));
    if (report.layerwise_tensors > 0) {
      PrintExpertCoverage(report.expert_tokens, a.min_expert_tokens);
      fmt::print("GPTQ filled {} tensors' blocks, calibrated on {} x {} tokens\n", report.layerwise_tensors, report.samples,
                 report.seqlen);
    }
    fmt::print("wrote {} ({}, {:.3f} bits per weight) in {:.2f} s\n", out, HumanBytes(fs::file_size(out)),
               plan.bits_per_weight(), secs);
  }
  return 0;
}

// A model, its tokenizer, an engine and a tokenized text: what perplexity
// and imatrix runs share.
struct TextRun {
  Model model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::vector<int32_t> tokens;
  std::unique_ptr<LlamaEngine> engine;
  int32_t bos = -1;  // what replaces each chunk's first token, or -1

  // Chunks of ctx tokens the text holds, at most max_chunks (-1: no limit).
  int64_t Chunks(int64_t ctx, int64_t max_chunks) const {
    const int64_t n = static_cast<int64_t>(tokens.size()) / std::max<int64_t>(1, ctx);
    return max_chunks >= 0 ? std::min(n, max_chunks) : n;
  }
};

uint64_t CacheBytes(const GlobalOptions& g) { return static_cast<uint64_t>(std::max<int64_t>(0, g.cache_mb)) << 20; }

Status PrepareTextRun(const GlobalOptions& g, const std::string& model_path, const std::string& text_path,
                      TextRun* run) {
  QF_ASSIGN_OR_RETURN(run->model, OpenModelAndWarn(model_path, g));
  QF_ASSIGN_OR_RETURN(run->tokenizer, TokenizerForModel(run->model));
  run->tokenizer->SetParseSpecial(g.parse_special);
  QF_ASSIGN_OR_RETURN(std::string text, ReadTextFile(text_path, "--text file"));
  run->tokens = run->tokenizer->Encode(text, true);
  QF_ASSIGN_OR_RETURN(run->engine, LlamaEngine::Create(run->model, Threads(g), CacheBytes(g)));
  run->bos = run->tokenizer->adds_bos() ? run->tokenizer->bos_id() : -1;
  return Status::Ok();
}

int RunGenerate(const GlobalOptions& g, const GenerateArgs& a) {
  auto model = OpenModelAndWarn(a.model, g);
  if (!model.ok()) return Fail(model.status());
  auto tok = TokenizerForModel(*model);
  if (!tok.ok()) return Fail(tok.status());
  auto engine = LlamaEngine::Create(*model, Threads(g));
  if (!engine.ok()) return Fail(engine.status());
  if (a.ctx > 0) (*engine)->SetContextLength(a.ctx);
  GenerateOptions go;
  go.n_predict = a.n;
  go.temperature = a.temp;
  go.seed = a.seed;
  if (!g.json) {
    fmt::print("{}", a.prompt);
    std::fflush(stdout);
    go.on_piece = [](const std::string& piece) {
      fmt::print("{}", piece);
      std::fflush(stdout);
    };
  }
  auto r = Generate(**engine, **tok, a.prompt, go);
  if (!r.ok()) return Fail(r.status());
  if (g.json) {
    ordered_json j;
    j["prompt"] = a.prompt;
    j["text"] = r->text;
    j["tokens"] = r->tokens;
    j["seconds"] = r->seconds;
    PrintJson(j);
  } else {
    fmt::print("\n");
    std::fflush(stdout);
    if (!g.quiet) {
      fmt::print(stderr, "{} tokens in {:.2f} s ({:.1f} tokens/s)\n", r->tokens.size(), r->seconds,
                 r->seconds > 0 ? static_cast<double>(r->tokens.size()) / r->seconds : 0.0);
    }
  }
  return 0;
}

int RunEval(const GlobalOptions& g, const EvalArgs& a) {
  if (a.base.empty() && a.base_logits.empty()) return Fail(Status::Error("eval: give --base MODEL or --base-logits FILE"));
  if (a.models.empty()) return Fail(Status::Error("eval: name at least one quantized model to compare"));
  KldBase base;
  PerplexityResult base_ppl;
  bool have_base_ppl = false;
  int32_t bos = -1;
  if (!a.base_logits.empty()) {
    auto b = ReadKldBase(a.base_logits);
    if (!b.ok()) return Fail(b.status());
    base = std::move(*b);
  } else {
    if (a.text.empty()) return Fail(Status::Error("eval: --text FILE is needed to run the base model"));
    TextRun run;
    if (Status s = PrepareTextRun(g, a.base, a.text, &run); !s.ok()) return Fail(s);
    PerplexityOptions po;
    po.n_ctx = a.ctx;
    po.max_chunks = a.chunks;
    po.bos = run.bos;
    bos = po.bos;
    ProgressBar bar("base " + a.base, 1, !g.quiet && !g.json);
    auto b = ComputeKldBase(*run.engine, run.tokens, po, &base_ppl);
    bar.Finish();
    if (!b.ok()) return Fail(b.status());
    base = std::move(*b);
    have_base_ppl = true;
    if (!a.save_base.empty()) {
      if (Status s = WriteKldBase(base, a.save_base); !s.ok()) return Fail(s);
    }
  }
  ordered_json models = ordered_json::array();
  struct Row {
    std::string path;
    KldStats s;
    double bpw;
  };
  std::vector<Row> rows;
  for (const auto& path : a.models) {
    auto model = OpenModelAndWarn(path, g);
    if (!model.ok()) return Fail(model.status());
    if (bos < 0) {
      auto tok = TokenizerForModel(*model);
      if (tok.ok() && (*tok)->adds_bos()) bos = (*tok)->bos_id();
    }
    auto engine = LlamaEngine::Create(*model, Threads(g), CacheBytes(g));
    if (!engine.ok()) return Fail(engine.status());
    ProgressBar bar("eval " + path, static_cast<uint64_t>(base.n_chunk), !g.quiet && !g.json);
    auto s = EvaluateKld(**engine, base, bos, [&](int64_t, int64_t) { bar.Advance(1); });
    bar.Finish();
    if (!s.ok()) return Fail(s.status().WithContext(path));
    const int64_t params = model->n_params();
    const double bpw = params ? 8.0 * static_cast<double>(model->n_bytes()) / static_cast<double>(params) : 0.0;
    rows.push_back({path, *s, bpw});
  }
  const double ppl_base = have_base_ppl ? base_ppl.ppl : (rows.empty() ? 0 : rows[0].s.ppl_base);
  if (g.json) {
    ordered_json j;
    j["base"] = {{"path", a.base.empty() ? a.base_logits : a.base}, {"ppl", ppl_base},
                 {"ppl_stderr", have_base_ppl ? base_ppl.ppl_stderr : 0.0}, {"tokens", base.n_chunk * base.n_ctx}};
    for (const auto& r : rows) {
      models.push_back({{"path", r.path}, {"ppl", r.s.ppl}, {"ppl_ratio", r.s.ppl / ppl_base},
                        {"kld_mean", r.s.kld_mean}, {"kld_stderr", r.s.kld_stderr}, {"kld_median", r.s.kld_median},
                        {"kld_p90", r.s.kld_p90}, {"kld_p99", r.s.kld_p99}, {"kld_p999", r.s.kld_p999},
                        {"kld_max", r.s.kld_max}, {"top1", r.s.top1}, {"rms_dp", r.s.rms_dp}, {"bpw", r.bpw}});
    }
    j["models"] = models;
    PrintJson(j);
    return 0;
  }
  fmt::print("base: {}  PPL {:.4f}  ({} chunks of {} tokens)\n", a.base.empty() ? a.base_logits : a.base, ppl_base,
             base.n_chunk, base.n_ctx);
  fmt::print("{:<40} {:>7} {:>9} {:>8} {:>23} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7}\n", "model", "bpw", "PPL", "ratio",
             "KLD mean", "median", "p99", "p99.9", "max", "top-1", "RMS dp");
  for (const auto& r : rows) {
    fmt::print("{:<40} {:>7.3f} {:>9.4f} {:>8.5f} {:>11.6f} +/- {:>7.6f} {:>9.6f} {:>9.6f} {:>9.6f} {:>9.6f} {:>7.3f}% {:>6.3f}%\n",
               r.path.size() > 40 ? "..." + r.path.substr(r.path.size() - 37) : r.path, r.bpw, r.s.ppl,
               r.s.ppl / ppl_base, r.s.kld_mean, r.s.kld_stderr, r.s.kld_median, r.s.kld_p99, r.s.kld_p999,
               r.s.kld_max, 100.0 * r.s.top1, 100.0 * r.s.rms_dp);
  }
  return 0;
}

int RunImatrix(const GlobalOptions& g, const ImatrixArgs& a) {
  TextRun run;
  if (Status s = PrepareTextRun(g, a.model, a.text, &run); !s.ok()) return Fail(s);
  ImatrixCollectOptions io;
  io.n_ctx = a.ctx;
  io.max_chunks = a.chunks;
  io.bos = run.bos;
  io.process_output = a.process_output;
  io.dataset = a.text;
  ProgressBar bar("imatrix", static_cast<uint64_t>(std::max<int64_t>(1, run.Chunks(a.ctx, a.chunks))),
                  !g.quiet && !g.json);
  io.on_chunk = [&](int64_t, int64_t) { bar.Advance(1); };
  const auto t0 = std::chrono::steady_clock::now();
  auto m = CollectImatrix(*run.engine, run.tokens, io);
  bar.Finish();
  if (!m.ok()) return Fail(m.status());
  InstallOutputCleanupHandlers();
  Status s = WriteImatrixGguf(*m, a.output);
  if (!s.ok()) return Fail(s);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (g.json) {
    ordered_json j;
    j["output"] = a.output;
    j["entries"] = m->sums.size();
    j["chunks"] = m->chunks;
    j["chunk_size"] = m->chunk_size;
    j["seconds"] = secs;
    PrintJson(j);
  } else if (!g.quiet) {
    fmt::print("wrote {}: {} entries from {} chunks of {} tokens in {:.1f} s\n", a.output, m->sums.size(), m->chunks,
               m->chunk_size, secs);
  }
  return 0;
}

int RunTokenize(const GlobalOptions& g, const TokenizeArgs& a) {
  if (!a.prompt.empty() && !a.file.empty()) {
    return Fail(Status::Error("tokenize: give either -p TEXT or -f FILE, not both"));
  }
  // A folder with only tokenizer files (tokenizer.json, no config.json) is enough.
  std::error_code ec;
  const bool tokenizer_only = fs::is_directory(a.model, ec) && !fs::exists(fs::path(a.model) / "config.json") &&
                              fs::exists(fs::path(a.model) / "tokenizer.json");
  Result<std::unique_ptr<Tokenizer>> tok = Status::Error("");
  if (tokenizer_only) {
    tok = TokenizerForHfTokenizerFolder(a.model, g.tokenizer_pre);
  } else {
    auto model = OpenModelAndWarn(a.model, g);
    if (!model.ok()) return Fail(model.status());
    tok = TokenizerForModel(*model);
  }
  if (!tok.ok()) return Fail(tok.status());
  (*tok)->SetParseSpecial(!a.no_parse_special);
  std::string text = a.prompt;
  if (!a.file.empty()) {
    auto file = ReadTextFile(a.file, "-f file");
    if (!file.ok()) return Fail(file.status());
    text = std::move(*file);
  }
  const auto ids = (*tok)->Encode(text, !a.no_bos);
  if (g.json) {
    ordered_json j = ordered_json::array();
    for (int32_t id : ids) j.push_back({{"id", id}, {"piece", (*tok)->TokenText(id)}});
    PrintJson(j, -1);
  } else if (a.ids) {
    std::string line = "[";
    for (size_t i = 0; i < ids.size(); ++i) line += (i ? ", " : "") + std::to_string(ids[i]);
    fmt::print("{}]\n", line);
  } else {
    for (int32_t id : ids) fmt::print("{:6d} -> '{}'\n", id, (*tok)->TokenText(id));
  }
  return 0;
}

int RunPerplexity(const GlobalOptions& g, const PerplexityArgs& a) {
  TextRun run;
  if (Status s = PrepareTextRun(g, a.model, a.text, &run); !s.ok()) return Fail(s);
  PerplexityOptions po;
  po.n_ctx = a.ctx;
  po.max_chunks = a.chunks;
  po.bos = run.bos;
  ProgressBar bar("perplexity", static_cast<uint64_t>(std::max<int64_t>(run.Chunks(a.ctx, a.chunks), 1)),
                  !g.quiet && !g.json);
  po.on_chunk = [&](int64_t, int64_t, double) { bar.Advance(1); };
  auto r = RunPerplexity(*run.engine, run.tokens, po);
  bar.Finish();
  if (!r.ok()) return Fail(r.status());
  if (g.json) {
    ordered_json j;
    j["ppl"] = r->ppl;
    j["ppl_stderr"] = r->ppl_stderr;
    j["tokens"] = r->n_evaluated;
    j["tokens_per_second"] = r->tokens_per_second();
    j["scored"] = r->n_scored;
    j["chunks"] = r->n_chunks;
    j["ctx"] = a.ctx;
    PrintJson(j);
  } else {
    fmt::print("{}: PPL = {:.4f} +/- {:.5f} ({} chunks of {} tokens, {} scored; {:.1f} tokens/s)\n", a.model, r->ppl,
               r->ppl_stderr, r->n_chunks, a.ctx, r->n_scored, r->tokens_per_second());
  }
  return 0;
}

namespace {

// What inspect shows of a file: a model, or a GGUF that holds no model (an
// importance matrix), whose metadata and tensors are listed as stored.
struct InspectView {
  std::string format;       // "gguf" or "huggingface"
  std::string description;  // first line, after the path
  std::string metadata_note;
  const GgufMetadata* metadata = nullptr;
  std::vector<TableRow> rows;
  std::vector<std::vector<int64_t>> shapes;  // one per row
  // Mixture of experts: experts per layer, used per token, and the
  // parameters one token passes through (each stacked expert tensor
  // counted at experts_used / experts of its size).
  int64_t experts = 0, experts_used = 0, active_params = 0;
};

int PrintInspectView(const GlobalOptions& g, const InspectArgs& a, const InspectView& v) {
  if (g.json) {
    ordered_json j;
    j["path"] = a.path;
    j["format"] = v.format;
    ordered_json md = ordered_json::object();
    for (const auto& kv : v.metadata->items()) md[kv.key] = ValueJson(kv.value);
    j["metadata"] = md;
    ordered_json ts = ordered_json::array();
    uint64_t total = 0;
    int64_t el = 0;
    for (size_t i = 0; i < v.rows.size(); ++i) {
      const TableRow& r = v.rows[i];
      ts.push_back({{"name", r.name}, {"shape", v.shapes[i]}, {"type", r.type}, {"bytes", r.bytes},
                    {"bits_per_weight", r.elements ? 8.0 * static_cast<double>(r.bytes) / static_cast<double>(r.elements) : 0.0}});
      total += r.bytes;
      el += r.elements;
    }
    j["tensors"] = ts;
    j["total"] = {{"tensors", v.rows.size()}, {"parameters", el}, {"bytes", total},
                  {"bits_per_weight", el ? 8.0 * static_cast<double>(total) / static_cast<double>(el) : 0.0}};
    if (v.experts > 0) {
      j["total"]["active_parameters"] = v.active_params;
      j["total"]["experts"] = v.experts;
      j["total"]["experts_used"] = v.experts_used;
    }
    PrintJson(j);
    return 0;
  }
  fmt::print("{}: {}\n", a.path, v.description);
  fmt::print("metadata ({} keys{}):\n", v.metadata->items().size(), v.metadata_note);
  for (const auto& kv : v.metadata->items()) {
    fmt::print("  {:<42} {:<8} {}\n", kv.key,
               kv.value.is_array() ? "ARRAY" : GgufTypeName(kv.value.type()), ValueSummary(kv.value, a.max_array_items));
  }
  fmt::print("\n");
  PrintTensorTable(v.rows);
  if (v.experts > 0) {
    int64_t total = 0;
    for (const auto& r : v.rows) total += r.elements;
    fmt::print("mixture of experts: {} experts per layer, {} used per token: {} parameters stored, {} active per token\n",
               v.experts, v.experts_used, total, v.active_params);
  }
  return 0;
}

// A GGUF file whose general.type says it holds no model (llama-imatrix
// writes "imatrix"), or null when it is a model (or not a readable GGUF:
// opening it as a model gives the error).
std::unique_ptr<GgufFile> OpenNonModelGguf(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return nullptr;
  auto f = GgufFile::Open(path);
  if (!f.ok()) return nullptr;
  const GgufValue* type = (*f)->metadata().Find("general.type");
  if (type == nullptr || type->type() != GgufType::STRING || type->AsString() == "model") return nullptr;
  return std::move(*f);
}

}  // namespace

int RunInspect(const GlobalOptions& g, const InspectArgs& a) {
  InspectView v;
  if (auto f = OpenNonModelGguf(a.path)) {
    v.format = "gguf";
    v.description = "GGUF file, general.type " + f->metadata().Find("general.type")->AsString() + " (not a model)";
    v.metadata = &f->metadata();
    for (const auto& t : f->tensors()) {
      v.rows.push_back({t.name, ShapeString(t.ne), GgmlTypeName(t.type), t.nbytes, t.n_elements()});
      v.shapes.push_back(t.ne);
    }
    return PrintInspectView(g, a, v);
  }
  auto model = OpenModelAndWarn(a.path, g);
  if (!model.ok()) return Fail(model.status());
  const bool gguf = model->source == ModelSource::kGguf;
  v.format = gguf ? "gguf" : "huggingface";
  v.description = std::string(gguf ? "GGUF" : "Hugging Face") + " model, architecture " + model->architecture;
  v.metadata_note = gguf ? "" : ", as a GGUF conversion would write them";
  v.metadata = &model->metadata;
  for (const auto& t : model->tensors) {
    v.rows.push_back({t.name, ShapeString(t.ne), gguf ? GgmlTypeName(t.type) : t.source_dtype, t.nbytes, t.n_elements()});
    v.shapes.push_back(t.ne);
  }
  if (model->expert_count > 0) {
    v.experts = model->expert_count;
    v.experts_used = model->ArchInt("expert_used_count", 0);
    for (const auto& t : model->tensors) {
      const bool stacked = t.name.find("_exps.") != std::string::npos && t.ne.size() == 3 && t.ne[2] == v.experts;
      v.active_params += stacked ? t.n_elements() / v.experts * v.experts_used : t.n_elements();
    }
  }
  return PrintInspectView(g, a, v);
}

int RunListFormats(const GlobalOptions& g) {
  if (g.json) {
    ordered_json a = ordered_json::array();
    for (const auto& p : AllPresets()) {
      a.push_back({{"name", p.name}, {"container", "gguf"}, {"ftype", p.ftype},
                   {"bits_per_weight", 8.0 * TraitsOf(p.default_type).block_bytes / TraitsOf(p.default_type).block_elems},
                   {"description", p.description}});
    }
    PrintJson(a);
    return 0;
  }
  fmt::print("GGUF output types (qforge quantize SRC -f TYPE):\n");
  for (const auto& p : AllPresets()) {
    const auto& tr = TraitsOf(p.default_type);
    fmt::print("  {:<10} {:>6.3f} bpw  {}\n", p.name, 8.0 * tr.block_bytes / tr.block_elems, p.description);
  }
  return 0;
}

}  // namespace qforge::cli
