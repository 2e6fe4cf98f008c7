#include "io/output_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

namespace qforge {
namespace fs = std::filesystem;
namespace {

// Temporary paths alive right now, for the signal handler. The handler only
// reads plain C strings, which is safe enough for a best-effort cleanup.
std::mutex g_temps_mu;
std::set<std::string>& LiveTemps() {
  static std::set<std::string> s;
  return s;
}
constexpr int kMaxTemps = 256;  // files being written, plus finished shards of a partial folder
char g_temp_paths[kMaxTemps][4096];
volatile std::sig_atomic_t g_temp_used[kMaxTemps];

void RegisterTemp(const std::string& p) {
  std::lock_guard<std::mutex> lock(g_temps_mu);
  LiveTemps().insert(p);
  for (int i = 0; i < kMaxTemps; ++i) {
    if (!g_temp_used[i] && p.size() < sizeof(g_temp_paths[i])) {
      std::memcpy(g_temp_paths[i], p.c_str(), p.size() + 1);
      g_temp_used[i] = 1;
      break;
    }
  }
}

void UnregisterTemp(const std::string& p) {
  std::lock_guard<std::mutex> lock(g_temps_mu);
  LiveTemps().erase(p);
  for (int i = 0; i < kMaxTemps; ++i) {
    if (g_temp_used[i] && p == g_temp_paths[i]) g_temp_used[i] = 0;
  }
}

// The note is written before its length is published (release), and the
// handler reads the length first (acquire); a lock-free atomic is safe to
// read in a signal handler on any thread.
char g_note[4096];
std::atomic<int> g_note_len{0};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void CleanupOnSignal(int sig) {
  if (const int len = g_note_len.load(std::memory_order_acquire); len > 0) {
    const ssize_t n = ::write(2, g_note, static_cast<size_t>(len));
    (void)n;
  }
  for (int i = 0; i < kMaxTemps; ++i) {
    if (g_temp_used[i]) ::unlink(g_temp_paths[i]);
  }
  // Folders last, once the files in them are gone (unlink fails on them).
  for (int i = kMaxTemps - 1; i >= 0; --i) {
    if (g_temp_used[i]) ::rmdir(g_temp_paths[i]);
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

void RegisterTempPath(const std::string& path) { RegisterTemp(path); }

void SetInterruptNote(const std::string& line) {
  g_note_len.store(0, std::memory_order_release);
  if (line.empty()) return;
  const std::string l = line + "\n";
  const size_t n = std::min(l.size(), sizeof g_note);
  std::memcpy(g_note, l.data(), n);
  g_note_len.store(static_cast<int>(n), std::memory_order_release);
}

int LockTempPath(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}
void UnregisterTempPath(const std::string& path) { UnregisterTemp(path); }

void InstallOutputCleanupHandlers() {
  std::signal(SIGINT, CleanupOnSignal);
  std::signal(SIGTERM, CleanupOnSignal);
}

void RemoveStaleTemps(const std::string& final_path) {
  std::string base = final_path;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  const fs::path p(base);
  const fs::path parent = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  const std::string prefix = p.filename().string() + ".qforge-";
  std::error_code ec;
  std::vector<fs::path> stale;
  fs::directory_iterator it(parent, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    std::string rest = name.substr(prefix.size());
    if (rest.rfind("partial-", 0) == 0) {
      rest = rest.substr(8);
    } else if (rest.size() > 4 && rest.compare(rest.size() - 4, 4, ".tmp") == 0) {
      rest.resize(rest.size() - 4);
    } else {
      continue;  // e.g. the resume journal
    }
    if (rest.empty() || rest.find_first_not_of("0123456789") != std::string::npos || rest.size() > 9) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(rest));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive here
    // Its writer may still live elsewhere (another PID namespace or host):
    // only a temporary whose lock we can take is stale.
    const int fd = LockTempPath(it->path().string());
    if (fd < 0) continue;
    ::close(fd);
    stale.push_back(it->path());
  }
  for (const auto& p : stale) {
    std::error_code rm;
    fs::remove_all(p, rm);
  }
}

Result<std::unique_ptr<OutputFile>> OutputFile::Create(const std::string& final_path) {
  RemoveStaleTemps(final_path);
  std::unique_ptr<OutputFile> f(new OutputFile());
  f->final_path_ = final_path;
  f->temp_path_ = final_path + ".qforge-" + std::to_string(::getpid()) + ".tmp";
  f->file_ = std::fopen(f->temp_path_.c_str(), "wb");
  if (f->file_ == nullptr) {
    return Status::Error(final_path + ": cannot create output: " + std::strerror(errno));
  }
  RegisterTemp(f->temp_path_);
  // Held until the descriptor closes: tells RemoveStaleTemps this file is live.
  (void)::flock(::fileno(f->file_), LOCK_EX | LOCK_NB);
  return f;
}

OutputFile::~OutputFile() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_) {
    ::unlink(temp_path_.c_str());
  }
  UnregisterTemp(temp_path_);
}

Status OutputFile::Write(const void* data, size_t n) {
  if (n == 0) return Status::Ok();
  if (file_ == nullptr) return Status::Error(final_path_ + ": write after close");
  if (std::fwrite(data, 1, n, file_) != n) {
    return Status::Error(final_path_ + ": write failed: " + std::strerror(errno));
  }
  position_ += n;
  return Status::Ok();
}

Status OutputFile::WriteZeros(size_t n) {
  static const uint8_t kZeros[256] = {};
  while (n > 0) {
    size_t k = std::min(n, sizeof(kZeros));
    QF_RETURN_IF_ERROR(Write(kZeros, k));
    n -= k;
  }
  return Status::Ok();
}

Status OutputFile::Commit() {
  if (file_ == nullptr) return Status::Error(final_path_ + ": commit after close");
  bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  int e = errno;
  ok = (std::fclose(file_) == 0) && ok;
  file_ = nullptr;
  if (!ok) return Status::Error(final_path_ + ": cannot finish writing: " + std::strerror(e));
  if (std::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    return Status::Error(final_path_ + ": cannot rename temporary output into place: " +
                         std::strerror(errno));
  }
  committed_ = true;
  return Status::Ok();
}

}  // namespace qforge
