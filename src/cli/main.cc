// qforge: quantize LLMs for the runtimes people use, and measure what it cost.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace qforge::cli {
namespace {

// Every subcommand's arguments, bound to the parser.
struct Args {
  GlobalOptions g;
  QuantizeArgs qa;
  InspectArgs ia;
  GenerateArgs ga;
  EvalArgs ea;
  ImatrixArgs ima;
  TokenizeArgs ta;
  PerplexityArgs pa;
};

void AddCacheOption(CLI::App* sub, GlobalOptions& g) {
  sub->add_option("--cache-mb", g.cache_mb,
                  "Keep decoded weights between chunks when the model's F32 form fits this many MiB (default 2048; 0: "
                  "decode per pass)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
}

void AddTokenizerPreOption(CLI::App* sub, GlobalOptions& g) {
  sub->add_option("--tokenizer-pre", g.tokenizer_pre,
                  "BPE pre-tokenizer of a Hugging Face folder whose tokenizer is not recognised (e.g. llama-bpe, qwen2)");
}

// --chunks: a positive count; leaving it out means every chunk.
void AddChunksOption(CLI::App* sub, int64_t& chunks, const std::string& what) {
  sub->add_option("--chunks", chunks, what + " at most this many chunks (default: all)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            size_t used = 0;
            long long n = 0;
            try {
              n = std::stoll(v, &used);
            } catch (...) {
              used = 0;
            }
            if (used != v.size() || v.empty()) return "expected a whole number of chunks, found '" + v + "'";
            if (n < 1) return "must be at least 1, found " + v + " (leave --chunks out to use every chunk)";
            return "";
          },
          "N>=1"));
}

// Options quantize and plan share: the GGUF preset and per-tensor controls.
void AddGgufOptions(CLI::App* sub, Args& a) {
  QuantizeArgs& qa = a.qa;
  GlobalOptions& g = a.g;
  sub->add_option("source", qa.source, "Hugging Face folder (config.json + *.safetensors) or .gguf file")->required();
  sub->add_option("-f,--type", qa.type, "GGUF output type or preset, e.g. Q4_K_M, Q8_0, IQ4_XS (see list-formats)");
  sub->add_option("--imatrix", qa.imatrix, "Importance matrix (llama.cpp GGUF imatrix or legacy .dat)");
  sub->add_option("--include-weights", qa.include_weights,
                  "Use the imatrix only for tensors whose name contains this (repeatable)")
      ->allow_extra_args(false);
  sub->add_option("--exclude-weights", qa.exclude_weights,
                  "Do not use the imatrix for tensors whose name contains this (repeatable)")
      ->allow_extra_args(false);
  sub->add_option("--tensor-type", qa.tensor_types,
                  "REGEX=TYPE: tensors whose name matches REGEX get TYPE; first match wins (repeatable)")
      ->allow_extra_args(false);
  sub->add_option("--tensor-type-file", qa.tensor_type_file, "File of whitespace-separated REGEX=TYPE entries");
  sub->add_option("--output-tensor-type", qa.output_tensor_type, "Type of output.weight");
  sub->add_option("--token-embedding-type", qa.token_embedding_type, "Type of token_embd.weight");
  sub->add_flag("--pure", qa.pure, "No mixture rules: every quantizable tensor gets the preset's type");
  sub->add_flag("--leave-output-tensor", qa.leave_output_tensor, "Keep output.weight as it is");
  AddTokenizerPreOption(sub, a.g);
  sub->add_flag("--allow-requantize", qa.allow_requantize,
                "Allow converting tensors of an already quantized GGUF (quality suffers)");
  sub->add_option("-t,--threads", g.threads, "Worker threads (default: all cores)");
  sub->add_flag("-q,--quiet", g.quiet, "No progress bar or summary");
  sub->add_flag("--json", g.json, "Print the table and totals as JSON");
}

