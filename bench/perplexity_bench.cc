// Perplexity throughput (tokens/s) at ctx 256 with 2 threads on the bundled
// model as F32, Q8_0 and Q4_K_M, and the peak memory of each run, with weights
// decoded a layer at a time per chunk ("layer") and kept decoded between
// chunks ("cached", what the CLI does when the model fits --cache-mb). Each
// run is a child process so its peak resident size is its own.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/llama_engine.h"
#include "eval/perplexity.h"
#include "model/model.h"
#include "plan/plan.h"
#include "sinks/gguf_sink.h"
#include "tokenizer/spm_tokenizer.h"

namespace {
namespace fs = std::filesystem;

int RunOne(const std::string& path, const std::string& text, int chunks, uint64_t cache_bytes) {
  auto model = qforge::OpenModel(path);
  if (!model.ok()) return 1;
  auto tok = qforge::SpmTokenizer::FromMetadata(model->metadata, path);
  auto engine = qforge::LlamaEngine::Create(*model, 2, cache_bytes);
  if (!tok.ok() || !engine.ok()) return 1;
  qforge::PerplexityOptions o;
  o.n_ctx = 256;
  o.max_chunks = chunks;
  o.bos = tok->bos_id();
  auto r = qforge::RunPerplexity(**engine, tok->Encode(text, true), o);
  if (!r.ok()) return 1;
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("%-22s %-7s PPL %8.4f  %8.1f tokens/s  peak RSS %6.1f MiB\n", fs::path(path).filename().c_str(),
              cache_bytes > 0 ? "cached" : "layer", r->ppl,
              r->tokens_per_second(), static_cast<double>(ru.ru_maxrss) / 1024.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string src = std::string(QFORGE_SOURCE_DIR) + "/models/house-14m";
  const std::string text_path = argc > 1 ? argv[1] : std::string(QFORGE_SOURCE_DIR) + "/../shared/text/eval.txt";
  const int chunks = argc > 2 ? std::atoi(argv[2]) : 32;
  std::ifstream in(text_path);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", text_path.c_str());
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const fs::path dir = fs::temp_directory_path() / ("qforge-ppl-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::printf("perplexity, ctx 256, %d chunks, 2 threads, house-14m\n", chunks);
  std::fflush(stdout);
  for (const char* type : {"F32", "Q8_0", "Q4_K_M"}) {
    const std::string out = (dir / (std::string("house-14m-") + type + ".gguf")).string();
    {
      auto model = qforge::OpenModel(src);
      auto plan = qforge::BuildPlan(*model, *qforge::FindPreset(type), {});
      qforge::SinkOptions so;
      so.threads = 2;
      if (!plan.ok() || !qforge::WriteGguf(*plan, out, so).ok()) return 1;
    }
    for (uint64_t cache : {uint64_t{0}, uint64_t{2048} << 20}) {
      const pid_t pid = fork();
      if (pid == 0) {
        const int rc = RunOne(out, ss.str(), chunks, cache);
        std::fflush(stdout);
        _exit(rc);
      }
      int status = 0;
      waitpid(pid, &status, 0);
    }
  }
  fs::remove_all(dir);
  return 0;
}
