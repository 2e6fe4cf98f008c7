// The SIMD kernels give the scalar references' bytes on every instruction
// set this machine supports (Highway dispatch pinned to each in turn).
#include "codecs/simd_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "codecs/ggml_legacy.h"
#include "codecs/ggml_types.h"
#include "codecs/scale_search.h"
#include "numeric/half.h"

namespace qforge {
namespace {

std::vector<float> Probe() {
  std::vector<float> v;
  for (uint64_t u = 0; u < (uint64_t{1} << 32); u += 4093) v.push_back(FloatFromBits(static_cast<uint32_t>(u)));
  for (float f : {0.0f, -0.0f, 1.0f, 65504.0f, 65520.0f, 65519.996f, std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                  FloatFromBits(0x7f800001), FloatFromBits(0xffc12345), FloatFromBits(0x33000000),
                  FloatFromBits(0x33000001), FloatFromBits(0x3f801000), FloatFromBits(0x3f803000),
                  FloatFromBits(0x3f808000), FloatFromBits(0x3f818000)}) {
    v.push_back(f);
  }
  v.resize(v.size() + 3, 0.5f);  // an odd tail for the scalar remainder
  return v;
}

void CheckTarget(const char* target, void*) {
  SCOPED_TRACE(target);
  const auto x = Probe();
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint16_t> h(x.size()), b(x.size());
  simd::EncodeF16(x.data(), h.data(), n);
  simd::EncodeBF16(x.data(), b.data(), n);
  int bad_h = 0, bad_b = 0;
  for (int64_t i = 0; i < n; ++i) {
    bad_h += h[i] != FloatToHalf(x[i]);
    bad_b += b[i] != FloatToBf16(x[i]);
  }
  EXPECT_EQ(bad_h, 0);
  EXPECT_EQ(bad_b, 0);

  std::vector<uint16_t> all(65536 + 5);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
  std::vector<float> y(all.size());
  simd::DecodeF16(all.data(), y.data(), static_cast<int64_t>(all.size()));
  int bad_d = 0;
  for (size_t i = 0; i < all.size(); ++i) bad_d += BitsOfFloat(y[i]) != BitsOfFloat(HalfToFloat(all[i]));
  EXPECT_EQ(bad_d, 0);

  // Q8_0 on rows with exact .5 ties, outliers and zero blocks.
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> row(4096);
  for (auto& v : row) v = nd(rng);
  for (int j = 0; j < 32; ++j) row[j] = static_cast<float>(j - 16) * 0.5f;  // amax 8: ties at k+0.5
  for (int j = 32; j < 64; ++j) row[j] = 0.0f;
  row[100] = 1e6f;
  std::vector<uint8_t> q1(RowBytes(GgmlType::Q8_0, 4096)), q2(q1.size());
  simd::EncodeQ8_0(row.data(), q1.data(), 4096);
  EncodeRowQ8_0Scalar(row.data(), q2.data(), 4096);
  EXPECT_EQ(q1, q2);

  // Level search: random values, exact levels and exact midpoints (ties).
  const int8_t levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  std::vector<float> v;
  std::uniform_real_distribution<float> u(-140.0f, 140.0f);
  for (int i = 0; i < 4000; ++i) v.push_back(u(rng));
  for (int k = 0; k < 16; ++k) v.push_back(levels[k]);
  for (int k = 0; k < 15; ++k) v.push_back(0.5f * (levels[k] + levels[k + 1]));
  std::vector<uint8_t> idx(v.size());
  simd::NearestLevelIndices(v.data(), 1.0f, levels, idx.data(), static_cast<int>(v.size()));
  int bad_i = 0;
  for (size_t i = 0; i < v.size(); ++i) bad_i += idx[i] != BestIndexInt8(16, levels, v[i]);
  EXPECT_EQ(bad_i, 0);

  // The batched asymmetric scale search equals one scalar search per
  // sub-block, for the parameter sets the k-quants use, including constant
  // and all-zero sub-blocks (the degenerate case).
  struct Params {
    int nsub, n, nmax;
    float rmin, rdelta;
    int nstep;
    bool mad, qkx3;
  };
  const Params params[] = {{16, 16, 3, -0.5f, 0.1f, 15, true, false},   {8, 32, 15, -1.0f, 0.1f, 20, false, false},
                           {8, 32, 31, -0.5f, 0.1f, 15, false, false},  {16, 16, 3, -0.9f, 0.05f, 36, false, true},
                           {8, 32, 15, -0.9f, 0.05f, 36, false, true},  {8, 32, 31, -0.9f, 0.05f, 36, false, true}};
  std::uniform_real_distribution<float> pos(0.1f, 2.0f);
  for (const auto& p : params) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> xs(256), ws(256), xt(256), wt(256), sc(16), mn(16);
      for (int i = 0; i < 256; ++i) {
        xs[static_cast<size_t>(i)] = trial % 3 == 0 ? nd(rng) : nd(rng) * nd(rng);
        ws[static_cast<size_t>(i)] = pos(rng);
      }
      for (int i = 0; i < p.n; ++i) xs[static_cast<size_t>(i)] = 0.0f;               // sub-block 0: zeros
      for (int i = 0; i < p.n; ++i) xs[static_cast<size_t>(p.n + i)] = 0.75f;        // sub-block 1: constant
      std::vector<uint8_t> lt(256), ls(256), aux(64);
      for (int k = 0; k < p.nsub; ++k) {
        for (int i = 0; i < p.n; ++i) {
          xt[static_cast<size_t>(i * p.nsub + k)] = xs[static_cast<size_t>(k * p.n + i)];
          wt[static_cast<size_t>(i * p.nsub + k)] = ws[static_cast<size_t>(k * p.n + i)];
        }
      }
      simd::MakeQkxBatch(p.nsub, p.n, p.nmax, xt.data(), wt.data(), lt.data(), sc.data(), mn.data(), p.rmin,
                         p.rdelta, p.nstep, p.mad, p.qkx3);
      for (int k = 0; k < p.nsub; ++k) {
        float the_min = 0.0f;
        const float scale = MakeQkxQuants(p.n, p.nmax, xs.data() + k * p.n, ws.data() + k * p.n, ls.data() + k * p.n,
                                          &the_min, aux.data(), p.rmin, p.rdelta, p.nstep, p.mad, p.qkx3);
        ASSERT_EQ(BitsOfFloat(scale), BitsOfFloat(sc[static_cast<size_t>(k)])) << "sub-block " << k;
        ASSERT_EQ(BitsOfFloat(the_min), BitsOfFloat(mn[static_cast<size_t>(k)])) << "sub-block " << k;
        for (int i = 0; i < p.n; ++i) {
          ASSERT_EQ(ls[static_cast<size_t>(k * p.n + i)], lt[static_cast<size_t>(i * p.nsub + k)]);
        }
      }
    }
  }
}

