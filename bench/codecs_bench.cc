// Encode and decode throughput of every codec (MB/s of F32 data, 1 thread),
// with and without importance weights, and whole-model quantization of the
// bundled model (Q4_K_M and Q6_K, 2 threads).
#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>
#include <vector>

#include "codecs/ggml_types.h"
#include "model/model.h"
#include "plan/plan.h"
#include "sinks/gguf_sink.h"

namespace {
namespace fs = std::filesystem;
using qforge::GgmlType;

constexpr int64_t kRow = 4096;
constexpr int kRows = 64;  // 1 MiB of floats per iteration

const std::vector<float>& Data() {
  static const std::vector<float> d = [] {
    std::vector<float> v(kRow * kRows);
    std::mt19937 rng(1);
    std::normal_distribution<float> n(0.0f, 0.02f);
    for (auto& x : v) x = n(rng);
    return v;
  }();
  return d;
}

const std::vector<float>& Importance() {
  static const std::vector<float> w = [] {
    std::vector<float> v(kRow);
    std::mt19937 rng(2);
    std::uniform_real_distribution<float> u(0.1f, 2.0f);
    for (auto& x : v) x = u(rng);
    return v;
  }();
  return w;
}

void BM_Encode(benchmark::State& state, GgmlType t, bool imatrix) {
  const auto& tr = qforge::TraitsOf(t);
  const auto& x = Data();
  const size_t rb = qforge::RowBytes(t, kRow);
  std::vector<uint8_t> q(rb * kRows);
  const float* w = imatrix ? Importance().data() : nullptr;
  for (auto _ : state) {
    for (int r = 0; r < kRows; ++r) tr.encode(x.data() + r * kRow, w, q.data() + r * rb, kRow);
    benchmark::DoNotOptimize(q.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kRow * kRows * 4);
}

void BM_Decode(benchmark::State& state, GgmlType t) {
  const auto& tr = qforge::TraitsOf(t);
  const auto& x = Data();
  const size_t rb = qforge::RowBytes(t, kRow);
  std::vector<uint8_t> q(rb * kRows);
  for (int r = 0; r < kRows; ++r) tr.encode(x.data() + r * kRow, nullptr, q.data() + r * rb, kRow);
  std::vector<float> y(x.size());
  for (auto _ : state) {
    tr.decode(q.data(), y.data(), kRow * kRows);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kRow * kRows * 4);
}

void RegisterCodecs() {
  const GgmlType types[] = {GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,   GgmlType::Q4_0,   GgmlType::Q4_1,
                            GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q2_K,   GgmlType::Q3_K,   GgmlType::Q4_K,
                            GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS, GgmlType::TQ1_0,
                            GgmlType::TQ2_0, GgmlType::MXFP4};
  for (GgmlType t : types) {
    const std::string n = qforge::GgmlTypeName(t);
    benchmark::RegisterBenchmark(("encode/" + n).c_str(), BM_Encode, t, false)->Unit(benchmark::kMillisecond);
    if (qforge::TraitsOf(t).quantized) {
      benchmark::RegisterBenchmark(("encode_imatrix/" + n).c_str(), BM_Encode, t, true)->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark(("decode/" + n).c_str(), BM_Decode, t)->Unit(benchmark::kMicrosecond);
  }
}

void BM_QuantizeModel(benchmark::State& state, const char* preset) {
  auto model = qforge::OpenModel(std::string(QFORGE_SOURCE_DIR) + "/models/house-14m");
  if (!model.ok()) {
    state.SkipWithError(model.status().message().c_str());
    return;
  }
  auto plan = qforge::BuildPlan(*model, *qforge::FindPreset(preset), {});
  if (!plan.ok()) {
    state.SkipWithError(plan.status().message().c_str());
    return;
  }
  const fs::path dir = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  const std::string out = (dir / "qforge-bench-model.gguf").string();
  qforge::SinkOptions so;
  so.threads = 2;
  for (auto _ : state) {
    auto s = qforge::WriteGguf(*plan, out, so);
    if (!s.ok()) {
      state.SkipWithError(s.message().c_str());
      break;
    }
  }
  fs::remove(out);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(model->n_bytes()));
}

}  // namespace

int main(int argc, char** argv) {
  RegisterCodecs();
  benchmark::RegisterBenchmark("quantize_model/house-14m/Q4_K_M/2threads", BM_QuantizeModel, "Q4_K_M")
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("quantize_model/house-14m/Q6_K/2threads", BM_QuantizeModel, "Q6_K")
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
