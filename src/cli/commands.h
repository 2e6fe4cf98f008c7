// The qforge subcommands, free of argument parsing so they can be tested and
// reused. Each returns a process exit code and prints its own errors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qforge::cli {

struct GlobalOptions {
  int threads = 0;  // 0: all cores
  bool quiet = false;
  bool json = false;
  // Decoded (F32) weights are kept between chunks when the whole model fits
  // this many MiB; else one layer at a time is decoded per pass. 0: never.
  int64_t cache_mb = 2048;
  // BPE pre-tokenizer name for a Hugging Face folder whose tokenizer qforge
  // cannot identify (every command that opens a model takes it).
  std::string tokenizer_pre;
  // Control tokens written in a --text file become those tokens
  // (perplexity, eval, imatrix: --parse-special; off as in llama.cpp).
  bool parse_special = false;
};

struct QuantizeArgs {
  std::string source;
  std::string type;
  std::string output;  // empty: <model>-<TYPE>.gguf in the current directory
  bool allow_requantize = false;
  bool pure = false;
  bool leave_output_tensor = false;
  std::string imatrix;
  std::vector<std::string> include_weights, exclude_weights;
  std::vector<std::string> tensor_types;  // PATTERN=TYPE
  std::string tensor_type_file;
  std::string output_tensor_type, token_embedding_type;
  // Integer weight-only checkpoints for GPU runtimes (--scheme).
  std::string scheme;                       // W4A16, W4A16_ASYM, W8A16, ... (default W4A16; W4A16_ASYM for AWQ)
  std::string method;                       // rtn, gptq (default), awq
  std::string layout = "compressed-tensors";  // compressed-tensors, gptq, awq
  int64_t group_size = 128;                 // -1: per channel
  std::string calib;
  int64_t calib_samples = 128;
  int64_t calib_seqlen = 2048;
  int64_t awq_search_samples = 16;
  int64_t min_expert_tokens = 32;  // MoE: experts routed fewer calibration tokens are rounded to nearest
  float damp = 0.01f;
  bool act_order = false;
  bool static_groups = false;
  bool resume = false;  // go on from an interrupted calibrated run's journal
  std::string max_shard_size = "5GB";
  std::vector<std::string> ignore;
  bool quantize_lm_head = false;
};

struct InspectArgs {
  std::string path;
  int max_array_items = 8;
};

struct PerplexityArgs {
  std::string model;
  std::string text;
  int64_t ctx = 512;
  int64_t chunks = -1;
};

struct TokenizeArgs {
  std::string model;
  std::string prompt;
  std::string file;
  bool ids = false;
  bool no_bos = false;
  bool no_parse_special = false;  // control tokens in the text stay text
};

struct ImatrixArgs {
  std::string model;
  std::string text;
  std::string output = "imatrix.gguf";
  int64_t ctx = 512;
  int64_t chunks = -1;
  bool process_output = false;
};

struct EvalArgs {
  std::string base;               // the original model (or empty with base_logits)
  std::vector<std::string> models;
  std::string text;
  int64_t ctx = 512;
  int64_t chunks = -1;
  std::string save_base;          // write the base log-probabilities here
  std::string base_logits;        // read them from here instead of running the base
};

struct GenerateArgs {
  std::string model;
  std::string prompt;
  int n = 64;
  float temp = 0.0f;
  uint64_t seed = 0;
  int64_t ctx = 0;  // 0: the model's trained context, as llama.cpp's default
};

int RunGenerate(const GlobalOptions& g, const GenerateArgs& a);
int RunEval(const GlobalOptions& g, const EvalArgs& a);
int RunImatrix(const GlobalOptions& g, const ImatrixArgs& a);
int RunTokenize(const GlobalOptions& g, const TokenizeArgs& a);
int RunPerplexity(const GlobalOptions& g, const PerplexityArgs& a);
int RunQuantize(const GlobalOptions& g, const QuantizeArgs& a);
int RunIntQuantize(const GlobalOptions& g, const QuantizeArgs& a);
int RunIntPlan(const GlobalOptions& g, const QuantizeArgs& a);
int RunPlan(const GlobalOptions& g, const QuantizeArgs& a);
int RunInspect(const GlobalOptions& g, const InspectArgs& a);
int RunListFormats(const GlobalOptions& g);

}  // namespace qforge::cli