void CheckQxBatch() {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> pos(0.1f, 2.0f);
  for (int nmax : {32, 4, 8, 16}) {
    for (bool weighted : {false, true}) {
      for (int trial = 0; trial < 10; ++trial) {
        std::vector<float> xs(256), ws(256), xt(256), wt(256), sc(16);
        for (int i = 0; i < 256; ++i) {
          xs[static_cast<size_t>(i)] = trial % 2 ? nd(rng) : nd(rng) * nd(rng) * nd(rng);
          ws[static_cast<size_t>(i)] = pos(rng);
        }
        for (int i = 0; i < 16; ++i) xs[static_cast<size_t>(16 + i)] = 0.0f;  // a zero sub-block
        for (int k = 0; k < 16; ++k) {
          for (int i = 0; i < 16; ++i) {
            xt[static_cast<size_t>(i * 16 + k)] = xs[static_cast<size_t>(k * 16 + i)];
            wt[static_cast<size_t>(i * 16 + k)] = ws[static_cast<size_t>(k * 16 + i)];
          }
        }
        std::vector<int8_t> lt(256), ls(256);
        simd::MakeQxBatch(16, 16, nmax, xt.data(), weighted ? wt.data() : nullptr, lt.data(), sc.data());
        for (int k = 0; k < 16; ++k) {
          const float scale =
              MakeQxQuants(16, nmax, xs.data() + k * 16, ls.data() + k * 16, 1, weighted ? ws.data() + k * 16 : nullptr);
          ASSERT_EQ(BitsOfFloat(scale), BitsOfFloat(sc[static_cast<size_t>(k)])) << "nmax " << nmax << " k " << k;
          for (int i = 0; i < 16; ++i) ASSERT_EQ(ls[static_cast<size_t>(k * 16 + i)], lt[static_cast<size_t>(i * 16 + k)]);
        }
      }
    }
  }
}

TEST(SimdKernels, MatchScalarOnEveryTarget) {
  int targets = 0;
  simd::ForEachSupportedTarget(
      [](const char* name, void* ctx) {
        ++*static_cast<int*>(ctx);
        CheckTarget(name, nullptr);
        SCOPED_TRACE(name);
        CheckQxBatch();
      },
      &targets);
  EXPECT_GE(targets, 1);
  std::string names;
  for (const auto& t : simd::CompiledTargets()) names += t + " ";
  std::printf("  targets checked: %s\n", names.c_str());
}

}  // namespace
}  // namespace qforge
