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
#include "test_util.h"

namespace qforge {
namespace {
using nlohmann::json;
using test::ScratchDir;

json Manifest(const std::string& model, const std::string& label) {
  auto m = ReadJsonFile(test::SharedDir() + "/reference/llama.cpp/" + model + "/manifest.json");
  EXPECT_TRUE(m.ok()) << m.status().message();
  if (!m.ok() || !m->contains(label)) {
    ADD_FAILURE() << "manifest of " << model << " has no label " << label;
    return json::object();
  }
  return (*m)[label];
}

Status Convert(const std::string& src, const std::string& type, const std::string& out, int threads = 2) {
  QF_ASSIGN_OR_RETURN(Model model, OpenModel(src));
  const Preset* p = FindPreset(type);
  if (p == nullptr) return Status::Error("no preset " + type);
  QF_ASSIGN_OR_RETURN(Plan plan, BuildPlan(model, *p, {}));
  SinkOptions so;
  so.threads = threads;
  return WriteGguf(plan, out, so);
}

// Compares one metadata value with the manifest's rendering of it.
void ExpectMetadataEqual(const std::string& key, const GgufValue& ours, const json& ref) {
  SCOPED_TRACE(key);
  if (ref.is_object()) {
    ASSERT_TRUE(ours.is_array());
    EXPECT_EQ(ours.count(), ref["n"].get<uint64_t>());
    const std::string repr = test::PythonRepr(ours);
    EXPECT_EQ(Sha256::HexOf(repr.data(), repr.size()), ref["sha256"].get<std::string>());
  } else if (ref.is_array()) {
    ASSERT_TRUE(ours.is_array());
    ASSERT_EQ(ours.count(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      if (ref[i].is_string()) EXPECT_EQ(ours.strings()[i], ref[i].get<std::string>());
      else EXPECT_EQ(ours.ArrayF64(i), ref[i].get<double>());
    }
  } else if (ref.is_boolean()) {
    ASSERT_EQ(ours.type(), GgufType::BOOL);
    EXPECT_EQ(ours.AsBool(), ref.get<bool>());
  } else if (ref.is_string()) {
    ASSERT_EQ(ours.type(), GgufType::STRING);
    EXPECT_EQ(ours.AsString(), ref.get<std::string>());
  } else if (ref.is_number_float()) {
    ASSERT_TRUE(ours.is_float());
    EXPECT_EQ(ours.AsF64(), ref.get<double>());
  } else {
    ASSERT_TRUE(ours.is_integer()) << GgufTypeName(ours.type());
    EXPECT_EQ(ours.AsU64(), ref.get<uint64_t>());
  }
}

bool KeyChecked(const std::string& k) {
  return k == "general.architecture" || k.rfind("llama.", 0) == 0 || k.rfind("tokenizer.", 0) == 0 ||
         k.rfind("general.", 0) == 0;
}

void ExpectMatchesManifest(const std::string& path, const json& ref) {
  auto g = GgufFile::Open(path);
  ASSERT_TRUE(g.ok()) << g.status().message();
  const auto& tensors = ref["tensors"];
  EXPECT_EQ((*g)->tensors().size(), tensors.size());
  for (const auto& t : tensors) {
    const std::string name = t["name"];
    SCOPED_TRACE(name);
    const GgufTensorInfo* ti = (*g)->FindTensor(name);
    ASSERT_NE(ti, nullptr) << "missing tensor";
    EXPECT_EQ(GgmlTypeName(ti->type), t["type"].get<std::string>());
    EXPECT_EQ(ti->ne, t["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(Sha256::HexOf((*g)->TensorData(*ti), ti->nbytes), t["sha256"].get<std::string>());
  }
  const auto& md = ref["metadata"];
  for (auto it = md.begin(); it != md.end(); ++it) {
    if (!KeyChecked(it.key())) continue;
    const GgufValue* v = (*g)->metadata().Find(it.key());
    ASSERT_NE(v, nullptr) << "missing metadata key " << it.key();
    ExpectMetadataEqual(it.key(), *v, it.value());
  }
  for (const auto& kv : (*g)->metadata().items()) {
    if (KeyChecked(kv.key)) {
      EXPECT_TRUE(md.contains(kv.key)) << "extra metadata key " << kv.key;
    }
  }
}

class HouseConversion : public ::testing::TestWithParam<std::string> {};

TEST_P(HouseConversion, MatchesLlamaCppConverter) {
  ScratchDir dir;
  const std::string out = dir.File("out.gguf");
  Status s = Convert(test::HouseModelDir(), GetParam(), out);
  ASSERT_TRUE(s.ok()) << s.message();
  ExpectMatchesManifest(out, Manifest("house-14m", "conv-" + GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Types, HouseConversion, ::testing::Values("F32", "F16", "BF16", "Q8_0"));

TEST(HouseConversion, SharedCopyGivesIdenticalFile) {
  // The bundled copy and ../shared's original must convert to the same bytes.
  ScratchDir dir;
  ASSERT_TRUE(Convert(test::HouseModelDir(), "Q8_0", dir.File("a.gguf")).ok());
  ASSERT_TRUE(Convert(test::SharedDir() + "/models/house-14m", "Q8_0", dir.File("b.gguf"), 1).ok());
  EXPECT_EQ(test::ReadFile(dir.File("a.gguf")), test::ReadFile(dir.File("b.gguf")));
}

TEST(HouseConversion, ThreadCountDoesNotChangeBytes) {
  ScratchDir dir;
  ASSERT_TRUE(Convert(test::HouseModelDir(), "Q8_0", dir.File("a.gguf"), 1).ok());
  ASSERT_TRUE(Convert(test::HouseModelDir(), "Q8_0", dir.File("b.gguf"), 3).ok());
  EXPECT_EQ(Sha256::HexOf(test::ReadFile(dir.File("a.gguf")).data(), test::ReadFile(dir.File("a.gguf")).size()),
            Sha256::HexOf(test::ReadFile(dir.File("b.gguf")).data(), test::ReadFile(dir.File("b.gguf")).size()));
}

class StoriesFromGguf : public ::testing::TestWithParam<std::string> {};

TEST_P(StoriesFromGguf, MatchesLlamaQuantize) {
  ScratchDir dir;
  const std::string out = dir.File("out.gguf");
  Status s = Convert(test::SharedDir() + "/models/stories260K/stories260K-f32.gguf", GetParam(), out);
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
  Status s = Convert(test::SharedDir() + "/models/stories260K/stories260K-f32.gguf", "Q8_0", dir.File("o.gguf"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("blk.0.ffn_down.weight"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("no tensor type fallback"), std::string::npos) << s.message();
  EXPECT_TRUE(dir.List().empty());
}

TEST(GgufRoundTrip, F32SourceToF32IsIdenticalTensorData) {
  // A GGUF source written as F32 again copies every tensor's bytes unchanged.
  ScratchDir dir;
  const std::string src = test::SharedDir() + "/models/stories260K/stories260K-f32.gguf";
  ASSERT_TRUE(Convert(src, "F32", dir.File("o.gguf")).ok());
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
