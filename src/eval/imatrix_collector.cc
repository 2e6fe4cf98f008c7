#include "eval/imatrix_collector.h"

#include <cmath>

#include "io/gguf.h"

namespace qforge {

namespace {

void Accumulate(ImatrixSums* m, const std::string& weight, int64_t mat, int64_t n_mat, const float* x, int64_t rows,
                int64_t cols) {
  if (mat < 0 || mat >= n_mat) return;  // the engine checked expert indices against expert_count
  auto& v = m->sums[weight];
  if (v.empty()) v.assign(static_cast<size_t>(n_mat * cols), 0.0f);
  auto& c = m->counts[weight];
  if (c.empty()) c.assign(static_cast<size_t>(n_mat), 0);
  float* acc = v.data() + mat * cols;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    for (int64_t j = 0; j < cols; ++j) acc[j] += xr[j] * xr[j];
  }
  c[static_cast<size_t>(mat)] += rows;
}

}  // namespace

Result<ImatrixSums> CollectImatrix(LlamaEngine& engine, const std::vector<int32_t>& tokens,
                                   const ImatrixCollectOptions& opts) {
  const int64_t n_ctx = opts.n_ctx;
  if (n_ctx < 16) return Status::Error("--ctx: " + std::to_string(n_ctx) + " is too small (need at least 16)");
  int64_t n_chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (opts.max_chunks >= 0) n_chunks = std::min(n_chunks, opts.max_chunks);
  if (n_chunks < 1) {
    return Status::Error("--text: the text has " + std::to_string(tokens.size()) + " tokens, fewer than one chunk of " +
                         std::to_string(n_ctx));
  }
  engine.SetContextLength(n_ctx);  // as llama-imatrix -c
  ImatrixSums m;
  m.chunk_size = n_ctx;
  if (!opts.dataset.empty()) m.datasets.push_back(opts.dataset);
  engine.SetActivationHook([&](const std::string& weight, const float* x, int64_t rows, int64_t cols) {
    // llama-imatrix keeps block weights (and output.weight on request) and
    // needs at least 16 rows per product.
    if (rows < 16) return;
    if (weight.rfind("blk.", 0) != 0 && !(opts.process_output && weight == "output.weight")) return;
    Accumulate(&m, weight, 0, 1, x, rows, cols);
  });
  // Each expert's routed rows into its own matrix (llama-imatrix's
  // mul_mat_id path, which has no 16-row minimum).
  const int64_t n_expert = engine.hparams().n_expert;
  engine.SetExpertActivationHook([&](const std::string& weight, int64_t expert, const float* x, int64_t rows, int64_t cols) {
    Accumulate(&m, weight, expert, n_expert, x, rows, cols);
  });
  std::vector<float> logits;
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
    if (opts.bos >= 0) chunk[0] = opts.bos;
    // Logits (and so the output head's input) only when output.weight is wanted.
    Status s = engine.Forward(chunk, opts.process_output ? 0 : n_ctx, &logits);
    if (!s.ok()) {
      engine.SetActivationHook(nullptr);
      engine.SetExpertActivationHook(nullptr);
      return s;
    }
    ++m.chunks;
    if (opts.on_chunk) opts.on_chunk(c + 1, n_chunks);
  }
  engine.SetActivationHook(nullptr);
  engine.SetExpertActivationHook(nullptr);
  for (const auto& [name, v] : m.sums) {
    for (float f : v) {
      if (!std::isfinite(f)) return Status::Error("imatrix: entry '" + name + "' accumulated a non-finite sum");
    }
  }
  return m;
}

Status WriteImatrixGguf(const ImatrixSums& m, const std::string& path) {
  GgufWriter w;
  w.metadata().Append("general.type", GgufValue::Str("imatrix"));
  w.metadata().Append("imatrix.datasets", GgufValue::StrArray(m.datasets));
  w.metadata().Append("imatrix.chunk_count", GgufValue::U32(static_cast<uint32_t>(m.chunks)));
  w.metadata().Append("imatrix.chunk_size", GgufValue::U32(static_cast<uint32_t>(m.chunk_size)));
  for (const auto& [name, v] : m.sums) {  // std::map: byte-wise name order
    const auto n_mat = static_cast<int64_t>(m.counts.at(name).size());
    const int64_t cols = static_cast<int64_t>(v.size()) / n_mat;
    w.AddTensor(name + ".in_sum2", n_mat > 1 ? std::vector<int64_t>{cols, n_mat} : std::vector<int64_t>{cols}, GgmlType::F32);
    w.AddTensor(name + ".counts", {n_mat}, GgmlType::F32);
  }
  QF_RETURN_IF_ERROR(w.Begin(path));
  for (const auto& [name, v] : m.sums) {
    QF_RETURN_IF_ERROR(w.WriteTensorData(v.data(), v.size() * sizeof(float)));
    std::vector<float> counts;
    for (int64_t c : m.counts.at(name)) counts.push_back(static_cast<float>(c));
    QF_RETURN_IF_ERROR(w.WriteTensorData(counts.data(), counts.size() * sizeof(float)));
  }
  return w.Finish();
}

}  // namespace qforge
