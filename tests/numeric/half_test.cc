#include "numeric/half.h"

#include <gtest/gtest.h>

#include <cmath>

namespace qforge {
namespace {

struct HalfCase {
  uint32_t f32;
  uint16_t f16;
  uint32_t back;
  uint16_t bf16;
};

// The conversion table of the spec (section 2.2), produced by ggml itself.
constexpr HalfCase kCases[] = {
    {0x3f800000, 0x3c00, 0x3f800000, 0x3f80}, {0x80000000, 0x8000, 0x80000000, 0x8000},
    {0x477fe000, 0x7bff, 0x477fe000, 0x4780}, {0x477ff000, 0x7c00, 0x7f800000, 0x4780},
    {0x477fefff, 0x7bff, 0x477fe000, 0x4780}, {0x7f800000, 0x7c00, 0x7f800000, 0x7f80},
    {0x7fc00000, 0x7e00, 0x7fc00000, 0x7fc0}, {0x7f800001, 0x7e00, 0x7fc00000, 0x7fc0},
    {0xffc12345, 0xfe00, 0xffc00000, 0xffc1}, {0x33800000, 0x0001, 0x33800000, 0x3380},
    {0x33000000, 0x0000, 0x00000000, 0x3300}, {0x33000001, 0x0001, 0x33800000, 0x3300},
    {0x387fc000, 0x03ff, 0x387fc000, 0x3880}, {0x3f801000, 0x3c00, 0x3f800000, 0x3f80},
    {0x3f803000, 0x3c02, 0x3f804000, 0x3f80}, {0x3dcccccd, 0x2e66, 0x3dccc000, 0x3dcd},
    {0x40490fdb, 0x4248, 0x40490000, 0x4049}, {0x3f808000, 0x3c04, 0x3f808000, 0x3f80},
    {0x3f818000, 0x3c0c, 0x3f818000, 0x3f82}, {0x3f817fff, 0x3c0c, 0x3f818000, 0x3f81},
};

TEST(Half, MatchesReferenceTable) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(::testing::Message() << std::hex << c.f32);
    const float f = FloatFromBits(c.f32);
    EXPECT_EQ(FloatToHalf(f), c.f16);
    EXPECT_EQ(BitsOfFloat(HalfToFloat(c.f16)), c.back);
    EXPECT_EQ(FloatToBf16(f), c.bf16);
  }
}

TEST(Half, EveryFiniteHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(FloatToHalf(f), h) << std::hex << h;
  }
}

TEST(Bf16, RoundTripIsTruncationOfExactValues) {
  for (uint32_t b = 0; b < 0x10000; b += 7) {
    const float f = Bf16ToFloat(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    EXPECT_EQ(FloatToBf16(f), b);
  }
}

}  // namespace
}  // namespace qforge
