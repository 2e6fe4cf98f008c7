// qforge quantize --scheme: GPTQ / AWQ / RTN integer checkpoints in the
// compressed-tensors, GPTQ or AWQ layout.
#include <fmt/core.h>

#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "pipeline/int_pipeline.h"
#include "base/progress.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "model/model.h"
#include "io/output_file.h"

namespace qforge::cli {
namespace {

// "5GB", "500MB", "2GiB", "123456" -> bytes.
Result<uint64_t> ParseSize(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return Status::Error("--max-shard-size '" + s + "': expected a size such as 5GB, 500MB or a byte count");
  double v = 0;
  try {
    v = std::stod(s.substr(0, i));
  } catch (...) {
    return Status::Error("--max-shard-size '" + s + "': expected a size such as 5GB, 500MB or a byte count");
  }
  std::string unit = s.substr(i);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double mul = 1;
  if (unit.empty() || unit == "B") mul = 1;
  else if (unit == "KB") mul = 1e3;
  else if (unit == "MB") mul = 1e6;
  else if (unit == "GB") mul = 1e9;
  else if (unit == "KIB") mul = 1024.0;
  else if (unit == "MIB") mul = 1024.0 * 1024;
  else if (unit == "GIB") mul = 1024.0 * 1024 * 1024;
  else return Status::Error("--max-shard-size '" + s + "': unknown unit '" + unit + "' (expected B, KB, MB, GB, KiB, MiB, GiB)");
  if (v * mul < 1) return Status::Error("--max-shard-size '" + s + "': must be at least one byte");
  return static_cast<uint64_t>(v * mul);
}


// The pipeline options of a --scheme run from the command line.
Status IntOptionsFromArgs(const GlobalOptions& g, const QuantizeArgs& args, IntPipelineOptions* po) {
  // AWQ keeps zero points by default, as AutoAWQ does.
  QuantizeArgs a = args;
  if (a.method.empty()) a.method = "gptq";
  if (a.scheme.empty()) a.scheme = a.method == "awq" ? "W4A16_ASYM" : "W4A16";
  IntPlanOptions& pl = po->plan;
  pl.scheme = a.scheme;
  QF_RETURN_IF_ERROR(ParseIntScheme(a.scheme, &pl.spec));
  pl.spec.group_size = a.group_size;
  if (a.group_size == 0 || a.group_size < -1) {
    return Status::Error("--group-size " + std::to_string(a.group_size) + ": expected -1 (per channel) or a positive size such as 128");
  }
  if (a.method == "rtn") pl.method = Method::kRtn;
  else if (a.method == "gptq") pl.method = Method::kGptq;
  else if (a.method == "awq") pl.method = Method::kAwq;
  else return Status::Error("--method '" + a.method + "': expected rtn, gptq or awq");
  const std::optional<IntLayout> layout = IntLayoutFromName(a.layout);
  if (!layout) return Status::Error("--layout '" + a.layout + "': expected compressed-tensors, gptq or awq");
  pl.layout = *layout;
  QF_RETURN_IF_ERROR(CheckGptqAndCalibrationArgs(a));
  if ((a.act_order || a.static_groups) && pl.method != Method::kGptq) {
    return Status::Error("--act-order and --static-groups apply to --method gptq only");
  }
  if (a.awq_search_samples < 0) return Status::Error("--awq-search-samples: expected 0 (all) or a positive count");
  pl.act_order = a.act_order;
  pl.static_groups = a.static_groups;
  pl.ignore = a.ignore;
  pl.quantize_lm_head = a.quantize_lm_head;
  pl.allow_requantize = a.allow_requantize;
  po->gptq.damp = a.damp;
  QF_ASSIGN_OR_RETURN(po->max_shard_bytes, ParseSize(a.max_shard_size));
  po->calib.text_path = a.calib;
  po->calib.samples = a.calib_samples;
  po->calib.seqlen = a.calib_seqlen;
  if (a.resume && pl.method == Method::kRtn) return Status::Error("--resume: rtn keeps no journal (it needs no calibration); run it again");
  po->resume = a.resume;
  po->awq_search_samples = a.awq_search_samples;
  po->min_expert_tokens = a.min_expert_tokens;
  po->threads = Threads(g);
  return Status::Ok();
}

std::string DefaultOutput(const QuantizeArgs& a, const IntPipelineOptions& po) {
  std::string scheme = po.plan.scheme;
  for (char& c : scheme) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return ModelStem(a.source) + "-" + scheme + "-" + MethodName(po.plan.method) +
         (a.layout == "compressed-tensors" ? "" : "-" + a.layout);
}

}  // namespace

int RunIntPlan(const GlobalOptions& g, const QuantizeArgs& a) {
  IntPipelineOptions po;
  if (Status s = IntOptionsFromArgs(g, a, &po); !s.ok()) return Fail(s);
  auto model = OpenModel(a.source, ModelOpenOptions(g));
  if (!model.ok()) return Fail(model.status());
  auto plan = BuildIntPlan(*model, po.plan);
  if (!plan.ok()) return Fail(plan.status());
  if (g.json) {
    nlohmann::ordered_json j;
    j["source"] = a.source;
    j["type"] = plan->preset;
    j["layout"] = IntLayoutName(plan->layout);
    j["tensors"] = PlanJson(*plan);
    j["tensor_bytes"] = plan->tensor_bytes();
    j["file_bytes"] = plan->FileBytes();
    j["bits_per_weight"] = plan->bits_per_weight();
    j["warnings"] = plan->warnings;
    PrintJson(j);
    return 0;
  }
  for (const auto& w : plan->warnings) fmt::print(stderr, "qforge: warning: {}\n", w);
  fmt::print("plan for {} as {} {} ({}):\n", a.source, plan->preset, MethodName(po.plan.method), IntLayoutName(plan->layout));
  PrintPlanTable(*plan);
  return 0;
}

int RunIntQuantize(const GlobalOptions& g, const QuantizeArgs& a) {
  IntPipelineOptions po;
  if (Status s = IntOptionsFromArgs(g, a, &po); !s.ok()) return Fail(s);
  InstallOutputCleanupHandlers();
  auto model = OpenModel(a.source, ModelOpenOptions(g));
  if (!model.ok()) return Fail(model.status());
  auto plan = BuildIntPlan(*model, po.plan);
  if (!plan.ok()) return Fail(plan.status());
  const std::string out = a.output.empty() ? DefaultOutput(a, po) : a.output;
  const bool show = !g.quiet && !g.json;
  ProgressBar bar(std::string(MethodName(po.plan.method)) + " " + ModelStem(a.source), static_cast<uint64_t>(model->n_layer), show);
  po.on_layer = [&](int64_t done, int64_t total) { bar.Advance(1, "layer " + std::to_string(done) + "/" + std::to_string(total)); };
  IntPipelineReport rep;
  Status s = QuantizeToIntCheckpoint(*model, *plan, out, po, &rep);
  bar.Finish();
  if (!s.ok()) return Fail(s);
  for (const auto& w : rep.warnings) fmt::print(stderr, "qforge: warning: {}\n", w);
  const uint64_t rss = PeakRssBytes();
  const auto& t = rep.timings;
  if (g.json) {
    nlohmann::ordered_json j = {{"output", out},
                                {"layout", IntLayoutName(plan->layout)},
                                {"method", MethodName(po.plan.method)},
                                {"scheme", po.plan.scheme},
                                {"group_size", po.plan.spec.group_size},
                                {"quantized_linears", rep.quantized_linears},
                                {"calib_samples", rep.samples},
                                {"calib_seqlen", rep.seqlen},
                                {"bytes", rep.bytes},
                                {"shards", rep.shards},
                                {"seconds", {{"total", rep.total_s}, {"forward", t.forward_s}, {"hessian", t.hessian_s},
                                             {"solve", t.solve_s}, {"search", t.search_s}, {"pack_write", rep.pack_write_s}}},
                                {"peak_rss_bytes", rss},
                                {"resumed_layers", rep.resumed_layers},
                                {"warnings", rep.warnings},
                                {"tensors", PlanJson(*plan)}};
    if (!rep.expert_tokens.empty()) j["expert_coverage"] = ExpertCoverageJson(rep.expert_tokens, po.min_expert_tokens);
    PrintJson(j);
  } else if (!g.quiet) {
    PrintPlanTable(*plan);
    PrintExpertCoverage(rep.expert_tokens, po.min_expert_tokens);
    fmt::print("{}: {} {} g{} ({}), {} linear layers quantized", out, po.plan.scheme, MethodName(po.plan.method),
               po.plan.spec.group_size, IntLayoutName(plan->layout), rep.quantized_linears);
    if (rep.samples > 0) fmt::print(", calibrated on {} x {} tokens", rep.samples, rep.seqlen);
    fmt::print("\n  {} in {} shard(s); {:.2f} s (forward {:.2f}, hessian {:.2f}, solve {:.2f}, search {:.2f}, pack+write {:.2f}); peak memory {}\n",
               HumanBytes(rep.bytes), rep.shards, rep.total_s, t.forward_s, t.hessian_s, t.solve_s, t.search_s,
               rep.pack_write_s, HumanBytes(rss));
  }
  return 0;
}

}  // namespace qforge::cli
