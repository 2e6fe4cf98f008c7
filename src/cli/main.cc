// qforge: quantize LLMs for the runtimes people use, and measure what it cost.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  using namespace qforge::cli;
  CLI::App app{"qforge: post-training quantization of large language models.\n"
               "Reads a Hugging Face folder or a GGUF file; writes GGUF that llama.cpp loads unchanged."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "qforge 0.1.0");
  GlobalOptions g;
  app.add_option("-t,--threads", g.threads, "Worker threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_flag("-q,--quiet", g.quiet, "No progress bar or summary on the terminal");
  app.add_flag("--json", g.json, "Print results as one JSON document on stdout");

  QuantizeArgs qa;
  auto* quant = app.add_subcommand("quantize", "Convert or quantize a model to GGUF");
  quant->add_option("source", qa.source, "Hugging Face folder (config.json + *.safetensors) or .gguf file")
      ->required();
  quant->add_option("-f,--type", qa.type, "Output type: F32, F16, BF16, Q8_0 (see list-formats)")->required();
  quant->add_option("-o,--output", qa.output,
                    "Output file (default: <model>-<TYPE>.gguf in the current directory)");
  quant->add_option("--tokenizer-pre", qa.tokenizer_pre,
                    "BPE pre-tokenizer name to record (e.g. llama-bpe, qwen2), when detection fails");
  quant->add_flag("--allow-requantize", qa.allow_requantize,
                  "Allow converting tensors of an already quantized GGUF (quality suffers)");
  for (auto* sub : {quant}) {
    sub->add_option("-t,--threads", g.threads, "Worker threads (default: all cores)");
    sub->add_flag("-q,--quiet", g.quiet, "No progress bar or summary");
    sub->add_flag("--json", g.json, "Print the summary as JSON");
  }

  InspectArgs ia;
  auto* insp = app.add_subcommand("inspect", "Show a model's metadata and tensor table");
  insp->add_option("path", ia.path, "GGUF file or Hugging Face folder")->required();
  insp->add_option("--items", ia.max_array_items, "Array items shown per metadata key")->check(CLI::NonNegativeNumber);
  insp->add_flag("--json", g.json, "Print everything as JSON (arrays in full)");

  auto* lf = app.add_subcommand("list-formats", "List the output types qforge writes");
  lf->add_flag("--json", g.json, "Print as JSON");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (*quant) return RunQuantize(g, qa);
  if (*insp) return RunInspect(g, ia);
  if (*lf) return RunListFormats(g);
  return 2;
}
