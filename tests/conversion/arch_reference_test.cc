// Conversion of the tiny architecture references
// (../shared/reference/llama.cpp/arch/NAME/hf) against llama.cpp's
// converter: F32, F16 and Q8_0, tensor by tensor and key by key.
#include <gtest/gtest.h>

#include "conversion/arch_references.h"
#include "conversion/manifest_check.h"
#include "test_util.h"

namespace qforge {
namespace {

struct ArchConversion {
  std::string arch, type;
};
void PrintTo(const ArchConversion& c, std::ostream* os) { *os << c.arch << ":" << c.type; }

std::vector<ArchConversion> AllConversions() {
  std::vector<ArchConversion> out;
  for (const std::string& a : test::ArchReferences()) {
    for (const char* type : {"F32", "F16", "Q8_0"}) out.push_back({a, type});
  }
  return out;
}

class ArchReferenceConversion : public ::testing::TestWithParam<ArchConversion> {};

TEST_P(ArchReferenceConversion, MatchesLlamaCppConverter) {
  const ArchConversion& c = GetParam();
  test::ScratchDir dir;
  const std::string out = dir.File("out.gguf");
  Status s = test::ConvertWithPreset(test::ReferenceSource("arch/" + c.arch), c.type, out);
  ASSERT_TRUE(s.ok()) << s.message();
  test::ExpectMatchesManifest(out, test::Manifest("arch/" + c.arch, "conv-" + c.type));
}

INSTANTIATE_TEST_SUITE_P(Arch, ArchReferenceConversion, ::testing::ValuesIn(AllConversions()),
                         [](const auto& info) { return info.param.arch + "_" + info.param.type; });

}  // namespace
}  // namespace qforge
