#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cstring>

#include "test_util.h"

namespace qforge {
namespace {
using test::ScratchDir;

std::string FromHex(const std::string& hex) {
  std::string out;
  std::string h;
  for (char c : hex) if (std::isxdigit(static_cast<unsigned char>(c))) h += c;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

// The spec's worked example (section 1.8), produced by ggml's C writer.
const char* kWorkedExample =
    "4747 5546 0300 0000 0200 0000 0000 0000 0500 0000 0000 0000 1400 0000 0000 0000"
    "6765 6e65 7261 6c2e 6172 6368 6974 6563 7475 7265 0800 0000 0500 0000 0000 0000"
    "6c6c 616d 6111 0000 0000 0000 006c 6c61 6d61 2e62 6c6f 636b 5f63 6f75 6e74 0400"
    "0000 0100 0000 1c00 0000 0000 0000 746f 6b65 6e69 7a65 722e 6767 6d6c 2e61 6464"
    "5f62 6f73 5f74 6f6b 656e 0700 0000 0115 0000 0000 0000 0074 6f6b 656e 697a 6572"
    "2e67 676d 6c2e 746f 6b65 6e73 0900 0000 0800 0000 0200 0000 0000 0000 0300 0000"
    "0000 0000 3c73 3e01 0000 0000 0000 0061 1900 0000 0000 0000 746f 6b65 6e69 7a65"
    "722e 6767 6d6c 2e74 6f6b 656e 5f74 7970 6509 0000 0005 0000 0002 0000 0000 0000"
    "0003 0000 0001 0000 0012 0000 0000 0000 006f 7574 7075 745f 6e6f 726d 2e77 6569"
    "6768 7401 0000 0003 0000 0000 0000 0000 0000 0000 0000 0000 0000 0007 0000 0000"
    "0000 0062 6c6b 2e30 2e77 0200 0000 0200 0000 0000 0000 0200 0000 0000 0000 0100"
    "0000 2000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000"
    "0000 803f 0000 00c0 0000 003f 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000"
    "003c 0040 00bc 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000";

Status WriteWorkedExample(const std::string& path) {
  GgufWriter w;
  w.metadata().Append("general.architecture", GgufValue::Str("llama"));
  w.metadata().Append("llama.block_count", GgufValue::U32(1));
  w.metadata().Append("tokenizer.ggml.add_bos_token", GgufValue::Bool(true));
  w.metadata().Append("tokenizer.ggml.tokens", GgufValue::StrArray({"<s>", "a"}));
  w.metadata().Append("tokenizer.ggml.token_type", GgufValue::I32Array({3, 1}));
  w.AddTensor("output_norm.weight", {3}, GgmlType::F32);
  w.AddTensor("blk.0.w", {2, 2}, GgmlType::F16);
  QF_RETURN_IF_ERROR(w.Begin(path));
  const float a[3] = {1.0f, -2.0f, 0.5f};
  QF_RETURN_IF_ERROR(w.WriteTensorData(a, sizeof a));
  const uint16_t b[4] = {0x3c00, 0x4000, 0xbc00, 0x0000};
  QF_RETURN_IF_ERROR(w.WriteTensorData(b, 4));  // in two pieces
  QF_RETURN_IF_ERROR(w.WriteTensorData(reinterpret_cast<const uint8_t*>(b) + 4, 4));
  return w.Finish();
}

TEST(GgufWriter, WorkedExampleIsByteExact) {
  ScratchDir dir;
  ASSERT_TRUE(WriteWorkedExample(dir.File("x.gguf")).ok());
  EXPECT_EQ(test::ReadFile(dir.File("x.gguf")), FromHex(kWorkedExample));
}

TEST(GgufReader, ReadsWorkedExample) {
  ScratchDir dir;
  test::WriteFile(dir.File("x.gguf"), FromHex(kWorkedExample));
  auto g = GgufFile::Open(dir.File("x.gguf"));
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ((*g)->version(), 3u);
  EXPECT_EQ((*g)->metadata().Find("general.architecture")->AsString(), "llama");
  EXPECT_EQ((*g)->metadata().Find("llama.block_count")->type(), GgufType::UINT32);
  EXPECT_TRUE((*g)->metadata().Find("tokenizer.ggml.add_bos_token")->AsBool());
  const GgufValue* toks = (*g)->metadata().Find("tokenizer.ggml.tokens");
  ASSERT_TRUE(toks && toks->is_array());
  EXPECT_EQ(toks->strings(), (std::vector<std::string>{"<s>", "a"}));
  EXPECT_EQ((*g)->metadata().Find("tokenizer.ggml.token_type")->ArrayI64(0), 3);
  ASSERT_EQ((*g)->tensors().size(), 2u);
  const auto& t = (*g)->tensors()[1];
  EXPECT_EQ(t.name, "blk.0.w");
  EXPECT_EQ(t.ne, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(t.offset, 32u);
  uint16_t h;
  std::memcpy(&h, (*g)->TensorData(t) + 4, 2);
  EXPECT_EQ(h, 0xbc00);
}

TEST(GgufRoundTrip, EveryValueType) {
  ScratchDir dir;
  GgufWriter w;
  auto& md = w.metadata();
  md.Append("a.u8", GgufValue::U8(200));
  md.Append("a.i8", GgufValue::I8(-5));
  md.Append("a.u16", GgufValue::U16(60000));
  md.Append("a.i16", GgufValue::I16(-30000));
  md.Append("a.u32", GgufValue::U32(4000000000u));
  md.Append("a.i32", GgufValue::I32(-2000000000));
  md.Append("a.f32", GgufValue::F32(1.5f));
  md.Append("a.bool", GgufValue::Bool(true));
  md.Append("a.str", GgufValue::Str("h\xC3\xA9llo"));
  md.Append("a.u64", GgufValue::U64(uint64_t{1} << 40));
  md.Append("a.i64", GgufValue::I64(-(int64_t{1} << 40)));
  md.Append("a.f64", GgufValue::F64(0.1));
  md.Append("a.arr_f32", GgufValue::F32Array({1.0f, -2.0f}));
  md.Append("a.arr_empty", GgufValue::StrArray({}));
  ASSERT_TRUE(w.Begin(dir.File("x.gguf")).ok());
  ASSERT_TRUE(w.Finish().ok());
  auto g = GgufFile::Open(dir.File("x.gguf"));
  ASSERT_TRUE(g.ok()) << g.status().message();
  ASSERT_EQ((*g)->metadata().items().size(), md.items().size());
  for (size_t i = 0; i < md.items().size(); ++i) {
    EXPECT_EQ((*g)->metadata().items()[i].key, md.items()[i].key);
    EXPECT_TRUE((*g)->metadata().items()[i].value == md.items()[i].value) << md.items()[i].key;
  }
}

TEST(GgufMetadata, SetMovesKeyToEndAppendKeepsPlace) {
  GgufMetadata md;
  md.Append("a", GgufValue::U32(1));
  md.Append("b", GgufValue::U32(2));
  md.Append("a", GgufValue::U32(3));
  EXPECT_EQ(md.items()[0].key, "a");
  EXPECT_EQ(md.items()[0].value.AsU64(), 3u);
  md.Set("a", GgufValue::U32(4));
  EXPECT_EQ(md.items().back().key, "a");
  EXPECT_EQ(md.items().size(), 2u);
}

// Each malformed file must fail with a message naming the file and the field.
struct BadCase {
  const char* name;
  std::string (*mutate)(std::string);
  const char* expect;  // substring of the error
};

std::string Put32(std::string s, size_t at, uint32_t v) { std::memcpy(&s[at], &v, 4); return s; }
std::string Put64(std::string s, size_t at, uint64_t v) { std::memcpy(&s[at], &v, 8); return s; }

const BadCase kBad[] = {
    {"empty", [](std::string) { return std::string(); }, "magic"},
    {"bad_magic", [](std::string s) { s[0] = 'X'; return s; }, "magic"},
    {"version_1", [](std::string s) { return Put32(s, 4, 1); }, "version"},
    {"version_4", [](std::string s) { return Put32(s, 4, 4); }, "version"},
    {"byte_swapped", [](std::string s) { return Put32(s, 4, 0x03000000); }, "byte-swapped"},
    {"huge_tensor_count", [](std::string s) { return Put64(s, 8, uint64_t{1} << 60); }, "tensor count"},
    {"negative_kv_count", [](std::string s) { return Put64(s, 16, ~uint64_t{0}); }, "metadata count"},
    {"truncated_header", [](std::string s) { return s.substr(0, 100); }, "truncated"},
    {"truncated_data", [](std::string s) { return s.substr(0, 0x1a4); }, "past the end"},
    {"string_too_long", [](std::string s) { return Put64(s, 0x18, uint64_t{1} << 40); }, "length"},
    {"bad_value_type", [](std::string s) { return Put32(s, 0x34, 77); }, "value type"},
    {"nested_array", [](std::string s) { return Put32(s, 0xb0, 9); }, "array element type"},
    {"huge_array", [](std::string s) { return Put64(s, 0xb4, uint64_t{1} << 50); }, "array count"},
    {"bad_tensor_type", [](std::string s) { return Put32(s, 0x12f, 4); }, "ggml type 4"},
    {"bad_n_dims", [](std::string s) { return Put32(s, 0x123, 7); }, "n_dims"},
    {"wrong_offset", [](std::string s) { return Put64(s, 0x162, 64); }, "offset"},
    {"negative_ne", [](std::string s) { return Put64(s, 0x127, ~uint64_t{0}); }, "negative"},
};

TEST(GgufReader, RejectsMalformedFiles) {
  ScratchDir dir;
  const std::string good = FromHex(kWorkedExample);
  for (const auto& c : kBad) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.File(std::string(c.name) + ".gguf");
    test::WriteFile(path, c.mutate(good));
    auto g = GgufFile::Open(path);
    ASSERT_FALSE(g.ok());
    EXPECT_NE(g.status().message().find(path), std::string::npos) << g.status().message();
    EXPECT_NE(g.status().message().find(c.expect), std::string::npos) << g.status().message();
  }
}

TEST(GgufReader, RejectsBadAlignmentAndDuplicates) {
  ScratchDir dir;
  for (auto [name, value] : {std::pair<const char*, uint32_t>{"zero", 0}, {"odd", 24}}) {
    GgufWriter w;
    w.metadata().Append("general.alignment", GgufValue::U32(value));
    ASSERT_TRUE(w.Begin(dir.File(name)).ok());
    ASSERT_TRUE(w.Finish().ok());
    auto g = GgufFile::Open(dir.File(name));
    ASSERT_FALSE(g.ok());
    EXPECT_NE(g.status().message().find("general.alignment"), std::string::npos);
  }
  GgufWriter w;
  w.AddTensor("same", {4}, GgmlType::F32);
  w.AddTensor("same", {4}, GgmlType::F32);
  ASSERT_TRUE(w.Begin(dir.File("dup")).ok());
  std::vector<float> z(8, 0.0f);
  ASSERT_TRUE(w.WriteTensorData(z.data(), 16).ok());
  ASSERT_TRUE(w.WriteTensorData(z.data(), 16).ok());
  ASSERT_TRUE(w.Finish().ok());
  auto g = GgufFile::Open(dir.File("dup"));
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("duplicate"), std::string::npos);
}

TEST(GgufWriter, IncompleteWriteLeavesNoFile) {
  ScratchDir dir;
  {
    GgufWriter w;
    w.AddTensor("t", {32}, GgmlType::F32);
    ASSERT_TRUE(w.Begin(dir.File("x.gguf")).ok());
    float v[8] = {};
    ASSERT_TRUE(w.WriteTensorData(v, sizeof v).ok());
    EXPECT_FALSE(w.Finish().ok());
  }
  EXPECT_TRUE(dir.List().empty());
}

}  // namespace
}  // namespace qforge
