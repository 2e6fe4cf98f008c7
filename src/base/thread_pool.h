// A process-wide pool of worker threads behind ParallelFor.
#pragma once

#include <cstdint>
#include <functional>

namespace qforge {

// Runs fn(0) .. fn(chunks - 1), chunk 0 on the calling thread and the rest on
// the pool's workers (started once, then reused), and returns when all have
// finished. Safe to call from inside a chunk: a waiting caller runs queued
// chunks itself.
void RunChunks(int64_t chunks, const std::function<void(int64_t)>& fn);

}  // namespace qforge
