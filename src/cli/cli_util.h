// Small helpers every qforge command shares: error printing, sizes, names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "plan/plan.h"
#include "qforge/status.h"

namespace qforge::cli {

// Prints "qforge: error: <message>" and returns the exit code 1.
int Fail(const Status& s);
// The model options every command shares (--tokenizer-pre).
OpenOptions ModelOpenOptions(const GlobalOptions& g);
// OpenModel for commands that build no plan: prints the model's warnings
// ("qforge: warning: ...") on stderr. Plans carry them instead.
Result<Model> OpenModelAndWarn(const std::string& path, const GlobalOptions& g);
// Prints a JSON document and a newline on stdout (indent -1: one line).
// Bytes that are not UTF-8 (a token piece cut inside a character, a string
// from an untrusted file) are printed as U+FFFD instead of aborting.
void PrintJson(const nlohmann::ordered_json& j, int indent = 2);
void PrintJson(const nlohmann::json& j, int indent = 2);
std::string HumanBytes(uint64_t b);
std::string ShapeString(const std::vector<int64_t>& ne);
// A model's name for default output names: folder name or file stem.
std::string ModelStem(const std::string& path);
int Threads(const GlobalOptions& g);
// --damp, --calib-samples/--calib-seqlen and --min-expert-tokens, for GGUF and checkpoint runs alike.
Status CheckGptqAndCalibrationArgs(const QuantizeArgs& a);
// A plan's recipes as JSON rows, and as the table plan and quantize print
// (the same for GGUF and checkpoint plans).
nlohmann::ordered_json PlanJson(const Plan& plan);
void PrintPlanTable(const Plan& plan);
// Mixture of experts: the calibration tokens routed to each expert of each
// layer (PlanRunReport::expert_tokens), as a table on stdout (experts below
// min_tokens marked; beyond 16 experts a summary per layer: min, median,
// max and the experts below) and as JSON {min_expert_tokens,
// tokens_per_expert: [[...] per layer], fallback: [{layer, expert, tokens,
// method: "rtn"}]}.
void PrintExpertCoverage(const std::vector<std::vector<int64_t>>& tokens, int64_t min_tokens);
nlohmann::ordered_json ExpertCoverageJson(const std::vector<std::vector<int64_t>>& tokens, int64_t min_tokens);
// Peak resident memory of this process so far, in bytes (0 if unknown).
uint64_t PeakRssBytes();

}  // namespace qforge::cli
