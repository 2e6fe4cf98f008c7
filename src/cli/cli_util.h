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
std::string HumanBytes(uint64_t b);
std::string ShapeString(const std::vector<int64_t>& ne);
// A model's name for default output names: folder name or file stem.
std::string ModelStem(const std::string& path);
int Threads(const GlobalOptions& g);
// --damp and --calib-samples/--calib-seqlen, for GGUF and checkpoint runs alike.
Status CheckGptqAndCalibrationArgs(const QuantizeArgs& a);
// A plan's recipes as JSON rows, and as the table plan and quantize print
// (the same for GGUF and checkpoint plans).
nlohmann::ordered_json PlanJson(const Plan& plan);
void PrintPlanTable(const Plan& plan);
// Peak resident memory of this process so far, in bytes (0 if unknown).
uint64_t PeakRssBytes();

}  // namespace qforge::cli