// Options of safetensors checkpoints (--scheme) and of GPTQ.
void AddSchemeOptions(CLI::App* sub, QuantizeArgs& qa) {
  auto add_int = [](CLI::Option* o) { o->group("Safetensors checkpoints (--scheme) and GPTQ"); };
  sub->add_option("--scheme", qa.scheme,
                  "Integer weight-only checkpoint for vLLM/Transformers instead of GGUF: W4A16, W4A16_ASYM, W8A16 "
                  "(also W2A16, W3A16); default W4A16, or W4A16_ASYM with --method awq")
      ->group("Safetensors checkpoints (--scheme) and GPTQ");
  add_int(sub->add_option("--method", qa.method,
                          "rtn, gptq (default) or awq: a safetensors checkpoint; with -f, gptq fills the GGUF blocks "
                          "by GPTQ (needs --calib)"));
  add_int(sub->add_option("--layout", qa.layout, "compressed-tensors, gptq or awq")->capture_default_str());
  add_int(sub->add_option("--group-size", qa.group_size, "Columns per scale; -1 for one per output channel")
              ->capture_default_str());
  add_int(sub->add_option("--calib", qa.calib, "Calibration text (GPTQ, AWQ; also -f with --method gptq)"));
  add_int(
      sub->add_option("--calib-samples", qa.calib_samples, "Calibration sequences (at most)")->capture_default_str());
  add_int(sub->add_option("--calib-seqlen", qa.calib_seqlen,
                          "Tokens per sequence, clipped to the model's context and the text")
              ->capture_default_str());
  add_int(
      sub->add_option("--awq-search-samples", qa.awq_search_samples,
                      "AWQ: calibration sequences the scale search's loss runs on (0: all; the mean |x| uses all)")
          ->capture_default_str());
  add_int(sub->add_option("--min-expert-tokens", qa.min_expert_tokens,
                          "MoE (GPTQ, AWQ): an expert routed fewer calibration tokens than this is rounded to nearest "
                          "(RTN) instead of calibrated; the coverage table shows tokens per expert and layer")
              ->capture_default_str());
  add_int(sub->add_option("--damp", qa.damp, "GPTQ dampening, a fraction of the Hessian's mean diagonal")
              ->capture_default_str());
  add_int(sub->add_flag("--act-order", qa.act_order,
                        "GPTQ: quantize columns by decreasing activation energy (writes g_idx)"));
  add_int(sub->add_flag("--static-groups", qa.static_groups,
                        "GPTQ with --act-order: group scales from the original column ranges"));
  add_int(sub->add_flag("--quantize-lm-head", qa.quantize_lm_head,
                        "Quantize lm_head too (compressed-tensors, gptq; an untied lm_head)"));
  add_int(sub->add_option("--max-shard-size", qa.max_shard_size, "Largest safetensors file, e.g. 5GB, 500MB")
              ->capture_default_str());
  add_int(sub->add_option("--ignore", qa.ignore,
                          "REGEX: leave matching modules (e.g. 'mlp\\.down_proj') in float; repeatable")
              ->allow_extra_args(false));
}

void AddInspect(CLI::App* insp, Args& a) {
  InspectArgs& ia = a.ia;
  GlobalOptions& g = a.g;
  insp->add_option("path", ia.path, "GGUF file (a model or an imatrix) or Hugging Face folder")->required();
  AddTokenizerPreOption(insp, g);
  insp->add_option("--items", ia.max_array_items, "Array items shown per metadata key")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  insp->add_flag("--json", g.json, "Print everything as JSON (arrays in full)");
}

void AddGenerate(CLI::App* gen, Args& a) {
  GenerateArgs& ga = a.ga;
  GlobalOptions& g = a.g;
  gen->add_option("model", ga.model, "GGUF file or Hugging Face folder")->required();
  AddTokenizerPreOption(gen, g);
  gen->add_option("-p,--prompt", ga.prompt, "Prompt text")->required();
  gen->add_option("-n", ga.n, "Tokens to generate (default 64)")->check(CLI::Range(1, 1 << 20));
  gen->add_option("--temp", ga.temp, "Sampling temperature; 0 is greedy (default)")->check(CLI::Range(0.0f, 100.0f));
  gen->add_option("--seed", ga.seed, "Random seed for sampling");
  gen->add_option("-c,--ctx", ga.ctx,
                  "Context length, as llama.cpp's -c (default: the model's trained context); LongRoPE models "
                  "(Phi-3) use their long factors above the original context")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  gen->add_option("-t,--threads", g.threads, "Worker threads (default: all cores)");
  gen->add_flag("-q,--quiet", g.quiet, "No timing line on stderr");
  gen->add_flag("--json", g.json, "Print {prompt, text, tokens, seconds} as JSON");
}

