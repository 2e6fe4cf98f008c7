#include "engine/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <vector>

#include "base/parallel.h"
#include "base/thread_pool.h"
#include "codecs/simd_kernels.h"
#include "engine/int_matmul.h"
#include "numeric/gemm.h"
#include "numeric/half.h"
#include "numeric/rounding.h"

namespace qforge {
namespace {

// Runs task(i) for i < n on up to `threads` threads, each taking the next
// task as it finishes one; which thread runs a task never changes its result.
// contiguous: each thread takes one run of tasks instead, so it streams one
// range of the weights (a product with a few tokens is bound by reading
// them; alternating tiles between threads defeats the prefetchers).
template <typename Fn>
void ForEachTask(int64_t n, int threads, Fn task, bool contiguous = false) {
  if (contiguous) {
    ParallelFor(n, threads, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) task(i);
    });
    return;
  }
  const int64_t t = std::max<int64_t>(1, std::min<int64_t>(threads, n));
  std::atomic<int64_t> next{0};
  RunChunks(t, [&](int64_t) {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) task(i);
  });
}

// Values of K per pass over a tile of rows, and rows per tile: a pass's
// weights and four tokens' activations stay in L1; long rows take more rows
// per tile so the activations (T x K) are streamed once per more outputs.
constexpr int64_t kIntPassValues = 1024;
int64_t IntTileRows(int64_t K) { return K >= 4096 ? 16 : 8; }
// Rows per F32 tile of the BLAS path: GemmNT's panel, so decoding a tile at
// a time gives the bits of a product with the whole F32 weight.
constexpr int64_t kF32TileRows = kGemmPanel;

// The VNNI form of IntegerProduct (K a multiple of 64).
Status VnniProduct(const ModelTensor& t, const intmm::WeightFormat& f, int64_t row0, int64_t N, const float* x,
                   int64_t T, int64_t K, float* y, int threads) {
  const bool q8k = f.act == intmm::ActType::kQ8_K;
  const int64_t nas = q8k ? K / 256 : K / 4;
  // Kept between products (the calling thread's): fresh zeroed pages for
  // every product cost more than the quantization.
  // (The lambdas below run on other threads too: they take these by
  // reference, not by their thread_local names.)
  thread_local std::vector<uint8_t> au_buf;
  thread_local std::vector<float> as_buf, bs_buf;
  au_buf.resize(static_cast<size_t>(T * K));
  as_buf.resize(static_cast<size_t>(T * nas));
  bs_buf.resize(q8k ? static_cast<size_t>(T * (K / 32)) : 0);
  std::vector<uint8_t>& au = au_buf;
  std::vector<float>& as = as_buf;
  std::vector<float>& bs = bs_buf;
  ParallelFor(T, threads, [&](int64_t b, int64_t e) {
    intmm::QuantizeActivationsU8(f.act, x + b * K, e - b, K, au.data() + b * K, as.data() + b * nas,
                                 q8k ? bs.data() + b * (K / 32) : nullptr);
  });
  const size_t row_bytes = RowBytes(t.type, K);
  const uint8_t* base = t.data + static_cast<size_t>(row0) * row_bytes;
  const int64_t tile_rows = IntTileRows(K), tiles = (N + tile_rows - 1) / tile_rows;
  const int64_t chunks = K / 64, chunks_per_pass = kIntPassValues / 64;
  ForEachTask(tiles, threads, [&](int64_t tile) {
    thread_local std::vector<int8_t> qw;
    thread_local std::vector<int32_t> init;
    thread_local std::vector<float> ws, mins;
    const int64_t n0 = tile * tile_rows, R = std::min(tile_rows, N - n0);
    qw.resize(static_cast<size_t>(R * K));
    ws.resize(static_cast<size_t>(R * K / 4));
    init.resize(static_cast<size_t>(R * K / 4));
    mins.resize(f.mins ? static_cast<size_t>(R * K / 32) : 0);
    intmm::UnpackRowsI8(t.type, base + static_cast<size_t>(n0) * row_bytes, row_bytes, R, K, qw.data(), ws.data(),
                        init.data(), f.mins ? mins.data() : nullptr);
    for (int64_t i = 0; i < T; ++i) std::fill_n(y + i * N + n0, R, 0.0f);
    for (int64_t c0 = 0; c0 < chunks; c0 += chunks_per_pass) {
      intmm::DotTileI8(f, K, c0, std::min(chunks, c0 + chunks_per_pass), qw.data(), ws.data(), init.data(),
                       mins.data(), R, au.data(), as.data(), bs.data(), T, y + n0, N);
    }
  }, /*contiguous=*/T < 4);
  return Status::Ok();
}

