// The three GPU integer layouts: bit packing against the spec's examples,
// tensor names/dtypes/shapes for the bundled model's shapes, and pack ->
// unpack giving back exactly the integer grid the quantizer chose.
#include "io/int_layouts.h"

#include <gtest/gtest.h>

#include <cstring>

#include "test_util.h"

namespace qforge {
namespace {

std::vector<float> RandomMatrix(int64_t rows, int64_t cols, uint32_t seed) {
  test::XorShift32 rng(seed);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (float& v : w) v = (rng.U01() - 0.45f) * 0.1f;  // slightly skewed, so asymmetric zeros vary
  return w;
}

// The packed tensors as a reader sees them (StTensor views of the bytes).
PackedLinear AsPacked(IntLayout l, const IntQuantSpec& spec, int64_t rows, int64_t cols,
                      const std::vector<StWriteTensor>& tensors) {
  PackedLinear p;
  p.layout = l;
  p.spec = spec;
  p.rows = rows;
  p.cols = cols;
  for (const auto& t : tensors) {
    StTensor s;
    s.name = t.name;
    s.dtype = t.dtype;
    s.shape = t.shape;
    s.data = t.bytes.data();
    s.nbytes = t.bytes.size();
    auto ends = [&](const char* suf) {
      const std::string x(suf);
      return t.name.size() > x.size() && t.name.compare(t.name.size() - x.size(), x.size(), x) == 0;
    };
    if (ends(".weight_packed") || ends(".qweight")) p.packed = s;
    if (ends(".weight_scale") || ends(".scales")) p.scales = s;
    if (ends(".weight_zero_point") || ends(".qzeros")) p.zeros = s;
    if (ends(".weight_g_idx") || ends(".g_idx")) p.g_idx = s;
  }
  return p;
}

TEST(PackBits, FourBitCodesLsbFirst) {
  EXPECT_EQ(PackBits({0, 1, 2, 3, 4, 5, 6, 7}, 4), std::vector<uint32_t>{0x76543210u});
  EXPECT_EQ(PackBits({0x12, 0x34, 0x56, 0x78}, 8), std::vector<uint32_t>{0x78563412u});
}

TEST(PackBits, ThreeBitStreamStraddlesWords) {
  // Spec §4.2: 32 codes fill three words; code 10 straddles words 0 and 1,
  // code 21 words 1 and 2.
  std::vector<uint32_t> v(32, 0);
  v[10] = 0b111;
  auto w = PackBits(v, 3);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0], 0xC0000000u);  // low 2 bits of code 10 at bits 30-31
  EXPECT_EQ(w[1], 0x1u);         // its bit 2 at bit 0
  v.assign(32, 0);
  v[21] = 0b101;
  w = PackBits(v, 3);
  EXPECT_EQ(w[1], 0x80000000u);  // bit 0 of code 21 at bit 31
  EXPECT_EQ(w[2], 0x2u);         // bits 1-2 (0b10) at bits 0-1
  for (int bits : {2, 3, 4, 8}) {
    test::XorShift32 rng(7u + bits);
    std::vector<uint32_t> vals(101);
    for (auto& x : vals) x = rng.Next() & ((1u << bits) - 1);
    const auto words = PackBits(vals, bits);
    for (size_t i = 0; i < vals.size(); ++i) ASSERT_EQ(UnpackBits(words.data(), static_cast<int64_t>(i), bits), vals[i]) << bits;
  }
}

struct Expected {
  std::string suffix;
  StDtype dtype;
  std::vector<int64_t> shape;
};

void ExpectTensors(const std::vector<StTensorSpec>& got, const std::string& prefix, const std::vector<Expected>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].name, prefix + want[i].suffix);
    EXPECT_EQ(got[i].dtype, want[i].dtype) << got[i].name;
    EXPECT_EQ(got[i].shape, want[i].shape) << got[i].name;
  }
}

// house-14m: q_proj [512, 512], k_proj [256, 512], down_proj [512, 1024].
TEST(LayoutTensors, CompressedTensorsAsTheSpecNamesThem) {
  IntQuantSpec sym;
  const std::string q = "model.layers.0.self_attn.q_proj";
  ExpectTensors(LayoutTensors(IntLayout::kCompressedTensors, q, 512, 512, sym, false, StDtype::BF16), q,
                {{".weight_packed", StDtype::I32, {512, 64}}, {".weight_scale", StDtype::BF16, {512, 4}},
                 {".weight_shape", StDtype::I64, {2}}});
  IntQuantSpec asym;
  asym.symmetric = false;
  const std::string k = "model.layers.0.self_attn.k_proj";
  ExpectTensors(LayoutTensors(IntLayout::kCompressedTensors, k, 256, 512, asym, true, StDtype::BF16), k,
                {{".weight_packed", StDtype::I32, {256, 64}}, {".weight_scale", StDtype::BF16, {256, 4}},
                 {".weight_shape", StDtype::I64, {2}}, {".weight_zero_point", StDtype::I32, {32, 4}},
                 {".weight_g_idx", StDtype::I32, {512}}});
  IntQuantSpec w8;
  w8.bits = 8;
  const std::string d = "model.layers.0.mlp.down_proj";
  ExpectTensors(LayoutTensors(IntLayout::kCompressedTensors, d, 512, 1024, w8, false, StDtype::BF16), d,
                {{".weight_packed", StDtype::I32, {512, 256}}, {".weight_scale", StDtype::BF16, {512, 8}},
                 {".weight_shape", StDtype::I64, {2}}});
}

