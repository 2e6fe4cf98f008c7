// The model view: tensors found by name in constant time (also after the
// vector changes), stacked tensors read across their parts without a copy,
// transforms applied on read, and parts that disagree refused.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "model/model.h"

namespace qforge {
namespace {

std::vector<float> Ramp(int64_t n, float start) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = start + static_cast<float>(i);
  return v;
}

TEST(ModelView, StackedPartsReadAcrossBoundariesWithoutCopy) {
  const int64_t ne0 = 32, rows = 3;
  std::vector<std::vector<float>> experts = {Ramp(ne0 * rows, 0), Ramp(ne0 * rows, 1000), Ramp(ne0 * rows, 2000)};
  std::vector<TensorPart> parts;
  for (const auto& e : experts) {
    parts.push_back({reinterpret_cast<const uint8_t*>(e.data()), static_cast<uint64_t>(e.size() * 4), rows, nullptr});
  }
  auto t = StackTensors("blk.0.ffn_up_exps.weight", "experts.*.up_proj", GgmlType::F32, ne0, parts);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->ne, (std::vector<int64_t>{ne0, rows, 3}));
  EXPECT_EQ(t->n_rows(), rows * 3);
  EXPECT_FALSE(t->stored_as_is());
  // Rows 2..5 span experts 0 and 1.
  std::vector<float> out(static_cast<size_t>(4 * ne0));
  ASSERT_TRUE(ReadRowsF32(*t, 2, 4, out.data()).ok());
  EXPECT_EQ(out[0], experts[0][static_cast<size_t>(2 * ne0)]);
  EXPECT_EQ(out[static_cast<size_t>(ne0)], experts[1][0]);
  EXPECT_EQ(out[static_cast<size_t>(4 * ne0 - 1)], experts[1][static_cast<size_t>(3 * ne0 - 1)]);
  // The whole tensor, expert by expert.
  auto all = ReadTensorF32(*t);
  ASSERT_TRUE(all.ok());
  for (int e = 0; e < 3; ++e) {
    EXPECT_EQ(0, std::memcmp(all->data() + e * rows * ne0, experts[static_cast<size_t>(e)].data(), rows * ne0 * 4)) << e;
  }
}

TEST(ModelView, PartsThatDisagreeAreRefused) {
  std::vector<float> a = Ramp(64, 0), b = Ramp(96, 0);
  std::vector<TensorPart> parts = {{reinterpret_cast<const uint8_t*>(a.data()), 256, 2, nullptr},
                                   {reinterpret_cast<const uint8_t*>(b.data()), 384, 3, nullptr}};
  auto t = StackTensors("x", "experts.*.w", GgmlType::F32, 32, parts);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("part 1 has 3 rows"), std::string::npos) << t.status().message();
  EXPECT_FALSE(StackTensors("x", "w", GgmlType::Q8_0, 48, {}).ok());
}

TEST(ModelView, OffsetAndPermutationApplyOnRead) {
  // A norm stored as weight - 1 (Gemma's convention) reads as the weight.
  std::vector<float> stored = Ramp(8, -1.0f);
  ModelTensor norm;
  norm.name = "blk.0.attn_norm.weight";
  norm.ne = {8};
  norm.data = reinterpret_cast<const uint8_t*>(stored.data());
  norm.nbytes = 32;
  norm.add_on_read = 1.0f;
  std::vector<float> out(8);
  ASSERT_TRUE(ReadRowsF32(norm, 0, 1, out.data()).ok());
  for (int i = 0; i < 8; ++i) EXPECT_EQ(out[static_cast<size_t>(i)], static_cast<float>(i));
  // Q rows over 2 heads of 4: row r of the view is source row SourceRowOf(r).
  std::vector<float> q = Ramp(8 * 4, 0);
  ModelTensor t;
  t.name = "blk.0.attn_q.weight";
  t.ne = {4, 8};
  t.data = reinterpret_cast<const uint8_t*>(q.data());
  t.nbytes = q.size() * 4;
  t.permute_heads = 2;
  std::vector<float> rows(32);
  ASSERT_TRUE(ReadRowsF32(t, 0, 8, rows.data()).ok());
  for (int64_t r = 0; r < 8; ++r) EXPECT_EQ(rows[static_cast<size_t>(r * 4)], q[static_cast<size_t>(SourceRowOf(r, 8, 2) * 4)]);
  EXPECT_EQ(SourceRowOf(1, 8, 2), 2);  // interleaved pairs: view row 1 is the second half's first row
}

TEST(ModelView, FindUsesTheIndexAndFollowsChanges) {
  Model m;
  for (int i = 0; i < 5000; ++i) {
    ModelTensor t;
    t.name = "blk." + std::to_string(i / 10) + ".t" + std::to_string(i % 10);
    m.tensors.push_back(std::move(t));
  }
  ASSERT_NE(m.Find("blk.250.t3"), nullptr);
  EXPECT_EQ(m.Find("blk.250.t3")->name, "blk.250.t3");
  EXPECT_EQ(m.Find("missing"), nullptr);
  m.tensors[7].name = "renamed";
  EXPECT_EQ(m.Find("blk.0.t7"), nullptr);  // a stale entry is noticed
  m.ReIndex();                              // renames in place need it
  EXPECT_EQ(m.Find("renamed"), &m.tensors[7]);
  ModelTensor extra;
  extra.name = "added";
  m.tensors.push_back(extra);
  EXPECT_EQ(m.Find("added"), &m.tensors.back());
}

}  // namespace
}  // namespace qforge
