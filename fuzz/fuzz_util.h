// Shared by the libFuzzer harnesses: qforge's readers take paths, so each
// input is written into a scratch folder (on tmpfs where there is one)
// that belongs to this fuzzing process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qforge::fuzz {

// The process's scratch folder, created on first use.
const std::string& ScratchDir();
// Writes bytes to ScratchDir()/name (replacing it) and returns the path.
std::string WriteScratch(const std::string& name, std::string_view bytes);
// Removes ScratchDir()/name if present.
void RemoveScratch(const std::string& name);

// Splits an input holding several files at kPartMarker into exactly n parts
// (missing parts are empty), so one input can describe a folder.
inline constexpr std::string_view kPartMarker = "\n#qforge-part#\n";
std::vector<std::string_view> SplitParts(const uint8_t* data, size_t size, size_t n);

}  // namespace qforge::fuzz
