// Q8_0 and the float codecs against the spec's unit vectors (section 2.12,
// produced by ggml's reference library) and round-trip error bounds.
#include "codecs/ggml_legacy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/sha256.h"
#include "codecs/ggml_float.h"
#include "codecs/ggml_types.h"
#include "test_util.h"

namespace qforge {
namespace {

std::vector<float> SpecMatrix() {
  test::XorShift32 rng(0x12345678);
  std::vector<float> x(4 * 512);
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 512; ++c) x[r * 512 + c] = (rng.U01() * 2.0f - 1.0f) * (0.25f * static_cast<float>(1 << r));
  }
  for (int c = 0; c < 256; ++c) x[512 + c] = 0.0f;
  x[2 * 512 + 7] = 37.5f;
  return x;
}

std::string Hex(const uint8_t* p, size_t n) {
  static const char* k = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) { s += k[p[i] >> 4]; s += k[p[i] & 15]; }
  return s;
}

struct Vector {
  GgmlType type;
  size_t bytes;
  const char* quantized;
  const char* dequantized;
};

constexpr Vector kVectors[] = {
    {GgmlType::Q8_0, 2176, "24e578d0643955af008c9d82bc965c803de393aac11f711ccc2a090034cd8cf3",
     "3d9c9d55952a4f1dd2d62a1eec769fa9040271f5e85197ee62ad028037f1cb84"},
    {GgmlType::F16, 4096, "b5aecc05be9b94ae8b12f1c7d89e7663e642cd63316358c23c31e5bbaddf8a56",
     "34c1586698971e4bcb15067fe1f2ef823a508cb352c69ef875e00c97af212355"},
    {GgmlType::BF16, 4096, "e35347613c98ac0f9b16ca34fa37adadd9dfbaa48cbdebb29c02c69889540b99",
     "65531e1f318232e7f93377739b4e4a45666f144efa491861f4518bb01519a67e"},
};

TEST(SpecVectors, InputMatrixIsTheSpecs) {
  auto x = SpecMatrix();
  EXPECT_EQ(Sha256::HexOf(x.data(), x.size() * 4), "325eef65d23f84eaeb3b9b0a53258f6b82c45b7df3bcac0538d448f28da67b61");
}

TEST(SpecVectors, QuantizedAndDequantizedBytes) {
  const auto x = SpecMatrix();
  for (const auto& v : kVectors) {
    SCOPED_TRACE(GgmlTypeName(v.type));
    const GgmlTypeTraits& tr = TraitsOf(v.type);
    std::vector<uint8_t> q(v.bytes);
    const size_t row_bytes = RowBytes(v.type, 512);
    for (int r = 0; r < 4; ++r) tr.encode(x.data() + r * 512, nullptr, q.data() + r * row_bytes, 512);
    EXPECT_EQ(Sha256::HexOf(q.data(), q.size()), v.quantized);
    std::vector<float> y(2048);
    tr.decode(q.data(), y.data(), 2048);
    EXPECT_EQ(Sha256::HexOf(y.data(), y.size() * 4), v.dequantized);
  }
}

TEST(SpecVectors, Q8_0FirstBlockAndZeroBlock) {
  const auto x = SpecMatrix();
  std::vector<uint8_t> q(RowBytes(GgmlType::Q8_0, 512));
  EncodeRowQ8_0(x.data(), nullptr, q.data(), 512);
  EXPECT_EQ(Hex(q.data(), 34), "dc170893c702f0a80a4655b9e9cd7fb40d794f716ac0ac6da8517a772d426ccc8e7a");
  EncodeRowQ8_0(x.data() + 512, nullptr, q.data(), 512);
  EXPECT_EQ(Hex(q.data(), 34), std::string(68, '0'));
}

// decode(encode(x)) of Q8_0 is within half a step (d/2) of x per element,
// where d = max|x|/127 of the block, plus the fp16 rounding of d.
void ExpectQ8_0Bound(const std::vector<float>& x) {
  std::vector<uint8_t> q(RowBytes(GgmlType::Q8_0, static_cast<int64_t>(x.size())));
  std::vector<float> y(x.size());
  EncodeRowQ8_0(x.data(), nullptr, q.data(), static_cast<int64_t>(x.size()));
  DecodeRowQ8_0(q.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t b = 0; b < x.size(); b += 32) {
    float amax = 0;
    for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b + j]));
    const float d = amax / 127.0f;
    for (size_t j = 0; j < 32; ++j) {
      EXPECT_LE(std::fabs(x[b + j] - y[b + j]), 0.5f * d + amax * 1e-3f + 1e-30f) << "at " << b + j;
    }
  }
}

TEST(Q8_0, RoundTripBoundGaussian) {
  std::mt19937 rng(1);
  std::normal_distribution<float> n(0.0f, 0.02f);
  std::vector<float> x(4096);
  for (auto& v : x) v = n(rng);
  ExpectQ8_0Bound(x);
}

TEST(Q8_0, RoundTripBoundHeavyTailed) {
  std::mt19937 rng(2);
  std::student_t_distribution<float> t(1.5f);
  std::vector<float> x(4096);
  for (auto& v : x) v = t(rng);
  ExpectQ8_0Bound(x);
}

TEST(Q8_0, AllZeroRowDecodesToZero) {
  std::vector<float> x(256, 0.0f), y(256, 1.0f);
  std::vector<uint8_t> q(RowBytes(GgmlType::Q8_0, 256));
  EncodeRowQ8_0(x.data(), nullptr, q.data(), 256);
  DecodeRowQ8_0(q.data(), y.data(), 256);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace qforge
