#include "fuzz_util.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace qforge::fuzz {
namespace fs = std::filesystem;

namespace {

// The folder, removed with everything in it when the process exits.
struct Scratch {
  std::string dir;
  Scratch() {
    const char* base = fs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    dir = std::string(base) + "/qforge-fuzz-" + std::to_string(::getpid());
    fs::create_directories(dir);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

}  // namespace

const std::string& ScratchDir() {
  static const Scratch s;
  return s.dir;
}

std::string WriteScratch(const std::string& name, std::string_view bytes) {
  const std::string path = ScratchDir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

void RemoveScratch(const std::string& name) {
  std::error_code ec;
  fs::remove(ScratchDir() + "/" + name, ec);
}

std::vector<std::string_view> SplitParts(const uint8_t* data, size_t size, size_t n) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < n) {
    const size_t at = all.find(kPartMarker);
    if (at == std::string_view::npos) break;
    parts.push_back(all.substr(0, at));
    all.remove_prefix(at + kPartMarker.size());
  }
  parts.push_back(all);
  parts.resize(n);
  return parts;
}

}  // namespace qforge::fuzz
