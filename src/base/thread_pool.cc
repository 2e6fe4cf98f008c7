#include "base/thread_pool.h"

#include <pthread.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

namespace qforge {
namespace {

// One process-wide pool. Workers are started on first need and kept, so a
// caller that splits work per column (GPTQ) pays a queue push, not a thread
// start. A caller waiting for its chunks runs queued chunks itself, so calls
// nested inside a chunk cannot deadlock however many workers exist.
class Pool {
 public:
  static Pool& Get() {
    static Pool* pool = [] {
      // A forked child has none of the parent's workers (only the forking
      // thread survives): it starts its own pool.
      pthread_atfork(nullptr, nullptr, [] { Instance() = new Pool(); });
      return Instance() = new Pool();
    }();
    (void)pool;
    return *Instance();
  }

  void Run(int64_t chunks, const std::function<void(int64_t)>& fn) {
    Job job{&fn, chunks - 1};
    {
      std::lock_guard<std::mutex> lock(mu_);
      StartWorkers(static_cast<int>(chunks - 1));
      for (int64_t c = 1; c < chunks; ++c) queue_.push_back({&job, c});
    }
    work_cv_.notify_all();
    // The queued chunks point at `job` on this stack: whatever chunk 0 does,
    // they finish before this frame is left.
    std::exception_ptr error;
    try {
      fn(0);
    } catch (...) {
      error = std::current_exception();
    }
    std::unique_lock<std::mutex> lock(mu_);
    while (job.pending > 0) {
      if (!queue_.empty()) {
        RunOne(lock);
      } else {
        done_cv_.wait(lock);
      }
    }
    if (error) std::rethrow_exception(error);
  }

 private:
  // The process's pool; never destroyed (workers may outlive static
  // destructors), and a forked child's replaces its parent's copy.
  static Pool*& Instance() {
    static Pool* instance = nullptr;
    return instance;
  }

  struct Job {
    const std::function<void(int64_t)>* fn;
    int64_t pending;
  };
  struct Task {
    Job* job;
    int64_t chunk;
  };

  void StartWorkers(int wanted) {
    for (; workers_ < wanted; ++workers_) std::thread([this] { WorkerLoop(); }).detach();
  }

  // Pops and runs one queued chunk; called and returns with the lock held.
  void RunOne(std::unique_lock<std::mutex>& lock) {
    Task t = queue_.front();
    queue_.pop_front();
    lock.unlock();
    (*t.job->fn)(t.chunk);
    lock.lock();
    if (--t.job->pending == 0) done_cv_.notify_all();
  }

  void WorkerLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      work_cv_.wait(lock, [this] { return !queue_.empty(); });
      RunOne(lock);
    }
  }

  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<Task> queue_;
  int workers_ = 0;  // started, detached, never stopped
};

}  // namespace

void RunChunks(int64_t chunks, const std::function<void(int64_t)>& fn) {
  if (chunks <= 0) return;
  if (chunks == 1) {
    fn(0);
    return;
  }
  Pool::Get().Run(chunks, fn);
}

}  // namespace qforge
