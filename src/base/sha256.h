// SHA-256 (FIPS 180-4), used to compare tensor bytes with reference manifests.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace qforge {

class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t n);
  std::array<uint8_t, 32> Finish();
  std::string FinishHex();

  static std::string HexOf(const void* data, size_t n);

 private:
  void Block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

}  // namespace qforge