Status IntegerProduct(const ModelTensor& t, const intmm::WeightFormat& f, int64_t row0, int64_t N, const float* x,
                      int64_t T, int64_t K, float* y, int threads) {
  if (K % 64 == 0 && intmm::HasVnni()) return VnniProduct(t, f, row0, N, x, T, K, y, threads);
  const int64_t G = f.group, ng = K / G, nm = f.mins ? K / 256 : 0;
  // The activations, once for every tile.
  thread_local std::vector<int16_t> qa_buf, sa_buf;
  thread_local std::vector<float> da_buf;
  qa_buf.resize(static_cast<size_t>(T * K));
  da_buf.resize(static_cast<size_t>(T * ng));
  sa_buf.resize(f.act == intmm::ActType::kQ8_K ? static_cast<size_t>(T * (K / 256) * intmm::kMinSlot) : 0);
  std::vector<int16_t>& qa = qa_buf;
  std::vector<float>& da = da_buf;
  std::vector<int16_t>& sa = sa_buf;
  ParallelFor(T, threads, [&](int64_t b, int64_t e) {
    intmm::QuantizeActivations(f.act, x + b * K, e - b, K, qa.data() + b * K, da.data() + b * ng,
                               sa.empty() ? nullptr : sa.data() + b * (K / 256) * intmm::kMinSlot);
  });
  const size_t row_bytes = RowBytes(t.type, K);
  const uint8_t* base = t.data + static_cast<size_t>(row0) * row_bytes;
  const int64_t tile_rows = IntTileRows(K), tiles = (N + tile_rows - 1) / tile_rows;
  const int64_t groups_per_pass = std::max<int64_t>(1, kIntPassValues / G);
  ForEachTask(tiles, threads, [&](int64_t tile) {
    thread_local std::vector<int16_t> qw, mw;
    thread_local std::vector<float> dw, dm;
    const int64_t n0 = tile * tile_rows, R = std::min(tile_rows, N - n0);
    qw.resize(static_cast<size_t>(R * K));
    dw.resize(static_cast<size_t>(R * ng));
    dm.resize(static_cast<size_t>(R * nm));
    mw.resize(static_cast<size_t>(R * nm * intmm::kMinSlot));
    intmm::UnpackRows(t.type, base + static_cast<size_t>(n0) * row_bytes, row_bytes, R, K, qw.data(), dw.data(),
                      dm.data(), mw.data());
    for (int64_t i = 0; i < T; ++i) std::fill_n(y + i * N + n0, R, 0.0f);
    for (int64_t g0 = 0; g0 < ng; g0 += groups_per_pass) {
      intmm::DotTile(f, K, g0, std::min(ng, g0 + groups_per_pass), qw.data(), dw.data(), dm.data(), mw.data(), R,
                     qa.data(), da.data(), sa.empty() ? nullptr : sa.data(), T, y + n0, N);
    }
  });
  return Status::Ok();
}