TEST(LayoutTensors, GptqAsTheSpecNamesThem) {
  IntQuantSpec s;
  const std::string k = "model.layers.0.self_attn.k_proj";
  ExpectTensors(LayoutTensors(IntLayout::kGptq, k, 256, 512, s, false, StDtype::BF16), k,
                {{".qweight", StDtype::I32, {64, 256}}, {".qzeros", StDtype::I32, {4, 32}},
                 {".scales", StDtype::F16, {4, 256}}, {".g_idx", StDtype::I32, {512}}});
  s.group_size = -1;
  const std::string d = "model.layers.0.mlp.down_proj";
  ExpectTensors(LayoutTensors(IntLayout::kGptq, d, 512, 1024, s, false, StDtype::BF16), d,
                {{".qweight", StDtype::I32, {128, 512}}, {".qzeros", StDtype::I32, {1, 64}},
                 {".scales", StDtype::F16, {1, 512}}, {".g_idx", StDtype::I32, {1024}}});
}

TEST(LayoutTensors, AwqAsTheSpecNamesThem) {
  IntQuantSpec s;
  s.symmetric = false;
  const std::string k = "model.layers.0.self_attn.k_proj";
  ExpectTensors(LayoutTensors(IntLayout::kAwq, k, 256, 512, s, false, StDtype::BF16), k,
                {{".qweight", StDtype::I32, {512, 32}}, {".qzeros", StDtype::I32, {4, 32}},
                 {".scales", StDtype::F16, {4, 256}}});
}

TEST(LayoutSupports, RefusesWhatALayoutCannotHold) {
  IntQuantSpec s;
  s.bits = 8;
  EXPECT_FALSE(LayoutSupports(IntLayout::kAwq, 512, 512, s, false).ok());
  s.bits = 4;
  EXPECT_FALSE(LayoutSupports(IntLayout::kAwq, 512, 512, s, true).ok());  // act-order needs g_idx
  EXPECT_FALSE(LayoutSupports(IntLayout::kAwq, 500, 512, s, false).ok());
  EXPECT_TRUE(LayoutSupports(IntLayout::kAwq, 512, 512, s, false).ok());
  s.symmetric = false;
  EXPECT_FALSE(LayoutSupports(IntLayout::kGptq, 512, 512, s, false).ok());  // v1 needs zeros >= 1
  s.zero_at_least_one = true;
  EXPECT_TRUE(LayoutSupports(IntLayout::kGptq, 512, 512, s, false).ok());
  s.group_size = 100;
  EXPECT_FALSE(LayoutSupports(IntLayout::kCompressedTensors, 512, 512, s, false).ok());
}

TEST(GptqLayout, SymmetricZerosAreSevens) {
  IntQuantSpec s;
  s.scale_dtype = ScaleDtype::kF16;
  const auto w = RandomMatrix(64, 256, 3);
  const auto t = PackLayout(IntLayout::kGptq, "m", QuantizeRtn(w.data(), 64, 256, s), StDtype::BF16);
  ASSERT_EQ(t[1].name, "m.qzeros");
  for (size_t i = 0; i < t[1].bytes.size(); i += 4) {
    uint32_t v;
    std::memcpy(&v, t[1].bytes.data() + i, 4);
    ASSERT_EQ(v, 0x77777777u);
  }
  s.bits = 8;
  const auto t8 = PackLayout(IntLayout::kGptq, "m", QuantizeRtn(w.data(), 64, 256, s), StDtype::BF16);
  uint32_t v;
  std::memcpy(&v, t8[1].bytes.data(), 4);
  EXPECT_EQ(v, 0x7F7F7F7Fu);
}

TEST(AwqLayout, InterleavedNibbleOrder) {
  // One row of 8 columns with codes 0..7: nibble i holds column [0,2,4,6,1,3,5,7][i].
  IntQuantized q;
  q.spec.symmetric = false;
  q.spec.group_size = -1;
  q.rows = 8;
  q.cols = 1;
  q.n_groups = 1;
  q.codes = {0, 1, 2, 3, 4, 5, 6, 7};
  q.scales.assign(8, 1.0f);
  q.zeros = {8, 9, 10, 11, 12, 13, 14, 15};
  q.g_idx = {0};
  const auto t = PackLayout(IntLayout::kAwq, "m", q, StDtype::F16);
  uint32_t w;
  std::memcpy(&w, t[0].bytes.data(), 4);
  EXPECT_EQ(w, 0x75316420u);
  std::memcpy(&w, t[1].bytes.data(), 4);
  EXPECT_EQ(w, 0xFDB9ECA8u);
}

