#include "conversion/manifest_check.h"

#include <gtest/gtest.h>

#include "base/sha256.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "model/model.h"
#include "plan/plan.h"
#include "sinks/gguf_sink.h"
#include "test_util.h"

namespace qforge::test {
namespace {
using nlohmann::json;

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

// general.*, tokenizer.* and the architecture's own keys.
bool KeyChecked(const std::string& k, const std::string& arch) {
  return k.rfind(arch + ".", 0) == 0 || k.rfind("tokenizer.", 0) == 0 || k.rfind("general.", 0) == 0;
}

}  // namespace


void ExpectMatchesManifest(const std::string& path, const json& ref) {
  auto g = GgufFile::Open(path);
  ASSERT_TRUE(g.ok()) << g.status().message();
  ASSERT_TRUE(ref.contains("metadata") && ref["metadata"].contains("general.architecture"));
  const std::string arch = ref["metadata"]["general.architecture"];
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
    if (!KeyChecked(it.key(), arch)) continue;
    const GgufValue* v = (*g)->metadata().Find(it.key());
    ASSERT_NE(v, nullptr) << "missing metadata key " << it.key();
    ExpectMetadataEqual(it.key(), *v, it.value());
  }
  for (const auto& kv : (*g)->metadata().items()) {
    if (KeyChecked(kv.key, arch)) {
      EXPECT_TRUE(md.contains(kv.key)) << "extra metadata key " << kv.key;
    }
  }
}


json Manifest(const std::string& model, const std::string& label) {
  auto m = ReadJsonFile(SharedDir() + "/reference/llama.cpp/" + model + "/manifest.json");
  EXPECT_TRUE(m.ok()) << m.status().message();
  if (!m.ok() || !m->contains(label)) {
    ADD_FAILURE() << "manifest of " << model << " has no label " << label;
    return json::object();
  }
  return (*m)[label];
}


Status ConvertWithPreset(const std::string& src, const std::string& type, const std::string& out, int threads) {
  QF_ASSIGN_OR_RETURN(Model model, OpenModel(src));
  const Preset* p = FindPreset(type);
  if (p == nullptr) return Status::Error("no preset " + type);
  QF_ASSIGN_OR_RETURN(Plan plan, BuildPlan(model, *p, {}));
  SinkOptions so;
  so.threads = threads;
  return WriteGguf(plan, out, so);
}

}  // namespace qforge::test
