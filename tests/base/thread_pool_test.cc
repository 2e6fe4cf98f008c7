// ParallelFor on the process-wide pool: every index once, nested calls do not
// deadlock, work really runs on several threads, also in a forked child
// (which has none of its parent's workers).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "base/parallel.h"

namespace qforge {
namespace {

// Thread ids that ran chunks of a 2-way split whose chunks wait for each other
// briefly, so one thread cannot run both before the other starts.
size_t ThreadsUsed() {
  std::mutex mu;
  std::set<std::thread::id> ids;
  std::atomic<int> started{0};
  ParallelFor(2, 2, [&](int64_t, int64_t) {
    started.fetch_add(1);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    while (started.load() < 2 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  return ids.size();
}

TEST(ThreadPool, EveryIndexOnceAndNestedCalls) {
  std::vector<std::atomic<int>> hits(1000);
  ParallelFor(1000, 4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      ParallelFor(3, 2, [&](int64_t b2, int64_t e2) {
        for (int64_t j = b2; j < e2; ++j) hits[static_cast<size_t>(i)].fetch_add(1);
      });
    }
  });
  for (const auto& h : hits) EXPECT_EQ(h.load(), 3);
}

TEST(ThreadPool, TwoThreadsHereAndInAForkedChild) {
  EXPECT_EQ(ThreadsUsed(), 2u);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(ThreadsUsed() == 2 ? 0 : 1);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the forked child ran its chunks on one thread";
}

}  // namespace
}  // namespace qforge
