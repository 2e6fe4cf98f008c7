#include "codecs/ggml_types.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace qforge {
namespace {

TEST(GgmlTypes, BlockGeometryOfTheSpecTable) {
  struct Row { GgmlType t; int elems, bytes; };
  const Row rows[] = {{GgmlType::F32, 1, 4},     {GgmlType::F16, 1, 2},     {GgmlType::BF16, 1, 2},
                      {GgmlType::Q4_0, 32, 18},  {GgmlType::Q8_0, 32, 34},  {GgmlType::Q2_K, 256, 84},
                      {GgmlType::Q4_K, 256, 144}, {GgmlType::Q6_K, 256, 210}, {GgmlType::IQ4_XS, 256, 136},
                      {GgmlType::TQ1_0, 256, 54}, {GgmlType::MXFP4, 32, 17}, {GgmlType::NVFP4, 64, 36}};
  for (const auto& r : rows) {
    EXPECT_EQ(TraitsOf(r.t).block_elems, r.elems) << GgmlTypeName(r.t);
    EXPECT_EQ(TraitsOf(r.t).block_bytes, r.bytes) << GgmlTypeName(r.t);
  }
  EXPECT_EQ(RowBytes(GgmlType::Q8_0, 512), 16u * 34u);
}

TEST(GgmlTypes, RemovedIdsAreInvalid) {
  for (int id : {4, 5, 31, 32, 33, 36, 37, 38, 43, -1, 1000}) EXPECT_EQ(TraitsOf(id), nullptr) << id;
  EXPECT_NE(TraitsOf(8), nullptr);
}

TEST(GgmlTypes, NamesAreCaseInsensitive) {
  EXPECT_EQ(GgmlTypeFromName("q8_0"), GgmlType::Q8_0);
  EXPECT_EQ(GgmlTypeFromName("Q4_K"), GgmlType::Q4_K);
  EXPECT_EQ(GgmlTypeFromName("bf16"), GgmlType::BF16);
  EXPECT_FALSE(GgmlTypeFromName("q4_2").has_value());
  EXPECT_EQ(GgmlTypeName(GgmlType::Q4_K), "Q4_K");
}

// Every encoder's 16-bit fields sit where the validator looks: a row of
// small values passes, and a second block holding 1e9 (beyond every F16
// scale, its square still finite for the K-quants' weights) is reported at
// its first element. F32 and MXFP4 (an
// E8M0 exponent) have no such field; BF16 overflows only near FLT_MAX.
TEST(GgmlTypes, FirstNonFiniteBlockFindsOverflowedScales) {
  for (int id = 0; id < static_cast<int>(GgmlType::kCount); ++id) {
    const GgmlTypeTraits* tr = TraitsOf(id);
    if (tr == nullptr || tr->encode == nullptr) continue;
    const int64_t n = 2 * tr->block_elems;
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = std::sin(0.37f * static_cast<float>(i));
    std::vector<uint8_t> out(RowBytes(tr->type, n));
    tr->encode(x.data(), nullptr, out.data(), n);
    EXPECT_EQ(FirstNonFiniteBlock(tr->type, out.data(), n), -1) << tr->name;
    x[static_cast<size_t>(tr->block_elems + std::min(3, tr->block_elems - 1))] = 1e9f;
    tr->encode(x.data(), nullptr, out.data(), n);
    const bool has_fields = tr->type != GgmlType::F32 && tr->type != GgmlType::BF16 && tr->type != GgmlType::MXFP4;
    EXPECT_EQ(FirstNonFiniteBlock(tr->type, out.data(), n), has_fields ? tr->block_elems : -1) << tr->name;
  }
  const float big[2] = {1.0f, 3.4028235e38f};  // rounds up to Inf in BF16
  uint16_t bf[2];
  TraitsOf(GgmlType::BF16).encode(big, nullptr, bf, 2);
  EXPECT_EQ(FirstNonFiniteBlock(GgmlType::BF16, bf, 2), 1);
}

}  // namespace
}  // namespace qforge
