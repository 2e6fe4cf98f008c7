#include "sinks/gguf_sink.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <vector>

#include "base/parallel.h"
#include "io/gguf.h"

namespace qforge {
namespace {

// Rows per chunk: enough work to keep threads busy, small enough that the
// float buffer stays a few MB whatever the tensor size.
int64_t RowsPerChunk(int64_t row_len) {
  const int64_t target_floats = int64_t{1} << 21;  // 8 MB of float
  return std::max<int64_t>(1, target_floats / std::max<int64_t>(1, row_len));
}

// The row's largest magnitude, for the message of a refused row.
float RowAbsMax(const ModelTensor& src, int64_t row) {
  std::vector<float> x(static_cast<size_t>(src.ne[0]));
  if (!ReadRowsF32(src, row, 1, x.data()).ok()) return NAN;
  float m = 0;
  for (float v : x) m = std::max(m, std::fabs(v));
  return m;
}

// Refuses encoded rows holding an Inf or NaN 16-bit float (a block scale
// that overflowed F16, or an F16 value beyond +-65504), as llama.cpp's
// quantizer refuses data that fails validation. rows start at row0.
Status CheckEncoded(const TensorPlan& tp, const uint8_t* data, int64_t row0, int64_t rows) {
  const int64_t row_len = tp.source->ne[0];
  const size_t row_bytes = RowBytes(tp.type, row_len);
  for (int64_t r = 0; r < rows; ++r) {
    if (FirstNonFiniteBlock(tp.type, data + static_cast<size_t>(r) * row_bytes, row_len) < 0) continue;
    const std::string type = GgmlTypeName(tp.type);
    char amax[32];
    std::snprintf(amax, sizeof amax, "%.4g", RowAbsMax(*tp.source, row0 + r));
    const std::string what = tp.type == GgmlType::F16 || tp.type == GgmlType::BF16
                                 ? "a value beyond " + type + "'s range (+-65504 for F16)"
                                 : "a block scale that overflows " + type + "'s F16 scale";
    const ModelTensor& src = *tp.source;
    const int64_t row = src.permute_heads > 0 ? SourceRowOf(row0 + r, src.n_rows(), src.permute_heads) : row0 + r;
    return Status::Error("tensor '" + src.source_name + "': row " + std::to_string(row) + " has " + what +
                         " (largest |value| in the row: " + amax + "); refusing to write Inf. Keep this tensor wider, e.g. " +
                         "--tensor-type '" + tp.name + "=F32'");
  }
  return Status::Ok();
}

Status ConvertTensor(const TensorPlan& tp, GgufWriter& w, const SinkOptions& opts) {
  const ModelTensor& src = *tp.source;
  if (tp.copy_bytes) {
    const uint64_t kChunk = 16u << 20;
    for (uint64_t off = 0; off < src.nbytes; off += kChunk) {
      const uint64_t n = std::min(kChunk, src.nbytes - off);
      QF_RETURN_IF_ERROR(w.WriteTensorData(src.data + off, n));
      if (src.file) src.file->DropRange(static_cast<size_t>(src.data + off - src.file->data()), n);
      if (opts.on_progress) opts.on_progress(n, tp.name);
    }
    return Status::Ok();
  }
  const bool permuted_vector = src.permute_heads > 0 && src.ne.size() == 1;
  const int64_t row_len = src.ne[0];
  const int64_t rows = permuted_vector ? 1 : src.n_rows();
  const GgmlTypeTraits& out_tr = TraitsOf(tp.type);
  const size_t out_row_bytes = RowBytes(tp.type, row_len);
  const size_t in_row_bytes = RowBytes(src.type, row_len);
  const bool check_finite = tp.type != GgmlType::F32;
  const int64_t chunk = permuted_vector ? 1 : RowsPerChunk(row_len);
  std::vector<float> f32(static_cast<size_t>(std::min(chunk, rows) * row_len));
  std::vector<uint8_t> out(static_cast<size_t>(std::min(chunk, rows)) * out_row_bytes);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = std::min(chunk, rows - r0);
    std::atomic<int64_t> bad_row{-1};
    std::vector<Status> errors(static_cast<size_t>(std::max(1, opts.threads)));
    std::atomic<int> slot{0};
    ParallelFor(n, opts.threads, [&](int64_t b, int64_t e) {
      const int my = slot.fetch_add(1);
      Status s = ReadRowsF32(src, r0 + b, e - b, f32.data() + b * row_len);
      if (!s.ok()) {
        errors[static_cast<size_t>(my)] = s;
        return;
      }
      for (int64_t i = b; i < e; ++i) {
        const float* x = f32.data() + i * row_len;
        if (check_finite) {
          for (int64_t j = 0; j < row_len; ++j) {
            if (!std::isfinite(x[j])) {
              int64_t expected = -1;
              bad_row.compare_exchange_strong(expected, r0 + i);
              return;
            }
          }
        }
        const float* importance = nullptr;
        if (tp.importance) {
          // 3-D (expert) tensors use the slice of their expert.
          const int64_t expert = src.ne.size() > 2 ? (r0 + i) / src.ne[1] : 0;
          importance = tp.importance->data() + expert * row_len;
        }
        out_tr.encode(x, importance, out.data() + static_cast<size_t>(i) * out_row_bytes, row_len);
      }
    });
    for (const auto& s : errors) QF_RETURN_IF_ERROR(s);
    if (bad_row.load() >= 0) {
      const int64_t row = src.permute_heads > 0 && !permuted_vector ? SourceRowOf(bad_row.load(), rows, src.permute_heads)
                                                                    : bad_row.load();
      return Status::Error("tensor '" + src.source_name + "': row " + std::to_string(row) +
                           " contains NaN or Inf; refusing to quantize it to " + GgmlTypeName(tp.type));
    }
    QF_RETURN_IF_ERROR(CheckEncoded(tp, out.data(), r0, n));
    QF_RETURN_IF_ERROR(w.WriteTensorData(out.data(), static_cast<size_t>(n) * out_row_bytes));
    if (src.file && src.parts.empty()) {
      src.file->DropRange(static_cast<size_t>(src.data - src.file->data()) + static_cast<size_t>(r0) * in_row_bytes,
                          static_cast<size_t>(n) * in_row_bytes);
    }
    if (opts.on_progress) opts.on_progress(static_cast<uint64_t>(n) * in_row_bytes, tp.name);
  }
  return Status::Ok();
}

}  // namespace

