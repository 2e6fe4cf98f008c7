// qforge's GGUF output against llama.cpp's own files: every tensor's name,
// type, shape and data SHA-256, and every metadata value, as recorded in
// ../shared/reference/llama.cpp/*/manifest.json.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/sha256.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "model/model.h"
#include "plan/plan.h"
#include "sinks/gguf_sink.h"
#include "conversion/manifest_check.h"
#include "test_util.h"

namespace qforge {
namespace {
using test::ConvertWithPreset;
using test::ExpectMatchesManifest;
using test::Manifest;
using test::ScratchDir;

class HouseConversion : public ::testing::TestWithParam<std::string> {};

TEST_P(HouseConversion, MatchesLlamaCppConverter) {
  ScratchDir dir;
  const std::string out = dir.File("out.gguf");
  Status s = ConvertWithPreset(test::HouseModelDir(), GetParam(), out);
  ASSERT_TRUE(s.ok()) << s.message();
  ExpectMatchesManifest(out, Manifest("house-14m", "conv-" + GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Types, HouseConversion, ::testing::Values("F32", "F16", "BF16", "Q8_0"));

TEST(HouseConversion, SharedCopyGivesIdenticalFile) {
  // The bundled copy and ../shared's original must convert to the same bytes.
  ScratchDir dir;
  ASSERT_TRUE(ConvertWithPreset(test::HouseModelDir(), "Q8_0", dir.File("a.gguf")).ok());
  ASSERT_TRUE(ConvertWithPreset(test::SharedDir() + "/models/house-14m", "Q8_0", dir.File("b.gguf"), 1).ok());
  EXPECT_EQ(test::ReadFile(dir.File("a.gguf")), test::ReadFile(dir.File("b.gguf")));
}

TEST(HouseConversion, ThreadCountDoesNotChangeBytes) {
  ScratchDir dir;
  ASSERT_TRUE(ConvertWithPreset(test::HouseModelDir(), "Q8_0", dir.File("a.gguf"), 1).ok());
  ASSERT_TRUE(ConvertWithPreset(test::HouseModelDir(), "Q8_0", dir.File("b.gguf"), 3).ok());
  EXPECT_EQ(Sha256::HexOf(test::ReadFile(dir.File("a.gguf")).data(), test::ReadFile(dir.File("a.gguf")).size()),
            Sha256::HexOf(test::ReadFile(dir.File("b.gguf")).data(), test::ReadFile(dir.File("b.gguf")).size()));
}

class StoriesFromGguf : public ::testing::TestWithParam<std::string> {};

TEST_P(StoriesFromGguf, MatchesLlamaQuantize) {
  ScratchDir dir;
  const std::string out = dir.File("out.gguf");
  Status s = ConvertWithPreset(test::SharedDir() + "/models/stories260K/stories260K-f32.gguf", GetParam(), out);
  ASSERT_TRUE(s.ok()) << s.message();
  ExpectMatchesManifest(out, Manifest("stories260K", GetParam()));
  // llama-quantize moves the two re-set keys to the end.
  auto g = GgufFile::Open(out);
  ASSERT_TRUE(g.ok());
  const auto& items = (*g)->metadata().items();
  ASSERT_GE(items.size(), 2u);
  EXPECT_EQ(items[items.size() - 2].key, "general.quantization_version");
  EXPECT_EQ(items.back().key, "general.file_type");
}

INSTANTIATE_TEST_SUITE_P(Types, StoriesFromGguf, ::testing::Values("F16", "BF16"));

TEST(StoriesFromGguf, Q8_0IsRefusedLikeLlamaQuantize) {
  ScratchDir dir;
  Status s = ConvertWithPreset(test::SharedDir() + "/models/stories260K/stories260K-f32.gguf", "Q8_0", dir.File("o.gguf"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("blk.0.ffn_down.weight"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("no tensor type fallback"), std::string::npos) << s.message();
  EXPECT_TRUE(dir.List().empty());
}

TEST(GgufRoundTrip, F32SourceToF32IsIdenticalTensorData) {
  // A GGUF source written as F32 again copies every tensor's bytes unchanged.
  ScratchDir dir;
  const std::string src = test::SharedDir() + "/models/stories260K/stories260K-f32.gguf";
  ASSERT_TRUE(ConvertWithPreset(src, "F32", dir.File("o.gguf")).ok());
  auto a = GgufFile::Open(src);
  auto b = GgufFile::Open(dir.File("o.gguf"));
  ASSERT_TRUE(a.ok() && b.ok());
  for (const auto& t : (*a)->tensors()) {
    const GgufTensorInfo* u = (*b)->FindTensor(t.name);
    ASSERT_NE(u, nullptr);
    EXPECT_EQ(u->type, t.type);
    EXPECT_EQ(Sha256::HexOf((*a)->TensorData(t), t.nbytes), Sha256::HexOf((*b)->TensorData(*u), u->nbytes));
  }
}

}  // namespace
}  // namespace qforge
