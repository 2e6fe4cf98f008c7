#include "codecs/ggml_types.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace qforge
