// Conversion throughput of the bundled model (input bytes per second) for
// F16 and Q8_0 output, with 1 and 2 threads. Output goes to a RAM-backed
// folder when one exists so the disk does not set the pace.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <string>

#include "model/model.h"
#include "plan/plan.h"
#include "sinks/gguf_sink.h"

namespace {
namespace fs = std::filesystem;

std::string ModelDir() { return std::string(QFORGE_SOURCE_DIR) + "/models/house-14m"; }

std::string OutPath() {
  const fs::path shm("/dev/shm");
  return ((fs::exists(shm) ? shm : fs::temp_directory_path()) / "qforge-bench.gguf").string();
}

void BM_Convert(benchmark::State& state, const char* type) {
  auto model = qforge::OpenModel(ModelDir());
  if (!model.ok()) {
    state.SkipWithError(model.status().message().c_str());
    return;
  }
  auto plan = qforge::BuildPlan(*model, *qforge::FindPreset(type), {});
  if (!plan.ok()) {
    state.SkipWithError(plan.status().message().c_str());
    return;
  }
  qforge::SinkOptions so;
  so.threads = static_cast<int>(state.range(0));
  const std::string out = OutPath();
  for (auto _ : state) {
    qforge::Status s = qforge::WriteGguf(*plan, out, so);
    if (!s.ok()) {
      state.SkipWithError(s.message().c_str());
      break;
    }
  }
  fs::remove(out);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(model->n_bytes()));
  state.counters["threads"] = static_cast<double>(state.range(0));
}

BENCHMARK_CAPTURE(BM_Convert, F16, "F16")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Convert, Q8_0, "Q8_0")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
