// GPTQ, AWQ and RTN checkpoints of mixture-of-experts models (the Mixtral
// and Qwen3-MoE references in ../shared/reference/llama.cpp/arch/NAME/hf):
// each expert written as the module Transformers and vLLM name, the router
// kept float and declared so, the checkpoint read back (experts stacked
// again from their packed modules) into logits closer to the original than
// RTN's, the coverage table filled, and an expert that no calibration token
// reached rounded to nearest exactly as RTN rounds it.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>

#include "io/json_file.h"
#include "io/safetensors.h"
#include "pipeline/int_pipeline.h"
#include "test_util.h"

namespace qforge {
namespace {

std::string ArchHf(const std::string& arch) { return test::SharedDir() + "/reference/llama.cpp/arch/" + arch + "/hf"; }

// The module of expert e's linear `which` (0 gate, 1 up, 2 down) in layer l.
std::string ExpertModule(const std::string& arch, int l, int e, int which) {
  static const char* const kMixtral[] = {"w1", "w3", "w2"};
  static const char* const kQwen[] = {"gate_proj", "up_proj", "down_proj"};
  const std::string p = "model.layers." + std::to_string(l) + ".";
  if (arch == "mixtral") return p + "block_sparse_moe.experts." + std::to_string(e) + "." + kMixtral[which];
  return p + "mlp.experts." + std::to_string(e) + "." + kQwen[which];
}
std::string RouterModule(const std::string& arch, int l) {
  return "model.layers." + std::to_string(l) + (arch == "mixtral" ? ".block_sparse_moe.gate" : ".mlp.gate");
}

IntPipelineOptions Options(Method method, IntLayout layout) {
  IntPipelineOptions o;
  // The AWQ layout stores zero points; the others are written symmetric.
  EXPECT_TRUE(ParseIntScheme(layout == IntLayout::kAwq ? "W4A16_ASYM" : "W4A16", &o.plan.spec).ok());
  o.plan.spec.group_size = 64;
  o.plan.method = method;
  o.plan.layout = layout;
  o.calib.text_path = test::SharedDir() + "/text/calib.txt";
  o.calib.samples = 16;
  o.calib.seqlen = 128;
  o.threads = 2;
  return o;
}

const char* MainSuffix(IntLayout l) { return l == IntLayout::kCompressedTensors ? ".weight_packed" : ".qweight"; }

struct Case {
  std::string arch;
  Method method;
  IntLayout layout;
};

class MoeCheckpoint : public ::testing::TestWithParam<Case> {};

TEST_P(MoeCheckpoint, ExpertsNamedPerFamilyRouterFloatAndLogitsBeatRtn) {
  const Case& c = GetParam();
  test::ScratchDir dir;
  auto model = OpenModel(ArchHf(c.arch));
  ASSERT_TRUE(model.ok()) << model.status().message();
  const int64_t n_expert = model->expert_count, n_layer = model->n_layer;
  ASSERT_GT(n_expert, 1);
  const int64_t top_k = model->ArchInt("expert_used_count", 0);

  IntPipelineReport rep;
  Status s = QuantizeToIntCheckpoint(*model, dir.File("q"), Options(c.method, c.layout), &rep);
  ASSERT_TRUE(s.ok()) << s.message();
  // q, k, v, o, the three expert stacks (and Qwen2-MoE's shared expert).
  EXPECT_EQ(rep.quantized_linears, (c.arch == "qwen2moe" ? 10 : 7) * n_layer);

  // Coverage: every layer routes each calibration token to top_k experts.
  ASSERT_EQ(static_cast<int64_t>(rep.expert_tokens.size()), n_layer);
  for (const auto& row : rep.expert_tokens) {
    ASSERT_EQ(static_cast<int64_t>(row.size()), n_expert);
    int64_t sum = 0;
    for (int64_t n : row) sum += n;
    EXPECT_EQ(sum, rep.samples * rep.seqlen * top_k);
  }

  auto st = SafetensorsModel::Open(dir.File("q"));
  ASSERT_TRUE(st.ok()) << st.status().message();
  for (int l = 0; l < n_layer; ++l) {
    for (int e = 0; e < n_expert; ++e) {
      for (int which = 0; which < 3; ++which) {
        const std::string m = ExpertModule(c.arch, l, e, which);
        EXPECT_NE(st->Find(m + MainSuffix(c.layout)), nullptr) << m;
        EXPECT_EQ(st->Find(m + ".weight"), nullptr) << m << " left float";
      }
    }
    const StTensor* router = st->Find(RouterModule(c.arch, l) + ".weight");
    ASSERT_NE(router, nullptr);
    EXPECT_EQ(router->dtype, StDtype::BF16);
    EXPECT_EQ(router->shape, (std::vector<int64_t>{n_expert, model->Find("token_embd.weight")->ne[0]}));
  }
  // The config names the routers as unquantized modules, in the layout's own terms.
  auto cfg = ReadJsonFile(dir.File("q") + "/config.json");
  ASSERT_TRUE(cfg.ok());
  const std::string q = (*cfg)["quantization_config"].dump();
  std::string router = RouterModule(c.arch, 0);
  if (c.layout == IntLayout::kGptq) {  // GPTQModel's dynamic exclusion: an anchored regex
    std::string re = "-:";
    for (char ch : router) re += ch == '.' ? std::string("\\\\.") : std::string(1, ch);
    router = re + "$";
  }
  EXPECT_NE(q.find(router), std::string::npos) << router << " not in " << q;

  // Read back: the experts stack again into the GGUF shape.
  auto back = OpenModel(dir.File("q"));
  ASSERT_TRUE(back.ok()) << back.status().message();
  const ModelTensor* up = back->Find("blk.0.ffn_up_exps.weight");
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->ne, model->Find("blk.0.ffn_up_exps.weight")->ne);
  EXPECT_EQ(up->packed_experts.size(), static_cast<size_t>(n_expert));

