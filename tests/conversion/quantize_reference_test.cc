// Every llama-quantize preset of the reference manifests, without and with
// the reference imatrix, on house-14m (from its Hugging Face folder) and on
// stories260K (from its F32 GGUF): same tensor types, same bytes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/sha256.h"
#include "io/gguf.h"
#include "io/imatrix.h"
#include "io/json_file.h"
#include "model/model.h"
#include "plan/plan.h"
#include "sinks/gguf_sink.h"
#include "conversion/arch_references.h"
#include "test_util.h"

namespace qforge {
namespace {
using nlohmann::json;
using test::ScratchDir;

struct Label {
  std::string model;  // "house-14m", "stories260K" or "arch/NAME"
  std::string label;
};

std::string RefDir(const std::string& model) { return test::SharedDir() + "/reference/llama.cpp/" + model; }

std::vector<Label> Labels(const std::string& model) {
  std::vector<Label> out;
  auto m = ReadJsonFile(RefDir(model) + "/manifest.json");
  if (!m.ok()) return out;
  for (auto it = m->begin(); it != m->end(); ++it) {
    if (it.key().rfind("conv-", 0) == 0) continue;
    out.push_back({model, it.key()});
  }
  return out;
}

void PrintTo(const Label& l, std::ostream* os) { *os << l.model << ":" << l.label; }

class QuantizeReference : public ::testing::TestWithParam<Label> {};

TEST_P(QuantizeReference, SameTypesAndBytesAsLlamaQuantize) {
  const Label& l = GetParam();
  const std::string type = test::ParseReferenceLabel(l.label).type;
  if (FindPreset(type) == nullptr) {
    // The manifests also hold the i-quant and Q1_0/Q2_0 presets qforge does
    // not write yet (issue 13); every preset it does write must match.
    GTEST_SKIP() << type << ": not a preset qforge writes yet";
  }
  auto manifest = ReadJsonFile(RefDir(l.model) + "/manifest.json");
  ASSERT_TRUE(manifest.ok());
  const json& ref = (*manifest)[l.label];
  ScratchDir dir;
  Status s = test::QuantizeLikeReference(l.model, l.label, dir.File("out.gguf"));
  ASSERT_TRUE(s.ok()) << s.message();
  auto g = GgufFile::Open(dir.File("out.gguf"));
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ((*g)->tensors().size(), ref["tensors"].size());
  int mismatched = 0;
  for (const auto& t : ref["tensors"]) {
    const std::string name = t["name"];
    const GgufTensorInfo* ti = (*g)->FindTensor(name);
    ASSERT_NE(ti, nullptr) << name;
    EXPECT_EQ(GgmlTypeName(ti->type), t["type"].get<std::string>()) << name;
    EXPECT_EQ(ti->ne, t["shape"].get<std::vector<int64_t>>()) << name;
    const std::string sha = Sha256::HexOf((*g)->TensorData(*ti), ti->nbytes);
    if (sha != t["sha256"].get<std::string>()) {
      ++mismatched;
      ADD_FAILURE() << name << " (" << t["type"].get<std::string>() << "): bytes differ";
    }
  }
  EXPECT_EQ(mismatched, 0);
  for (const char* key : {"general.file_type", "general.quantization_version", "quantize.imatrix.entries_count",
                          "quantize.imatrix.chunks_count", "quantize.imatrix.dataset", "quantize.imatrix.file"}) {
    const bool in_ref = ref["metadata"].contains(key);
    const GgufValue* v = (*g)->metadata().Find(key);
    ASSERT_EQ(v != nullptr, in_ref) << key;
    if (!in_ref) continue;
    const json& r = ref["metadata"][key];
    // The file key holds whatever path was passed to llama-quantize.
    if (std::string(key) == "quantize.imatrix.file") continue;
    // The arch manifests record the dataset path with the generator's work
    // folder cut off ("shared/text/calib.txt"); the imatrix file holds it whole.
    if (std::string(key) == "quantize.imatrix.dataset" && l.model.rfind("arch/", 0) == 0) {
      const std::string got = v->AsString(), want = "/" + r.get<std::string>();
      EXPECT_TRUE(got.size() >= want.size() && got.compare(got.size() - want.size(), want.size(), want) == 0) << got;
    } else if (r.is_string()) {
      EXPECT_EQ(v->AsString(), r.get<std::string>()) << key;
    } else {
      EXPECT_EQ(v->AsU64(), r.get<uint64_t>()) << key;
    }
  }
}

std::string LabelName(const ::testing::TestParamInfo<Label>& info) {
  std::string s = info.param.model + "_" + info.param.label;
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return s;
}

INSTANTIATE_TEST_SUITE_P(House, QuantizeReference, ::testing::ValuesIn(Labels("house-14m")), LabelName);
INSTANTIATE_TEST_SUITE_P(Stories, QuantizeReference, ::testing::ValuesIn(Labels("stories260K")), LabelName);

std::vector<Label> ArchLabels() {
  std::vector<Label> out;
  for (const std::string& a : test::ArchReferences()) {
    for (Label& l : Labels("arch/" + a)) out.push_back(std::move(l));
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Arch, QuantizeReference, ::testing::ValuesIn(ArchLabels()), LabelName);

TEST(QuantizeReference, StoriesRefusesTypesWithoutFallback) {
  // llama-quantize refuses these for stories260K: ffn_down rows (172) fit no
  // 32-block and the types have no fallback.
  for (const char* type : {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "IQ4_NL", "MXFP4_MOE"}) {
    ScratchDir dir;
    Status s = test::QuantizeLikeReference("stories260K", type, dir.File("o.gguf"));
    ASSERT_FALSE(s.ok()) << type;
    EXPECT_NE(s.message().find("ffn_down"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("no tensor type fallback"), std::string::npos) << s.message();
    EXPECT_TRUE(dir.List().empty());
  }
}

TEST(QuantizeReference, Q2_K_SNeedsAnImatrix) {
  ScratchDir dir;
  Status s = test::QuantizeLikeReference("house-14m", "Q2_K_S", dir.File("o.gguf"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("imatrix"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace qforge
