// The Plan of an integer weight-only checkpoint (qforge quantize --scheme):
// which linears are quantized to the integer grid, with which method, and
// which tensors stay float and why, in the order the checkpoint is written.
// Follows llm-compressor's declarative recipe: a scheme (W4A16 ...), the
// Linear targets of the decoder layers, an ignore list; lm_head and the
// embeddings stay float unless asked.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "codecs/int_group.h"
#include "io/int_layouts.h"
#include "model/model.h"
#include "plan/plan.h"
#include "qforge/status.h"

namespace qforge {

struct IntPlanOptions {
  std::string scheme = "W4A16";  // as given, for the plan's title
  IntLayout layout = IntLayout::kCompressedTensors;
  IntQuantSpec spec;             // scale dtype and zero rule are set from the layout
  Method method = Method::kGptq; // kRtn, kGptq or kAwq
  bool act_order = false;        // GPTQ's g_idx (layouts must be able to store it)
  bool static_groups = false;
  std::vector<std::string> ignore;  // regexes searched in module names (model.layers.0.mlp.down_proj)
  bool quantize_lm_head = false;    // compressed-tensors and GPTQ layouts; untied lm_head only
  bool allow_requantize = false;    // quantize linears the source already stores packed
};

// Parses a scheme name: W<bits>A16 with an optional _ASYM suffix
// (W4A16, W4A16_ASYM, W8A16, W2A16, W3A16).
Status ParseIntScheme(const std::string& scheme, IntQuantSpec* spec);

// Errors name the source tensor and what the layout cannot store.
Result<Plan> BuildIntPlan(const Model& model, const IntPlanOptions& opts);

// The module of a source weight name: "model.layers.0.mlp.down_proj.weight"
// -> "model.layers.0.mlp.down_proj".
std::string ModuleOf(const std::string& source_name);

// The module of expert e of a stacked tensor, as Transformers and vLLM name
// it (its source name's "{e}" replaced: "model.layers.0.mlp.experts.3.up_proj",
// "model.layers.0.block_sparse_moe.experts.3.w3").
std::string ExpertModule(const ModelTensor& t, int64_t e);
// The modules a weight is written as: its own, or one per expert of a
// stacked tensor, in expert order.
std::vector<std::string> ModulesOf(const ModelTensor& t);

// Linears whose input columns a group size does not divide, gathered so one
// error names them all (by input size) rather than the first alone.
class GroupSizeMisfits {
 public:
  // Records the linear when group_size > 0 does not divide cols.
  void Check(int64_t group_size, int64_t cols, const std::string& name);
  // Ok when nothing was recorded; else the error naming every linear.
  Status ToStatus(const std::string& model_path, int64_t group_size) const;

 private:
  std::map<int64_t, std::vector<std::string>> by_cols_;
  size_t count_ = 0;
};

}  // namespace qforge
