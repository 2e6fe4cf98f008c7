#include "base/progress.h"

#include <unistd.h>

#include <cstdio>

namespace qforge {

ProgressBar::ProgressBar(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled && StderrIsTerminal()) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

ProgressBar::~ProgressBar() { Finish(); }

bool ProgressBar::StderrIsTerminal() { return ::isatty(STDERR_FILENO) == 1; }

void ProgressBar::Advance(uint64_t delta, const std::string& item) {
  done_ += delta;
  if (!item.empty()) item_ = item;
  Draw(false);
}

void ProgressBar::Draw(bool force) {
  if (!enabled_ || finished_) return;
  auto now = std::chrono::steady_clock::now();
  // Redraw at most ten times a second: terminals are slow.
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double frac = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  const int width = 30;
  const int filled = static_cast<int>(frac * width);
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double mbs = secs > 0 ? static_cast<double>(done_) / 1e6 / secs : 0.0;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(width, ' ');
  std::string item = item_.size() > 32 ? item_.substr(0, 32) : item_;
  std::fprintf(stderr, "\r%s [%s] %3d%% %7.1f MB/s %-32s", label_.c_str(), bar.c_str(),
               static_cast<int>(frac * 100), mbs, item.c_str());
  std::fflush(stderr);
}

void ProgressBar::Finish() {
  if (!enabled_ || finished_) return;
  Draw(true);
  std::fprintf(stderr, "\n");
  finished_ = true;
}

}  // namespace qforge