void AddEval(CLI::App* ev, Args& a) {
  EvalArgs& ea = a.ea;
  GlobalOptions& g = a.g;
  ev->add_option("models", ea.models, "Quantized models (GGUF files or folders)")->required();
  ev->add_option("--base", ea.base, "The original model");
  ev->add_option("--text,-f", ea.text, "Evaluation text (not needed with --base-logits)");
  ev->add_option("--ctx,-c", ea.ctx, "Tokens per chunk (default 512)")->check(CLI::Range(int64_t{4}, int64_t{1} << 20));
  AddChunksOption(ev, ea.chunks, "Evaluate");
  AddTokenizerPreOption(ev, g);
  ev->add_flag("--parse-special", g.parse_special,
                 "Match special tokens written in the text (<|im_start|>, ...) as single tokens, for chat-formatted "
                 "text; by default the text is plain, as llama.cpp's perplexity and imatrix read it");
  ev->add_option("--save-base", ea.save_base,
                 "Save the base's log-probabilities (llama.cpp KL-divergence base format)");
  ev->add_option("--base-logits", ea.base_logits,
                 "Read the base's log-probabilities from a file (qforge's or llama-perplexity --kl-divergence-base)");
  AddCacheOption(ev, g);
  ev->add_option("-t,--threads", g.threads, "Worker threads (default: all cores)");
  ev->add_flag("-q,--quiet", g.quiet, "No progress bars");
  ev->add_flag("--json", g.json, "Print {base, models: [...]} as JSON");
}

void AddImatrix(CLI::App* imx, Args& a) {
  ImatrixArgs& ima = a.ima;
  GlobalOptions& g = a.g;
  imx->add_option("model", ima.model, "GGUF file or Hugging Face folder")->required();
  imx->add_option("--text,-f", ima.text, "Calibration text")->required();
  imx->add_option("-o,--output", ima.output, "Output file (default imatrix.gguf)");
  imx->add_option("--ctx,-c", ima.ctx, "Tokens per chunk (default 512)")
      ->check(CLI::Range(int64_t{16}, int64_t{1} << 20));
  AddChunksOption(imx, ima.chunks, "Use");
  AddTokenizerPreOption(imx, g);
  imx->add_flag("--parse-special", g.parse_special,
                 "Match special tokens written in the text (<|im_start|>, ...) as single tokens, for chat-formatted "
                 "text; by default the text is plain, as llama.cpp's perplexity and imatrix read it");
  imx->add_flag("--process-output", ima.process_output, "Also collect output.weight");
  AddCacheOption(imx, g);
  imx->add_option("-t,--threads", g.threads, "Worker threads (default: all cores)");
  imx->add_flag("-q,--quiet", g.quiet, "No progress bar or summary");
  imx->add_flag("--json", g.json, "Print the summary as JSON");
}

void AddTokenize(CLI::App* tokz, Args& a) {
  TokenizeArgs& ta = a.ta;
  GlobalOptions& g = a.g;
  tokz->add_option("model", ta.model, "GGUF file or Hugging Face folder")->required();
  AddTokenizerPreOption(tokz, g);
  auto* p_opt = tokz->add_option("-p,--prompt", ta.prompt, "Text to tokenize");
  auto* f_opt = tokz->add_option("-f,--file", ta.file, "File whose contents to tokenize");
  p_opt->excludes(f_opt);
  tokz->add_flag("--ids", ta.ids, "Print only the ids, as one list");
  tokz->add_flag("--no-bos", ta.no_bos, "Do not add the BOS token");
  tokz->add_flag("--no-parse-special", ta.no_parse_special,
                 "Read special tokens written in the text (<|im_start|>, <s>) as plain text; by default they are "
                 "matched as single tokens, as Hugging Face and llama-tokenize do");
  tokz->add_flag("--json", g.json, "Print [{id, piece}] as JSON");
}

