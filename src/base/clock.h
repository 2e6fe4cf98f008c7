// Wall-clock timing for reports (time splits of long runs).
#pragma once

#include <chrono>

namespace qforge {

using Clock = std::chrono::steady_clock;
inline double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace qforge
