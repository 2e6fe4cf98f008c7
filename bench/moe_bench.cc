// The engine's throughput (tokens/s, perplexity at ctx 256, 2 threads) on
// a mixture-of-experts layer of real shape against dense layers: a Llama
// 3.2 1B-shaped dense model (hidden 2048, FFN 8192), a Qwen3-30B-A3B-shaped
// MoE (hidden 2048, 128 experts of width 768, 8 used per token) written as
// Mixtral, and the dense model of the MoE's active size (FFN 8 x 768 =
// 6144). Random BF16 weights (bench/make_model), LAYERS layers each. Runs
// are interleaved, three rounds; the median of each is printed, with the
// MoE's ratio to its active-size dense model.
//   moe_bench [LAYERS] [CHUNKS] [TEXT]      (default 2, 4, ../shared/text/eval.txt)
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "engine/llama_engine.h"
#include "eval/perplexity.h"
#include "model/model.h"
#include "model/model_tokenizer.h"

namespace {
namespace fs = std::filesystem;

struct Shape {
  const char* name;
  int hidden, ffn, experts, used;
};

// Tokens/s of one perplexity run over `chunks` chunks; < 0 on failure.
double Run(const std::string& dir, const std::string& text, int chunks) {
  auto model = qforge::OpenModel(dir);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().message().c_str());
    return -1;
  }
  auto tok = qforge::TokenizerForModel(*model);
  auto engine = qforge::LlamaEngine::Create(*model, 2);
  if (!tok.ok() || !engine.ok()) return -1;
  qforge::PerplexityOptions o;
  o.n_ctx = 256;
  o.max_chunks = chunks;
  o.bos = (*tok)->bos_id();
  auto r = qforge::RunPerplexity(**engine, (*tok)->Encode(text, true), o);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().message().c_str());
    return -1;
  }
  return r->tokens_per_second();
}

}  // namespace

int main(int argc, char** argv) {
  const int layers = argc > 1 ? std::atoi(argv[1]) : 2;
  const int chunks = argc > 2 ? std::atoi(argv[2]) : 4;
  const std::string text_path = argc > 3 ? argv[3] : std::string(QFORGE_SOURCE_DIR) + "/../shared/text/eval.txt";
  std::ifstream in(text_path);
  if (!in || layers < 1 || chunks < 1) {
    std::fprintf(stderr, "usage: moe_bench [LAYERS] [CHUNKS] [TEXT]\n");
    return 2;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::vector<Shape> shapes = {{"dense 2048/8192 (Llama 3.2 1B layer)", 2048, 8192, 0, 0},
                                     {"MoE 2048/128x768 top-8 (Qwen3-30B-A3B layer)", 2048, 768, 128, 8},
                                     {"dense 2048/6144 (the MoE's active size)", 2048, 6144, 0, 0}};
  const fs::path work = fs::path("/var/tmp") / ("qforge-moe-bench-" + std::to_string(getpid()));
  fs::create_directories(work);
  const std::string make = (fs::path(argv[0]).parent_path() / "make_model").string();
  std::vector<std::string> dirs;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Shape& s = shapes[i];
    dirs.push_back((work / ("m" + std::to_string(i))).string());
    std::string cmd = make + " " + dirs.back() + " " + std::to_string(layers) + " " + std::to_string(s.hidden) + " " +
                      std::to_string(s.ffn);
    if (s.experts > 0) cmd += " " + std::to_string(s.experts) + " " + std::to_string(s.used);
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "moe_bench: %s failed\n", cmd.c_str());
      fs::remove_all(work);
      return 1;
    }
  }
  std::printf("engine throughput, perplexity at ctx 256, %d chunks, 2 threads, %d layers, random BF16 weights\n", chunks,
              layers);
  std::map<size_t, std::vector<double>> tps;
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      const double t = Run(dirs[i], ss.str(), chunks);
      if (t < 0) {
        fs::remove_all(work);
        return 1;
      }
      tps[i].push_back(t);
    }
  }
  std::vector<double> median(shapes.size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    auto v = tps[i];
    std::sort(v.begin(), v.end());
    median[i] = v[v.size() / 2];
    std::printf("  %-48s %8.1f tokens/s (runs:", shapes[i].name, median[i]);
    for (double t : tps[i]) std::printf(" %.1f", t);
    std::printf(")\n");
  }
  std::printf("MoE / dense of the same active size: %.2fx\n", median[1] / median[2]);
  fs::remove_all(work);
  return 0;
}