void AddPerplexity(CLI::App* ppl, Args& a) {
  PerplexityArgs& pa = a.pa;
  GlobalOptions& g = a.g;
  ppl->add_option("model", pa.model, "GGUF file or Hugging Face folder")->required();
  ppl->add_option("--text,-f", pa.text, "Text file to evaluate")->required();
  ppl->add_option("--ctx,-c", pa.ctx, "Tokens per chunk (default 512)")
      ->check(CLI::Range(int64_t{4}, int64_t{1} << 20));
  AddChunksOption(ppl, pa.chunks, "Evaluate");
  AddTokenizerPreOption(ppl, g);
  ppl->add_flag("--parse-special", g.parse_special,
                 "Match special tokens written in the text (<|im_start|>, ...) as single tokens, for chat-formatted "
                 "text; by default the text is plain, as llama.cpp's perplexity and imatrix read it");
  AddCacheOption(ppl, g);
  ppl->add_option("-t,--threads", g.threads, "Worker threads (default: all cores)");
  ppl->add_flag("-q,--quiet", g.quiet, "No progress bar");
  ppl->add_flag("--json", g.json, "Print {ppl, ppl_stderr, tokens, tokens_per_second} as JSON");
}

}  // namespace
}  // namespace qforge::cli

int main(int argc, char** argv) {
  using namespace qforge::cli;
  CLI::App app{
      "qforge: post-training quantization of large language models.\n"
      "Reads a Hugging Face folder or a GGUF file; writes GGUF that llama.cpp loads unchanged."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "qforge 0.1.0");
  Args a;
  GlobalOptions& g = a.g;
  app.add_option("-t,--threads", g.threads, "Worker threads (default: all cores)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  app.add_flag("-q,--quiet", g.quiet, "No progress bar or summary on the terminal");
  app.add_flag("--json", g.json, "Print results as one JSON document on stdout");

  auto* quant = app.add_subcommand("quantize", "Convert or quantize a model to GGUF");
  auto* plan = app.add_subcommand("plan", "Print the type and size of every tensor a quantize run would write");
  for (auto* sub : {quant, plan}) AddGgufOptions(sub, a);
  quant->add_option("-o,--output", a.qa.output,
                    "Output file or folder (default: <model>-<TYPE>.gguf, or <model>-<SCHEME>-<method> for --scheme)");
  for (auto* sub : {quant, plan}) AddSchemeOptions(sub, a.qa);
  quant->add_flag("--resume", a.qa.resume,
                  "GPTQ/AWQ: go on from the last layer an interrupted run of the same output finished (its journal "
                  "is <output>.qforge-resume); the result is the same bytes")
      ->group("Safetensors checkpoints (--scheme) and GPTQ");
  auto* insp = app.add_subcommand("inspect", "Show a model's metadata and tensor table");
  AddInspect(insp, a);
  auto* gen = app.add_subcommand("generate", "Continue a prompt (greedy at --temp 0)");
  AddGenerate(gen, a);
  auto* ev =
      app.add_subcommand("eval", "Compare quantized models with the original: PPL, KL divergence, top-1 agreement");
  AddEval(ev, a);
  auto* imx = app.add_subcommand("imatrix", "Collect an importance matrix (llama.cpp's GGUF imatrix format)");
  AddImatrix(imx, a);
  auto* tokz = app.add_subcommand("tokenize", "Print the tokens of a text as the model's tokenizer splits it");
  AddTokenize(tokz, a);
  auto* ppl = app.add_subcommand("perplexity", "Perplexity of a model on a text, as llama-perplexity measures it");
  AddPerplexity(ppl, a);
  auto* lf = app.add_subcommand("list-formats", "List the output types qforge writes");
  lf->add_flag("--json", g.json, "Print as JSON");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (*quant) return RunQuantize(g, a.qa);
  if (*plan) return RunPlan(g, a.qa);
  if (*insp) return RunInspect(g, a.ia);
  if (*lf) return RunListFormats(g);
  if (*ppl) return RunPerplexity(g, a.pa);
  if (*tokz) return RunTokenize(g, a.ta);
  if (*imx) return RunImatrix(g, a.ima);
  if (*ev) return RunEval(g, a.ea);
  if (*gen) return RunGenerate(g, a.ga);
  return 2;
}
