// Splits [0, n) into contiguous ranges run on up to `threads` threads. The
// split never changes results: each index is processed by exactly one call.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace qforge {

template <typename Fn>
void ParallelFor(int64_t n, int threads, Fn fn) {
  const int64_t t = std::max<int64_t>(1, std::min<int64_t>(threads, n));
  if (t <= 1) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(t - 1));
  const int64_t chunk = (n + t - 1) / t;
  for (int64_t i = 1; i < t; ++i) {
    const int64_t b = i * chunk, e = std::min(n, b + chunk);
    if (b < e) pool.emplace_back([=] { fn(b, e); });
  }
  fn(int64_t{0}, std::min(n, chunk));
  for (auto& th : pool) th.join();
}

inline int DefaultThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace qforge
