#include "io/imatrix.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace qforge {
namespace {
using test::ScratchDir;

std::string HouseImatrix() { return test::SharedDir() + "/reference/llama.cpp/house-14m/house-14m.imatrix.gguf"; }

TEST(Imatrix, ReadsTheReferenceGgufFile) {
  auto m = ReadImatrix(HouseImatrix());
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->entries.size(), 28u);
  EXPECT_EQ(m->chunk_count, 139);
  EXPECT_EQ(m->chunk_size, 256);
  ASSERT_EQ(m->datasets.size(), 1u);
  EXPECT_EQ(m->datasets[0], "calib.txt");
  const auto& q = m->entries.at("blk.0.attn_q.weight");
  ASSERT_EQ(q.values.size(), 512u);
  // q, k and v read the same activations, so their entries agree.
  EXPECT_EQ(q.values, m->entries.at("blk.0.attn_v.weight").values);
  for (float v : q.values) EXPECT_GT(v, 0.0f);
  EXPECT_EQ(m->entries.at("blk.2.ffn_down.weight").values.size(), 1024u);
}

// Writes the legacy .dat layout: mean * ncall per column.
std::string LegacyBytes(const Imatrix& m, int32_t ncall) {
  std::string b;
  auto put = [&](const void* p, size_t n) { b.append(static_cast<const char*>(p), n); };
  const int32_t n = static_cast<int32_t>(m.entries.size());
  put(&n, 4);
  for (const auto& [name, e] : m.entries) {
    const int32_t len = static_cast<int32_t>(name.size()), nval = static_cast<int32_t>(e.values.size());
    put(&len, 4);
    put(name.data(), name.size());
    put(&ncall, 4);
    put(&nval, 4);
    for (float v : e.values) {
      const float s = v * static_cast<float>(ncall);
      put(&s, 4);
    }
  }
  const int32_t chunks = 139, dlen = 9;
  put(&chunks, 4);
  put(&dlen, 4);
  put("calib.txt", 9);
  return b;
}

TEST(Imatrix, ReadsTheLegacyDatFormat) {
  auto ref = ReadImatrix(HouseImatrix());
  ASSERT_TRUE(ref.ok());
  ScratchDir dir;
  test::WriteFile(dir.File("i.dat"), LegacyBytes(*ref, 4));
  auto m = ReadImatrix(dir.File("i.dat"));
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->entries.size(), ref->entries.size());
  EXPECT_EQ(m->chunk_count, 139);
  EXPECT_EQ(m->datasets, std::vector<std::string>{"calib.txt"});
  for (const auto& [name, e] : ref->entries) {
    const auto& d = m->entries.at(name).values;
    ASSERT_EQ(d.size(), e.values.size());
    // Multiplying and dividing by 4 is exact in binary floating point.
    EXPECT_EQ(d, e.values) << name;
  }
}

TEST(Imatrix, TruncatedOrGarbageFilesAreClearErrors) {
  auto ref = ReadImatrix(HouseImatrix());
  ASSERT_TRUE(ref.ok());
  ScratchDir dir;
  const std::string full = LegacyBytes(*ref, 1);
  test::WriteFile(dir.File("t.dat"), full.substr(0, 3000));
  auto t = ReadImatrix(dir.File("t.dat"));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find(dir.File("t.dat")), std::string::npos);
  EXPECT_NE(t.status().message().find("truncated"), std::string::npos) << t.status().message();
  test::WriteFile(dir.File("g.dat"), std::string("\xff\xff\xff\x7f", 4));
  EXPECT_FALSE(ReadImatrix(dir.File("g.dat")).ok());
  // A model GGUF is not an imatrix.
  auto model = ReadImatrix(test::SharedDir() + "/models/stories260K/stories260K-f32.gguf");
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("imatrix"), std::string::npos);
}

// Entries are means of squares: a negative or non-finite value is refused,
// naming the entry and the value (a negative weight makes the K-quant
// searches seek the largest error).
TEST(Imatrix, NegativeOrNonFiniteValuesAreRefused) {
  auto ref = ReadImatrix(HouseImatrix());
  ASSERT_TRUE(ref.ok());
  ScratchDir dir;
  for (const float bad : {-2.0f, NAN}) {
    Imatrix m = *ref;
    m.entries.at("blk.0.attn_q.weight").values[3] = bad;
    test::WriteFile(dir.File("bad.dat"), LegacyBytes(m, 1));
    auto r = ReadImatrix(dir.File("bad.dat"));
    ASSERT_FALSE(r.ok());
    for (const std::string& part : {std::string("'blk.0.attn_q.weight'"), std::string("value 3 is "), std::string(">= 0")}) {
      EXPECT_NE(r.status().message().find(part), std::string::npos) << r.status().message();
    }
  }
}

// A decoder tensor the imatrix has no entry for is quantized without
// importance, as llama-quantize does, but never silently: the plan warns.
TEST(Imatrix, MissingEntryIsAWarning) {
  auto ref = ReadImatrix(HouseImatrix());
  ASSERT_TRUE(ref.ok());
  ScratchDir dir;
  test::WriteFile(dir.File("full.dat"), LegacyBytes(*ref, 1));
  Imatrix m = *ref;
  m.entries.erase("blk.1.ffn_up.weight");
  test::WriteFile(dir.File("short.dat"), LegacyBytes(m, 1));
  const auto full = test::RunQforge({"plan", test::HouseModelDir(), "-f", "Q4_K_M", "--imatrix", dir.File("full.dat"), "--json"});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  EXPECT_EQ(nlohmann::json::parse(full.out)["warnings"].size(), 0u) << full.out;
  const auto r = test::RunQforge({"plan", test::HouseModelDir(), "-f", "Q4_K_M", "--imatrix", dir.File("short.dat"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto w = nlohmann::json::parse(r.out)["warnings"];
  ASSERT_EQ(w.size(), 1u) << r.out;
  EXPECT_NE(w[0].get<std::string>().find("no entry for 1 tensor(s) to be quantized (blk.1.ffn_up.weight)"), std::string::npos) << w[0];
}

TEST(Imatrix, IncludeAndExcludeFilters) {
  auto m = ReadImatrix(HouseImatrix());
  ASSERT_TRUE(m.ok());
  Imatrix only_down = *m;
  FilterImatrix(&only_down, {"ffn_down"}, {});
  EXPECT_EQ(only_down.entries.size(), 4u);
  Imatrix no_attn = *m;
  FilterImatrix(&no_attn, {}, {"attn_"});
  EXPECT_EQ(no_attn.entries.size(), 12u);
}

}  // namespace
}  // namespace qforge
