// A one-line progress bar on stderr, drawn only when stderr is a terminal
// and the user did not ask for quiet output.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace qforge {

class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total, bool enabled);
  ~ProgressBar();
  void Advance(uint64_t delta, const std::string& item = "");
  void Finish();

  static bool StderrIsTerminal();

 private:
  void Draw(bool force);
  std::string label_;
  uint64_t total_, done_ = 0;
  bool enabled_, finished_ = false;
  std::string item_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace qforge