  IntPipelineOptions rtn = Options(Method::kRtn, c.layout);
  ASSERT_TRUE(QuantizeToIntCheckpoint(*model, dir.File("rtn"), rtn, nullptr).ok());
  auto rtn_back = OpenModel(dir.File("rtn"));
  ASSERT_TRUE(rtn_back.ok());
  const std::vector<double> klds = test::MeanKldsAgainst(*model, {&*back, &*rtn_back});
  const double kld = klds[0], kld_rtn = klds[1];
  std::cout << "[ figure ] " << c.arch << " " << (c.layout == IntLayout::kAwq ? "W4A16_ASYM" : "W4A16") << " g64 "
            << MethodName(c.method) << " (" << IntLayoutName(c.layout) << "): mean KLD " << kld << " (RTN " << kld_rtn
            << ")\n";
  EXPECT_TRUE(std::isfinite(kld));
  EXPECT_LT(kld, kld_rtn);
}

// GPTQ and AWQ on Mixtral and Qwen3-MoE in every layout (the AWQ layout
// stores zero points: W4A16_ASYM there), and Qwen2-MoE's shared expert.
std::vector<Case> Cases() {
  std::vector<Case> out;
  for (const char* arch : {"mixtral", "qwen3moe"})
    for (Method m : {Method::kGptq, Method::kAwq})
      for (IntLayout l : {IntLayout::kCompressedTensors, IntLayout::kGptq, IntLayout::kAwq}) out.push_back({arch, m, l});
  out.push_back({"qwen2moe", Method::kAwq, IntLayout::kAwq});
  out.push_back({"qwen2moe", Method::kGptq, IntLayout::kCompressedTensors});
  return out;
}

INSTANTIATE_TEST_SUITE_P(
    Moe, MoeCheckpoint, ::testing::ValuesIn(Cases()),
    [](const auto& info) {
      return info.param.arch + "_" + MethodName(info.param.method) + "_" +
             (info.param.layout == IntLayout::kCompressedTensors ? std::string("ct") : IntLayoutName(info.param.layout));
    });

// Bytes of a module's packed weight in a checkpoint folder.
std::string PackedBytes(const SafetensorsModel& st, const std::string& name) {
  const StTensor* t = st.Find(name);
  return t == nullptr ? "" : std::string(reinterpret_cast<const char*>(t->data), t->nbytes);
}

// One calibration sequence of 3 tokens routes 6 rows to Mixtral's 8
// experts (top 2) per layer: at least two experts of every layer see none.
TEST(MoeFallback, ExpertWithoutRoutedTokensIsRoundedToNearestExactlyAsRtn) {
  test::ScratchDir dir;
  auto model = OpenModel(ArchHf("mixtral"));
  ASSERT_TRUE(model.ok());
  IntPipelineOptions o = Options(Method::kGptq, IntLayout::kCompressedTensors);
  o.calib.samples = 1;
  o.calib.seqlen = 3;
  o.min_expert_tokens = 1;  // every expert that saw a token is calibrated
  IntPipelineReport rep;
  Status s = QuantizeToIntCheckpoint(*model, dir.File("gptq"), o, &rep);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_TRUE(QuantizeToIntCheckpoint(*model, dir.File("rtn"), Options(Method::kRtn, IntLayout::kCompressedTensors), nullptr).ok());
  auto gptq = SafetensorsModel::Open(dir.File("gptq"));
  auto rtn = SafetensorsModel::Open(dir.File("rtn"));
  ASSERT_TRUE(gptq.ok() && rtn.ok());
  ASSERT_EQ(rep.expert_tokens.size(), 2u);
  int empty = 0, covered = 0;
  for (int l = 0; l < 2; ++l) {
    for (int e = 0; e < 8; ++e) {
      const int64_t n = rep.expert_tokens[static_cast<size_t>(l)][static_cast<size_t>(e)];
      for (int which = 0; which < 3; ++which) {
        const std::string name = ExpertModule("mixtral", l, e, which) + ".weight_packed";
        const std::string a = PackedBytes(*gptq, name), b = PackedBytes(*rtn, name);
        ASSERT_FALSE(a.empty()) << name;
        if (n == 0) {
          EXPECT_EQ(a, b) << name << ": no token reached it, yet it differs from RTN";
        } else {
          EXPECT_NE(a, b) << name << ": " << n << " tokens reached it, yet it equals RTN";
        }
      }
      if (n == 0) {
        ++empty;
        const std::string expect = "blk." + std::to_string(l) + ".ffn_gate_exps.weight expert " + std::to_string(e) + ": 0 calibration tokens";
        bool warned = false;
        for (const auto& w : rep.warnings) warned = warned || w.find(expect) != std::string::npos;
        EXPECT_TRUE(warned) << "no warning names " << expect;
      } else {
        ++covered;
      }
    }
  }
  EXPECT_GE(empty, 4);
  EXPECT_GT(covered, 0);
  auto back = OpenModel(dir.File("gptq"));
  ASSERT_TRUE(back.ok()) << back.status().message();
}

// AWQ with uncovered experts: they keep the shared input scales but get no
// search or clipping of their own; the run says so and the result loads.
TEST(MoeFallback, AwqSaysWhichExpertsFellBackAndLoads) {
  test::ScratchDir dir;
  auto model = OpenModel(ArchHf("qwen3moe"));
  ASSERT_TRUE(model.ok());
  IntPipelineOptions o = Options(Method::kAwq, IntLayout::kAwq);
  o.calib.samples = 1;
  o.calib.seqlen = 8;
  IntPipelineReport rep;
  Status s = QuantizeToIntCheckpoint(*model, dir.File("awq"), o, &rep);
  ASSERT_TRUE(s.ok()) << s.message();
  int fell_back = 0;
  for (const auto& row : rep.expert_tokens)
    for (int64_t n : row) fell_back += n < o.min_expert_tokens ? 1 : 0;
  int warned = 0;
  for (const auto& w : rep.warnings) warned += w.find("rounded to nearest (RTN) without its own scale search") != std::string::npos;
  EXPECT_GT(fell_back, 0);
  EXPECT_EQ(warned, fell_back);
  auto back = OpenModel(dir.File("awq"));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(std::isfinite(test::MeanKldsAgainst(*model, {&*back})[0]));
}

TEST(MoePlan, IgnoringSomeExpertsOfAStackIsRefusedByName) {
  auto model = OpenModel(ArchHf("mixtral"));
  ASSERT_TRUE(model.ok());
  IntPlanOptions o;
  o.ignore = {R"(experts\.3\.)"};
  auto plan = BuildIntPlan(*model, o);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("1 of the 8 experts"), std::string::npos) << plan.status().message();
  o.ignore = {R"(experts\.)"};  // all of them: kept float, each expert its own weight
  plan = BuildIntPlan(*model, o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  test::ScratchDir dir;
  IntPipelineOptions po = Options(Method::kRtn, IntLayout::kCompressedTensors);
  po.plan.ignore = o.ignore;
  ASSERT_TRUE(QuantizeToIntCheckpoint(*model, dir.File("q"), po, nullptr).ok());
  auto st = SafetensorsModel::Open(dir.File("q"));
  ASSERT_TRUE(st.ok());
  const StTensor* w = st->Find("model.layers.1.block_sparse_moe.experts.7.w2.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{256, 128}));
  auto src = SafetensorsModel::Open(ArchHf("mixtral"));
  const StTensor* orig = src->Find("model.layers.1.block_sparse_moe.experts.7.w2.weight");
  ASSERT_NE(orig, nullptr);
  ASSERT_EQ(orig->nbytes, w->nbytes);
  EXPECT_EQ(std::memcmp(orig->data, w->data, w->nbytes), 0);
}

// The command line: --min-expert-tokens and the coverage in --json.
TEST(MoeCli, JsonReportCarriesTheCoverageAndTheFallbacks) {
  test::ScratchDir dir;
  auto r = test::RunQforge({"quantize", ArchHf("mixtral"), "--method", "gptq", "--calib", test::SharedDir() + "/text/calib.txt",
                            "--calib-samples", "2", "--calib-seqlen", "64", "--min-expert-tokens", "40", "--json", "-o",
                            dir.File("q")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto& cov = j["expert_coverage"];
  EXPECT_EQ(cov["min_expert_tokens"], 40);
  ASSERT_EQ(cov["tokens_per_expert"].size(), 2u);
  int below = 0;
  for (const auto& row : cov["tokens_per_expert"]) {
    ASSERT_EQ(row.size(), 8u);
    int64_t sum = 0;
    for (const auto& n : row) {
      sum += n.get<int64_t>();
      below += n.get<int64_t>() < 40 ? 1 : 0;
    }
    EXPECT_EQ(sum, 2 * 64 * 2);
  }
  EXPECT_EQ(static_cast<int>(cov["fallback"].size()), below);
  r = test::RunQforge({"quantize", ArchHf("mixtral"), "--method", "gptq", "--min-expert-tokens", "-1", "-o", dir.File("x")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--min-expert-tokens -1"), std::string::npos) << r.err;
}

// Copies a checkpoint folder's config and its single safetensors file
// through `edit`, which may drop tensors (return false) or add some.
void RewriteCheckpoint(const std::string& from, const std::string& to,
                       const std::function<bool(const StTensor&)>& keep, const std::vector<StWriteTensor>& extra) {
  std::filesystem::create_directories(to);
  std::filesystem::copy_file(from + "/config.json", to + "/config.json");
  for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"}) {
    if (std::filesystem::exists(from + "/" + f)) std::filesystem::copy_file(from + "/" + f, to + "/" + f);
  }
  auto st = SafetensorsModel::Open(from);
  ASSERT_TRUE(st.ok());
  std::vector<SafetensorsStreamWriter::Entry> entries;
  std::vector<std::vector<uint8_t>> bytes;
  for (const StTensor& t : st->tensors()) {
    if (!keep(t)) continue;
    entries.push_back({t.name, t.dtype, t.shape});
    bytes.emplace_back(t.data, t.data + t.nbytes);
  }
  for (const auto& x : extra) {
    entries.push_back({x.name, x.dtype, x.shape});
    bytes.push_back(x.bytes);
  }
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);
  auto w = SafetensorsStreamWriter::Create(to + "/model.safetensors", entries);
  ASSERT_TRUE(w.ok()) << w.status().message();
  for (size_t i = 0; i < names.size(); ++i) ASSERT_TRUE((*w)->Write(names[i], bytes[i]).ok());
  ASSERT_TRUE((*w)->Commit().ok());
}

bool StartsWith(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// A quantized MoE checkpoint that lost an expert, or stores one expert
// float among packed ones, is refused by name; requantizing one needs the flag.
TEST(MoeReader, HostileQuantizedCheckpointsAreRefusedByName) {
  test::ScratchDir dir;
  auto model = OpenModel(ArchHf("mixtral"));
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE(QuantizeToIntCheckpoint(*model, dir.File("q"), Options(Method::kRtn, IntLayout::kCompressedTensors), nullptr).ok());
  const std::string e3 = "model.layers.1.block_sparse_moe.experts.3.w1.";

  RewriteCheckpoint(dir.File("q"), dir.File("missing"), [&](const StTensor& t) { return !StartsWith(t.name, e3); }, {});
  auto m = OpenModel(dir.File("missing"));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("layer 1 has 23 of 24 expert tensors"), std::string::npos) << m.status().message();

  StWriteTensor f{e3 + "weight", StDtype::BF16, {128, 256}, std::vector<uint8_t>(128 * 256 * 2, 0)};
  RewriteCheckpoint(dir.File("q"), dir.File("mixed"), [&](const StTensor& t) { return !StartsWith(t.name, e3); }, {f});
  m = OpenModel(dir.File("mixed"));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("packed for some experts and float for others"), std::string::npos)
      << m.status().message();

  f.shape = {64, 256};
  f.bytes.resize(64 * 256 * 2);
  RewriteCheckpoint(dir.File("q"), dir.File("shape"), [&](const StTensor& t) { return !StartsWith(t.name, e3); }, {f});
  m = OpenModel(dir.File("shape"));
  ASSERT_FALSE(m.ok());

  auto back = OpenModel(dir.File("q"));
  ASSERT_TRUE(back.ok());
  IntPlanOptions o;
  auto plan = BuildIntPlan(*back, o);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("already quantized"), std::string::npos) << plan.status().message();
  o.allow_requantize = true;
  plan = BuildIntPlan(*back, o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  // Kept float (the experts ignored), a packed stack decodes into each expert's own weight.
  IntPipelineOptions po = Options(Method::kRtn, IntLayout::kCompressedTensors);
  po.plan.allow_requantize = true;
  po.plan.ignore = {R"(experts\.)"};
  ASSERT_TRUE(QuantizeToIntCheckpoint(*back, dir.File("float"), po, nullptr).ok());
  auto st = SafetensorsModel::Open(dir.File("float"));
  ASSERT_TRUE(st.ok());
  ASSERT_NE(st->Find(e3 + "weight"), nullptr);
  EXPECT_EQ(st->Find(e3 + "weight")->shape, (std::vector<int64_t>{128, 256}));
}

// AWQ with the experts' up projections left float: each expert's down
// scales are divided out of its up rows, which the checkpoint must carry.
TEST(MoeAwq, UpLeftFloatCarriesTheDownScales) {
  test::ScratchDir dir;
  auto model = OpenModel(ArchHf("mixtral"));
  ASSERT_TRUE(model.ok());
  IntPipelineOptions o = Options(Method::kAwq, IntLayout::kAwq);
  o.plan.ignore = {R"(experts\.\d+\.w3$)"};
  ASSERT_TRUE(QuantizeToIntCheckpoint(*model, dir.File("awq"), o, nullptr).ok());
  IntPipelineOptions r = Options(Method::kRtn, IntLayout::kAwq);
  r.plan.ignore = o.plan.ignore;
  ASSERT_TRUE(QuantizeToIntCheckpoint(*model, dir.File("rtn"), r, nullptr).ok());
  auto awq = SafetensorsModel::Open(dir.File("awq"));
  auto rtn = SafetensorsModel::Open(dir.File("rtn"));
  ASSERT_TRUE(awq.ok() && rtn.ok());
  const std::string up = "model.layers.0.block_sparse_moe.experts.0.w3.weight";
  ASSERT_NE(awq->Find(up), nullptr);
  ASSERT_NE(rtn->Find(up), nullptr);  // RTN keeps the source's values
  EXPECT_NE(std::memcmp(awq->Find(up)->data, rtn->Find(up)->data, rtn->Find(up)->nbytes), 0);
  auto a = OpenModel(dir.File("awq"));
  auto b = OpenModel(dir.File("rtn"));
  ASSERT_TRUE(a.ok() && b.ok());
  const std::vector<double> klds = test::MeanKldsAgainst(*model, {&*a, &*b});
  const double kld = klds[0], kld_rtn = klds[1];
  std::cout << "[ figure ] mixtral AWQ with w3 float: mean KLD " << kld << " (RTN " << kld_rtn << ")\n";
  EXPECT_LT(kld, kld_rtn);
}

// The resume journal holds a stacked tensor as one grid per expert (each
// with its own act-order): a run killed after layer 0 and resumed writes
// the bytes of a run never interrupted.
TEST(MoeResume, KilledAfterTheFirstLayerThenResumedGivesTheSameBytes) {
  test::ScratchDir dir;
  auto args = [&](const std::string& out, bool resume) {
    std::vector<std::string> a = {"quantize", ArchHf("qwen3moe"), "--method", "gptq", "--act-order", "--layout", "gptq",
                                  "--calib", test::SharedDir() + "/text/calib.txt", "--calib-samples", "4",
                                  "--calib-seqlen", "64", "--min-expert-tokens", "8", "--json", "-o", out};
    if (resume) a.push_back("--resume");
    return a;
  };
  auto r = test::RunQforge(args(dir.File("whole"), false));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ::setenv("QFORGE_TEST_KILL_AFTER_LAYERS", "1", 1);
  r = test::RunQforge(args(dir.File("resumed"), false));
  ::unsetenv("QFORGE_TEST_KILL_AFTER_LAYERS");
  ASSERT_NE(r.exit_code, 0) << "the fault hook did not fire";
  r = test::RunQforge(args(dir.File("resumed"), true));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["resumed_layers"], 1);
  // The coverage of the resumed layer came back from the journal.
  EXPECT_EQ(j["expert_coverage"], nlohmann::json::parse(test::RunQforge(args(dir.File("again"), false)).out)["expert_coverage"]);
  EXPECT_EQ(test::ReadFile(dir.File("whole") + "/model.safetensors"), test::ReadFile(dir.File("resumed") + "/model.safetensors"));
}

}  // namespace
}  // namespace qforge
