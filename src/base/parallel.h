// Splits [0, n) into contiguous ranges run on up to `threads` threads. The
// split never changes results: each index is processed by exactly one call.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>

#include "base/thread_pool.h"

namespace qforge {

// Runs on the process-wide pool (base/thread_pool.h): workers are started
// once and reused, so a call costs a queue push, not a thread start.
template <typename Fn>
void ParallelFor(int64_t n, int threads, Fn fn) {
  const int64_t t = std::max<int64_t>(1, std::min<int64_t>(threads, n));
  if (t <= 1) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
  const int64_t chunk = (n + t - 1) / t;
  const int64_t chunks = (n + chunk - 1) / chunk;
  RunChunks(chunks, [&](int64_t c) { fn(c * chunk, std::min(n, (c + 1) * chunk)); });
}

inline int DefaultThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace qforge