Status F32Product(const ModelTensor& t, int64_t row0, int64_t N, const float* x, int64_t T, int64_t K, float* y,
                  int threads) {
  UseSingleThreadedBlas();
  const int64_t tiles = (N + kF32TileRows - 1) / kF32TileRows;
  std::mutex mu;
  Status first_error = Status::Ok();
  ForEachTask(tiles, threads, [&](int64_t tile) {
    thread_local std::vector<float> w;
    const int64_t n0 = tile * kF32TileRows, R = std::min(kF32TileRows, N - n0);
    w.resize(static_cast<size_t>(R * K));
    Status s = ReadRowsF32(t, row0 + n0, R, w.data());
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.ok()) first_error = s;
      return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(T), static_cast<int>(R), static_cast<int>(K),
                1.0f, x, static_cast<int>(K), w.data(), static_cast<int>(K), 0.0f, y + n0, static_cast<int>(N));
  });
  return first_error;
}

}  // namespace

void RoundActivationsLikeLlamaCpp(GgmlType weight, float* x, int64_t rows, int64_t cols) {
  auto q8_blocks = [&](intmm::ActType a, int64_t block) {
    if (cols % block != 0) return;
    std::vector<int16_t> q(static_cast<size_t>(cols)), s(static_cast<size_t>(cols / 256 + 1) * intmm::kMinSlot);
    std::vector<float> d(static_cast<size_t>(cols / block));
    for (int64_t r = 0; r < rows; ++r) {
      float* v = x + r * cols;
      intmm::QuantizeActivations(a, v, 1, cols, q.data(), d.data(), s.data());
      for (int64_t j = 0; j < cols; ++j) v[j] = static_cast<float>(q[static_cast<size_t>(j)]) * d[static_cast<size_t>(j / block)];
    }
  };
  switch (weight) {
    case GgmlType::F32: return;
    case GgmlType::F16:
      {
        std::vector<uint16_t> tmp(static_cast<size_t>(rows * cols));
        simd::EncodeF16(x, tmp.data(), rows * cols);
        simd::DecodeF16(tmp.data(), x, rows * cols);
      }
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < rows * cols; ++i) x[i] = Bf16ToFloat(FloatToBf16(x[i]));
      return;
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
    case GgmlType::IQ4_XS: case GgmlType::TQ1_0: case GgmlType::TQ2_0:
      q8_blocks(intmm::ActType::kQ8_K, 256);
      return;
    default:
      if (TraitsOf(weight).quantized) q8_blocks(intmm::ActType::kQ8_0, 32);
      return;
  }
}

bool HasIntegerProduct(const ModelTensor& t) {
  intmm::WeightFormat f;
  return intmm::IntegerFormatOf(t.type, &f) && t.stored_as_is() && t.data != nullptr && !t.ne.empty() &&
         t.ne[0] % f.group == 0;
}

Status MultiplyRows(const ModelTensor& t, int64_t row0, int64_t N, const float* x, int64_t T, int64_t K, float* y,
                    int threads, bool llama_arithmetic) {
  if (t.ne.empty() || t.ne[0] != K || row0 < 0 || N < 0 || row0 + N > (t.ne.size() == 1 ? 1 : t.n_rows())) {
    return Status::Error("tensor '" + t.name + "': rows [" + std::to_string(row0) + ", " + std::to_string(row0 + N) +
                         ") of " + std::to_string(K) + " values asked, but it holds " +
                         std::to_string(t.ne.size() == 1 ? 1 : t.n_rows()) + " rows of " +
                         std::to_string(t.ne.empty() ? 0 : t.ne[0]));
  }
  if (T == 0 || N == 0) return Status::Ok();
  intmm::WeightFormat f;
  if (llama_arithmetic && HasIntegerProduct(t) && intmm::IntegerFormatOf(t.type, &f)) {
    return IntegerProduct(t, f, row0, N, x, T, K, y, threads);
  }
  if (llama_arithmetic && t.type != GgmlType::F32) {
    std::vector<float> rounded(x, x + T * K);
    RoundActivationsLikeLlamaCpp(t.type, rounded.data(), T, K);
    return F32Product(t, row0, N, rounded.data(), T, K, y, threads);
  }
  return F32Product(t, row0, N, x, T, K, y, threads);
}

}  // namespace qforge
