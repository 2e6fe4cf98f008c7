#include "cli/cli_util.h"

#include <fmt/core.h>
#include <sys/resource.h>

#include <filesystem>

#include "base/parallel.h"

namespace qforge::cli {
namespace fs = std::filesystem;

int Fail(const Status& s) {
  fmt::print(stderr, "qforge: error: {}\n", s.message());
  return 1;
}

std::string HumanBytes(uint64_t b) {
  const double d = static_cast<double>(b);
  if (b >= (uint64_t{1} << 30)) return fmt::format("{:.2f} GiB", d / (1 << 30));
  if (b >= (uint64_t{1} << 20)) return fmt::format("{:.2f} MiB", d / (1 << 20));
  if (b >= (uint64_t{1} << 10)) return fmt::format("{:.1f} KiB", d / (1 << 10));
  return fmt::format("{} B", b);
}

std::string ShapeString(const std::vector<int64_t>& ne) {
  std::string s;
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? " x " : "") + std::to_string(ne[i]);
  return s;
}

std::string ModelStem(const std::string& path) {
  fs::path p(path);
  if (fs::is_directory(p)) {
    std::string s = p.filename().string();
    if (s.empty()) s = p.parent_path().filename().string();
    return s;
  }
  return p.stem().string();
}

int Threads(const GlobalOptions& g) { return g.threads > 0 ? g.threads : DefaultThreads(); }

uint64_t PeakRssBytes() {
  struct rusage ru {};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace qforge::cli
