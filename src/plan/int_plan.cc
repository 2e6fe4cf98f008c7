#include "plan/int_plan.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <regex>

#include "arch/llama_family.h"
#include "io/json_file.h"

namespace qforge {
namespace fs = std::filesystem;
namespace {

// Float tensors keep the source's half type: BF16 unless config.json says float16.
GgmlType FloatTypeOf(const Model& model) {
  auto cfg = ReadJsonFile((fs::path(model.path) / "config.json").string());
  if (!cfg.ok()) return GgmlType::BF16;
  for (const char* key : {"torch_dtype", "dtype"}) {
    if (cfg->contains(key) && (*cfg)[key].is_string() && (*cfg)[key].get<std::string>() == "float16") return GgmlType::F16;
  }
  return GgmlType::BF16;
}

// act-order groups (non-monotonic g_idx) need a g_idx tensor in compressed-tensors.
bool ActOrderGroups(const IntPlanOptions& opts, const IntQuantSpec& spec) {
  return opts.method == Method::kGptq && opts.act_order && !opts.static_groups && spec.group_size > 0;
}

// An MoE router: ffn_gate_inp, or Qwen2-MoE's shared-expert gate.
bool IsRouter(const BlockLayout& block, const std::string& gguf_name) {
  if (block.router.empty() || gguf_name.rfind("blk.", 0) != 0) return false;
  const size_t dot = gguf_name.find('.', 4);
  const std::string short_name = dot == std::string::npos ? "" : gguf_name.substr(dot + 1);
  return short_name == block.router + ".weight" || short_name == block.router + "_shexp.weight";
}

// Why a tensor the ignore list did not name stays float.
std::string FloatReason(const ModelTensor& t) {
  if (t.name == "token_embd.weight") return "embedding";
  if (t.name == "output.weight") return "lm_head";
  return "not a linear";
}

Status CheckPlanOptions(const Model& model, const IntPlanOptions& opts) {
  if (model.source != ModelSource::kHfFolder) {
    return Status::Error(model.path + ": safetensors layouts are written from a Hugging Face folder (config.json + safetensors), not from GGUF");
  }
  if (opts.quantize_lm_head) {
    if (model.Find("output.weight") == nullptr) {
      return Status::Error(model.path + ": --quantize-lm-head: the model ties lm_head to embed_tokens, which these layouts keep in float");
    }
    if (opts.layout == IntLayout::kAwq) {
      return Status::Error("--quantize-lm-head: the AWQ layout has no quantized lm_head (use compressed-tensors or gptq)");
    }
  }
  return Status::Ok();
}

Result<std::vector<std::regex>> CompileIgnore(const std::vector<std::string>& patterns) {
  std::vector<std::regex> out;
  for (const auto& r : patterns) {
    try {
      out.emplace_back(r);
    } catch (const std::regex_error& e) {
      return Status::Error("--ignore '" + r + "': not a valid regular expression (" + e.what() + ")");
    }
  }
  return out;
}

// The recipe of a quantized linear; errors when the layout cannot store it.
Status QuantizedRecipe(const Model& model, const ModelTensor& t, const IntPlanOptions& opts, const IntQuantSpec& spec,
                       StDtype float_dtype, TensorPlan* tp, std::vector<std::string>* warnings) {
  if (t.is_packed()) {
    if (!opts.allow_requantize) {
      return Status::Error(model.path + ": tensor '" + t.source_name + "': already quantized (" + t.source_dtype +
                           "); pass --allow-requantize to quantize it again (quality suffers)");
    }
    warnings->push_back("requantizing '" + t.source_name + "' from " + t.source_dtype +
                        ": quality suffers compared with quantizing the original weights");
  }
  const int64_t experts = t.n_experts();
  const int64_t N = t.n_rows() / experts, K = t.ne[0];
  const bool act = ActOrderGroups(opts, spec);
  QF_RETURN_IF_ERROR(LayoutSupports(opts.layout, N, K, spec, act)
                         .WithContext(model.path + ": tensor '" + t.source_name + "' [" + std::to_string(N) + ", " +
                                      std::to_string(K) + "]: " + IntLayoutName(opts.layout)));
  tp->int_scheme = spec;
  tp->method = opts.method;
  tp->reason = "scheme";
  for (const auto& module : ModulesOf(t)) {
    for (const auto& s : LayoutTensors(opts.layout, module, N, K, spec, act, float_dtype)) tp->nbytes += s.nbytes();
  }
  return Status::Ok();
}

}  // namespace

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

std::string ModuleOf(const std::string& source_name) {
  const auto dot = source_name.rfind(".weight");
  return dot == std::string::npos ? source_name : source_name.substr(0, dot);
}


std::string ExpertModule(const ModelTensor& t, int64_t e) {
  std::string name = ModuleOf(t.source_name);
  const size_t at = name.find("{e}");
  if (at != std::string::npos) name.replace(at, 3, std::to_string(e));
  return name;
}

std::vector<std::string> ModulesOf(const ModelTensor& t) {
  std::vector<std::string> out;
  for (int64_t e = 0; e < t.n_experts(); ++e) out.push_back(ExpertModule(t, e));
  return out;
}

void GroupSizeMisfits::Check(int64_t group_size, int64_t cols, const std::string& name) {
  if (group_size <= 0 || cols % group_size == 0) return;
  by_cols_[cols].push_back(name);
  ++count_;
}

Status GroupSizeMisfits::ToStatus(const std::string& model_path, int64_t group_size) const {
  if (count_ == 0) return Status::Ok();
  std::string list;
  for (const auto& [cols, names] : by_cols_) {
    list += (list.empty() ? "" : "; ") + std::to_string(cols) + " columns:";
    for (size_t i = 0; i < names.size(); ++i) list += (i ? ", " : " ") + names[i];
  }
  return Status::Error(model_path + ": group size " + std::to_string(group_size) + " does not divide the input of " +
                       std::to_string(count_) + " linear(s) (" + list +
                       "); choose a group size that divides every input, or leave these out with --ignore");
}

Result<Plan> BuildIntPlan(const Model& model, const IntPlanOptions& opts) {
  QF_RETURN_IF_ERROR(CheckPlanOptions(model, opts));
  QF_ASSIGN_OR_RETURN(std::vector<std::regex> ignore, CompileIgnore(opts.ignore));
  Plan plan;
  plan.warnings = model.warnings;
  plan.preset = opts.scheme;
  plan.output = PlanOutput::kCheckpoint;
  plan.layout = opts.layout;
  const GgmlType float_type = FloatTypeOf(model);
  const StDtype float_dtype = float_type == GgmlType::F16 ? StDtype::F16 : StDtype::BF16;
  IntQuantSpec spec = opts.spec;
  spec.scale_dtype = LayoutScaleDtype(opts.layout, float_dtype);
  spec.zero_at_least_one = opts.layout == IntLayout::kGptq && !spec.symmetric;
  plan.int_spec = spec;
  plan.act_order_groups = ActOrderGroups(opts, spec);
  plan.float_type = float_type;

  std::vector<const ModelTensor*> order;
  for (const auto& t : model.tensors) {
    if (!t.owned) order.push_back(&t);  // generated tensors (rope_freqs) are not part of an HF checkpoint
  }
  SortInLoaderOrder(&order);
  const BlockLayout& block = BlockOfModel(model);
  std::vector<TensorPlan> head;  // a quantized lm_head is written after the layers
  GroupSizeMisfits misfits;
  for (const ModelTensor* t : order) {
    TensorPlan tp;
    tp.source = t;
    tp.name = t->name;
    tp.ne = t->ne;
    if (t->n_experts() > 1 && t->source_name.find("{e}") == std::string::npos) {
      return Status::Error(model.path + ": tensor '" + t->source_name + "' stacks " + std::to_string(t->n_experts()) +
                           " experts but does not name them per expert; qforge cannot write its modules");
    }
    const bool is_head = opts.quantize_lm_head && t->name == "output.weight";
    bool quantize = IsLayerLinear(block, t->name) || is_head;
    if (IsRouter(block, t->name)) {
      // A Linear module the runtimes keep in float (vLLM builds MoE routers
      // without a quant config): the checkpoint's config must say so.
      tp.reason = "router";
      plan.ignored_modules.push_back(ModuleOf(t->source_name));
    }
    if (quantize) {
      // A stacked tensor is quantized or kept whole: the ignore list must
      // name all of its experts or none.
      const std::vector<std::string> modules = ModulesOf(*t);
      std::vector<std::string> hit;
      for (const auto& module : modules) {
        if (std::any_of(ignore.begin(), ignore.end(), [&](const std::regex& re) { return std::regex_search(module, re); })) {
          hit.push_back(module);
        }
      }
      if (!hit.empty() && hit.size() != modules.size()) {
        return Status::Error("--ignore names " + std::to_string(hit.size()) + " of the " + std::to_string(modules.size()) +
                             " experts stacked in layer tensor '" + t->name + "' (" + hit.front() +
                             ", ...); qforge quantizes a layer's experts together: ignore all of them or none");
      }
      if (!hit.empty()) {
        quantize = false;
        tp.reason = "--ignore";
        plan.ignored_modules.insert(plan.ignored_modules.end(), hit.begin(), hit.end());
      }
    }
    if (quantize && spec.group_size > 0 && t->ne[0] % spec.group_size != 0) {
      misfits.Check(spec.group_size, t->ne[0], t->source_name);
    } else if (quantize) {
      QF_RETURN_IF_ERROR(QuantizedRecipe(model, *t, opts, spec, float_dtype, &tp, &plan.warnings));
    } else {
      tp.type = float_type;
      tp.method = Method::kConvert;
      if (tp.reason.empty()) tp.reason = FloatReason(*t);
      tp.nbytes = static_cast<uint64_t>(t->n_elements()) * 2;
    }
    (is_head && quantize ? head : plan.tensors).push_back(std::move(tp));
  }
  QF_RETURN_IF_ERROR(misfits.ToStatus(model.path, spec.group_size));
  for (auto& tp : head) plan.tensors.push_back(std::move(tp));
  return plan;
}

}  // namespace qforge