struct RoundTripCase {
  IntLayout layout;
  int bits;
  int64_t group;
  bool symmetric;
  bool act_order;
};

class LayoutRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(LayoutRoundTrip, UnpackGivesTheQuantizersGrid) {
  const RoundTripCase c = GetParam();
  IntQuantSpec s;
  s.bits = c.bits;
  s.group_size = c.group;
  s.symmetric = c.symmetric;
  s.scale_dtype = LayoutScaleDtype(c.layout, StDtype::BF16);
  s.zero_at_least_one = c.layout == IntLayout::kGptq && !c.symmetric;
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{512, 512}, {256, 512}, {512, 1024}}) {
    const auto w = RandomMatrix(rows, cols, static_cast<uint32_t>(rows + cols + c.bits));
    IntQuantized q = QuantizeRtn(w.data(), rows, cols, s);
    if (c.act_order) {  // a non-monotonic g_idx, as act-order writes
      const int64_t len = s.GroupLen(cols);
      for (int64_t k = 0; k < cols; ++k) q.g_idx[static_cast<size_t>(k)] = static_cast<int32_t>((k % (cols / len)));
    }
    ASSERT_TRUE(LayoutSupports(c.layout, rows, cols, s, c.act_order).ok());
    const auto tensors = PackLayout(c.layout, "p", q, StDtype::BF16);
    const auto specs = LayoutTensors(c.layout, "p", rows, cols, s, c.act_order, StDtype::BF16);
    ASSERT_EQ(tensors.size(), specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      EXPECT_EQ(tensors[i].bytes.size(), specs[i].nbytes()) << specs[i].name;
    }
    const PackedLinear p = AsPacked(c.layout, s, rows, cols, tensors);
    ASSERT_TRUE(p.Validate("p").ok()) << p.Validate("p").message();
    const IntQuantized u = p.Unpack();
    EXPECT_EQ(u.codes, q.codes);
    EXPECT_EQ(u.zeros, q.zeros);
    EXPECT_EQ(u.scales, q.scales);  // the quantizer's scales were already in the stored dtype
    EXPECT_EQ(u.g_idx, q.g_idx);
    std::vector<float> a(static_cast<size_t>(rows * cols)), b(a.size());
    q.DequantizeRows(0, rows, a.data());
    ASSERT_TRUE(p.DecodeRows(0, rows, b.data()).ok());
    EXPECT_EQ(a, b);
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, LayoutRoundTrip,
    ::testing::Values(RoundTripCase{IntLayout::kCompressedTensors, 4, 128, true, false},
                      RoundTripCase{IntLayout::kCompressedTensors, 4, 128, false, false},
                      RoundTripCase{IntLayout::kCompressedTensors, 8, 128, true, false},
                      RoundTripCase{IntLayout::kCompressedTensors, 8, -1, false, false},
                      RoundTripCase{IntLayout::kCompressedTensors, 3, 64, false, false},
                      RoundTripCase{IntLayout::kCompressedTensors, 4, 32, true, true},
                      RoundTripCase{IntLayout::kGptq, 4, 128, true, false},
                      RoundTripCase{IntLayout::kGptq, 4, 128, false, false},
                      RoundTripCase{IntLayout::kGptq, 8, -1, true, false},
                      RoundTripCase{IntLayout::kGptq, 2, 64, false, false},
                      RoundTripCase{IntLayout::kGptq, 3, 128, true, false},
                      RoundTripCase{IntLayout::kGptq, 4, 128, true, true},
                      RoundTripCase{IntLayout::kAwq, 4, 128, false, false},
                      RoundTripCase{IntLayout::kAwq, 4, 64, true, false}));

TEST(PackedLinear, ValidateNamesTheBadTensor) {
  IntQuantSpec s;
  const auto w = RandomMatrix(64, 256, 9);
  auto tensors = PackLayout(IntLayout::kCompressedTensors, "m", QuantizeRtn(w.data(), 64, 256, s), StDtype::BF16);
  PackedLinear p = AsPacked(IntLayout::kCompressedTensors, s, 64, 256, tensors);
  p.packed.shape = {64, 31};
  Status st = p.Validate("ckpt: m");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("m.weight_packed: shape [64, 31], expected [64, 32]"), std::string::npos) << st.message();
  p = AsPacked(IntLayout::kCompressedTensors, s, 64, 256, tensors);
  std::vector<int32_t> bad(256, 0);
  bad[5] = 7;  // only 2 groups
  p.g_idx.dtype = StDtype::I32;
  p.g_idx.shape = {256};
  p.g_idx.data = reinterpret_cast<const uint8_t*>(bad.data());
  st = p.Validate("m");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("entry 5 is group 7"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace qforge