Status GgufSink::Begin(const Plan& plan) {
  if (plan.output != PlanOutput::kGguf) return Status::Error("internal: a checkpoint plan reached the GGUF sink");
  writer_.metadata() = plan.metadata;
  for (const auto& tp : plan.tensors) writer_.AddTensor(tp.name, tp.ne, tp.type);
  return writer_.Begin(path_);
}

Status GgufSink::Add(const TensorPlan& recipe, EncodedTensor t) {
  // No GGUF method changes float tensors (AWQ writes checkpoints only), so
  // values have no encoder here: one would need ConvertTensor's finite check
  // and per-expert importance.
  if (t.values) return Status::Error("internal: tensor '" + recipe.name + "': changed float values reached the GGUF sink");
  if (t.int_grid) return Status::Error("internal: an integer-grid tensor reached the GGUF sink");
  if (t.ggml.empty()) return ConvertTensor(recipe, writer_, opts_);
  if (t.ggml.size() != recipe.nbytes) {
    return Status::Error("internal: tensor '" + recipe.name + "': " + std::to_string(t.ggml.size()) + " encoded bytes, the plan says " +
                         std::to_string(recipe.nbytes));
  }
  if (recipe.source->ne.size() >= 1 && recipe.source->ne[0] > 0) {
    QF_RETURN_IF_ERROR(CheckEncoded(recipe, t.ggml.data(), 0, recipe.source->n_rows()));
  }
  QF_RETURN_IF_ERROR(writer_.WriteTensorData(t.ggml.data(), t.ggml.size()));
  if (opts_.on_progress) opts_.on_progress(recipe.source->nbytes, recipe.name);
  return Status::Ok();
}

Status GgufSink::Commit() { return writer_.Finish(); }

Status WriteGguf(const Plan& plan, const std::string& path, const SinkOptions& opts) {
  GgufSink sink(path, opts);
  QF_RETURN_IF_ERROR(sink.Begin(plan));
  for (const auto& tp : plan.tensors) {
    // On failure the sink's writer removes the temporary file.
    QF_RETURN_IF_ERROR(sink.Add(tp, EncodedTensor{}));
  }
  return sink.Commit();
}

}  // namespace qforge
