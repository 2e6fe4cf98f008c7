#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>

#include "test_util.h"

namespace qforge {
namespace {
using test::ScratchDir;

std::vector<uint8_t> Bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

TEST(Safetensors, WriteThenReadBack) {
  ScratchDir dir;
  std::vector<StWriteTensor> ts = {
      {"b.weight", StDtype::BF16, {3, 4}, Bytes(24, 1)},
      {"a.bias", StDtype::F32, {4}, Bytes(16, 2)},
      {"c.idx", StDtype::I64, {2}, Bytes(16, 3)},
      {"d.flag", StDtype::U8, {5}, Bytes(5, 4)},
  };
  ASSERT_TRUE(WriteSafetensorsFile(dir.File("m.safetensors"), ts).ok());
  std::map<std::string, std::string> md;
  auto r = ReadSafetensorsFile(dir.File("m.safetensors"), &md);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(md["format"], "pt");
  ASSERT_EQ(r->size(), 4u);
  for (const auto& w : ts) {
    auto it = std::find_if(r->begin(), r->end(), [&](const StTensor& t) { return t.name == w.name; });
    ASSERT_NE(it, r->end());
    EXPECT_EQ(it->dtype, w.dtype);
    EXPECT_EQ(it->shape, w.shape);
    ASSERT_EQ(it->nbytes, w.bytes.size());
    EXPECT_EQ(std::memcmp(it->data, w.bytes.data(), w.bytes.size()), 0);
    // The reference layout keeps every tensor aligned to its element size.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(it->data) % StDtypeBytes(it->dtype), 0u);
  }
  // Header padded to a multiple of 8 with spaces.
  std::string raw = test::ReadFile(dir.File("m.safetensors"));
  uint64_t n;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ(n % 8, 0u);
}

TEST(Safetensors, ShardedIndex) {
  ScratchDir dir;
  ASSERT_TRUE(WriteSafetensorsFile(dir.File("model-00001-of-00002.safetensors"),
                                   {{"x", StDtype::F32, {2}, Bytes(8, 1)}}).ok());
  ASSERT_TRUE(WriteSafetensorsFile(dir.File("model-00002-of-00002.safetensors"),
                                   {{"y", StDtype::F16, {2}, Bytes(4, 2)}}).ok());
  test::WriteFile(dir.File("model.safetensors.index.json"),
                  R"({"metadata": {"total_size": 12}, "weight_map": {"y": "model-00002-of-00002.safetensors",
                      "x": "model-00001-of-00002.safetensors"}})");
  auto m = SafetensorsModel::Open(dir.path());
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->tensors().size(), 2u);
  EXPECT_EQ(m->tensors()[0].name, "x");
  EXPECT_EQ(m->tensors()[1].name, "y");
  // An index naming a tensor the shard lacks is an error naming it.
  test::WriteFile(dir.File("model.safetensors.index.json"),
                  R"({"weight_map": {"z": "model-00001-of-00002.safetensors"}})");
  auto bad = SafetensorsModel::Open(dir.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("weight_map.z"), std::string::npos) << bad.status().message();
}

std::string Make(const std::string& header, size_t data_bytes) {
  std::string s(8, '\0');
  uint64_t n = header.size();
  std::memcpy(&s[0], &n, 8);
  return s + header + std::string(data_bytes, '\x01');
}

struct BadCase {
  const char* name;
  std::string bytes;
  const char* expect;
};

TEST(Safetensors, RejectsMalformedFiles) {
  ScratchDir dir;
  const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  std::string header_past_end(8, '\0');
  uint64_t big = 1000;
  std::memcpy(&header_past_end[0], &big, 8);
  header_past_end += "{}";
  const BadCase cases[] = {
      {"truncated", std::string("\x05\x00", 2), "header length"},
      {"header_past_end", header_past_end, "past the end"},
      {"huge_header", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8), "exceeds"},
      {"bad_json", Make("{\"t\":", 0), "invalid JSON"},
      {"not_object", Make("[1,2]", 0), "expected a JSON object"},
      {"unknown_dtype", Make(R"({"t":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}})", 8), "dtype"},
      {"offset_out_of_range", Make(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4), "out of range"},
      {"size_mismatch", Make(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "need 12"},
      {"bad_shape", Make(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "shape"},
      {"missing_offsets", Make(R"({"t":{"dtype":"F32","shape":[2]}})", 8), "data_offsets"},
      {"overlap", Make("{" + ok_entry + R"(,"u":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12), "overlap"},
      {"bad_metadata", Make(R"({"__metadata__":{"format":1}})", 0), "__metadata__"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.File(std::string(c.name) + ".safetensors");
    test::WriteFile(path, c.bytes);
    auto r = ReadSafetensorsFile(path, nullptr);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().message();
  }
}

}  // namespace
}  // namespace qforge
