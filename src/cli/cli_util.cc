#include "cli/cli_util.h"

#include <fmt/core.h>
#include <algorithm>
#include <sys/resource.h>

#include <filesystem>

#include "base/parallel.h"

namespace qforge::cli {
namespace fs = std::filesystem;

int Fail(const Status& s) {
  fmt::print(stderr, "qforge: error: {}\n", s.message());
  return 1;
}

OpenOptions ModelOpenOptions(const GlobalOptions& g) {
  OpenOptions o;
  o.tokenizer_pre = g.tokenizer_pre;
  return o;
}

Result<Model> OpenModelAndWarn(const std::string& path, const GlobalOptions& g) {
  QF_ASSIGN_OR_RETURN(Model m, OpenModel(path, ModelOpenOptions(g)));
  for (const auto& w : m.warnings) fmt::print(stderr, "qforge: warning: {}\n", w);
  return m;
}

void PrintJson(const nlohmann::ordered_json& j, int indent) {
  fmt::print("{}\n", j.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

void PrintJson(const nlohmann::json& j, int indent) {
  fmt::print("{}\n", j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::string HumanBytes(uint64_t b) {
  const double d = static_cast<double>(b);
  if (b >= (uint64_t{1} << 30)) return fmt::format("{:.2f} GiB", d / (1 << 30));
  if (b >= (uint64_t{1} << 20)) return fmt::format("{:.2f} MiB", d / (1 << 20));
  if (b >= (uint64_t{1} << 10)) return fmt::format("{:.1f} KiB", d / (1 << 10));
  return fmt::format("{} B", b);
}

std::string ShapeString(const std::vector<int64_t>& ne) {
  std::string s;
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? " x " : "") + std::to_string(ne[i]);
  return s;
}

std::string ModelStem(const std::string& path) {
  fs::path p(path);
  if (fs::is_directory(p)) {
    std::string s = p.filename().string();
    if (s.empty()) s = p.parent_path().filename().string();
    return s;
  }
  return p.stem().string();
}

int Threads(const GlobalOptions& g) { return g.threads > 0 ? g.threads : DefaultThreads(); }

uint64_t PeakRssBytes() {
  struct rusage ru {};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

Status CheckGptqAndCalibrationArgs(const QuantizeArgs& a) {
  if (!(a.damp > 0.0f && a.damp < 1.0f)) return Status::Error("--damp: expected a fraction between 0 and 1");
  if (a.calib_samples <= 0 || a.calib_seqlen <= 1) {
    return Status::Error("--calib-samples and --calib-seqlen must be positive (sequence length at least 2)");
  }
  if (a.min_expert_tokens < 0) {
    return Status::Error("--min-expert-tokens " + std::to_string(a.min_expert_tokens) + ": expected 0 or more");
  }
  return Status::Ok();
}

namespace {

// The name a recipe's tensor has in the output: GGUF names in GGUF files,
// the source's names in checkpoints.
const std::string& OutputName(const Plan& plan, const TensorPlan& t) {
  return plan.output == PlanOutput::kCheckpoint ? t.source->source_name : t.name;
}

double Bpw(const TensorPlan& t) {
  const int64_t n = t.source->n_elements();
  return n ? 8.0 * static_cast<double>(t.nbytes) / static_cast<double>(n) : 0.0;
}

}  // namespace

nlohmann::ordered_json PlanJson(const Plan& plan) {
  nlohmann::ordered_json ts = nlohmann::ordered_json::array();
  for (const auto& t : plan.tensors) {
    ts.push_back({{"name", OutputName(plan, t)}, {"shape", t.ne}, {"type", t.TargetName()},
                  {"method", MethodName(t.method)}, {"source_type", t.source->source_dtype}, {"reason", t.reason},
                  {"bytes", t.nbytes}, {"bits_per_weight", Bpw(t)}, {"imatrix", t.importance != nullptr}});
  }
  return ts;
}

void PrintPlanTable(const Plan& plan) {
  size_t wn = 6, ws = 5, wt = 7, wr = 8;
  for (const auto& t : plan.tensors) {
    wn = std::max(wn, OutputName(plan, t).size());
    ws = std::max(ws, ShapeString(t.ne).size());
    wt = std::max(wt, t.TargetName().size());
    wr = std::max(wr, t.reason.size());
  }
  fmt::print("{:<{}}  {:<{}}  {:<{}} {:<7} {:<{}}  {:>12}  {:>7}\n", "tensor", wn, "shape", ws, "type", wt, "method", "why",
             wr, "bytes", "bpw");
  for (const auto& t : plan.tensors) {
    fmt::print("{:<{}}  {:<{}}  {:<{}} {:<7} {:<{}}  {:>12}  {:>7.3f}\n", OutputName(plan, t), wn, ShapeString(t.ne), ws,
               t.TargetName(), wt, MethodName(t.method), t.reason, wr, t.nbytes, Bpw(t));
  }
  const uint64_t file = plan.FileBytes();
  fmt::print("total: {} tensors, {} parameters, tensor data {}, {} {} ({} bytes), {:.3f} bits per weight\n",
             plan.tensors.size(), plan.n_elements(), HumanBytes(plan.tensor_bytes()),
             plan.output == PlanOutput::kGguf ? "file" : "checkpoint tensors", HumanBytes(file), file, plan.bits_per_weight());
}

void PrintExpertCoverage(const std::vector<std::vector<int64_t>>& tokens, int64_t min_tokens) {
  if (tokens.empty()) return;
  size_t n_expert = 0;
  for (const auto& row : tokens) n_expert = std::max(n_expert, row.size());
  fmt::print("expert coverage (calibration tokens routed to each expert; * below --min-expert-tokens {}: rounded to nearest)\n",
             min_tokens);
  const bool wide = n_expert > 16;
  if (wide) {
    fmt::print("  layer     min  median     max  below the minimum\n");
  } else {
    fmt::print("  layer");
    for (size_t e = 0; e < n_expert; ++e) fmt::print(" {:>7}", "e" + std::to_string(e));
    fmt::print("\n");
  }
  int64_t low = 0;
  for (size_t l = 0; l < tokens.size(); ++l) {
    if (tokens[l].empty()) continue;
    std::vector<std::string> below;
    for (size_t e = 0; e < tokens[l].size(); ++e) {
      if (tokens[l][e] < min_tokens) below.push_back("e" + std::to_string(e) + "=" + std::to_string(tokens[l][e]));
    }
    low += static_cast<int64_t>(below.size());
    fmt::print("  {:>5}", l);
    if (wide) {
      std::vector<int64_t> sorted = tokens[l];
      std::sort(sorted.begin(), sorted.end());
      std::string list;
      for (size_t i = 0; i < below.size() && i < 12; ++i) list += (i ? " " : "") + below[i];
      if (below.size() > 12) list += " ... (" + std::to_string(below.size()) + ")";
      fmt::print(" {:>7} {:>7} {:>7}  {}\n", sorted.front(), sorted[sorted.size() / 2], sorted.back(), list);
    } else {
      for (int64_t n : tokens[l]) fmt::print(" {:>6}{}", n, n < min_tokens ? "*" : " ");
      fmt::print("\n");
    }
  }
  if (low > 0) fmt::print("  {} expert(s) rounded to nearest for too few tokens\n", low);
}

nlohmann::ordered_json ExpertCoverageJson(const std::vector<std::vector<int64_t>>& tokens, int64_t min_tokens) {
  nlohmann::ordered_json layers = nlohmann::ordered_json::array(), fallback = nlohmann::ordered_json::array();
  for (size_t l = 0; l < tokens.size(); ++l) {
    layers.push_back(tokens[l]);
    for (size_t e = 0; e < tokens[l].size(); ++e) {
      if (tokens[l][e] < min_tokens) fallback.push_back({{"layer", l}, {"expert", e}, {"tokens", tokens[l][e]}, {"method", "rtn"}});
    }
  }
  return {{"min_expert_tokens", min_tokens}, {"tokens_per_expert", layers}, {"fallback", fallback}};
}

}  // namespace qforge::cli
