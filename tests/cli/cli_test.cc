// The qforge command as a user runs it: help, formats, inspect, quantize, and
// one clear error line (file, field, expectation) with no output left behind
// for each kind of bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/imatrix.h"
#include "../conversion/synthetic_model.h"
#include "test_util.h"

namespace qforge {
namespace {
namespace fs = std::filesystem;
using test::RunQforge;
using test::ScratchDir;

void CopyHouseExcept(const std::string& dst, const std::string& except) {
  fs::create_directories(dst);
  for (const auto& e : fs::directory_iterator(test::HouseModelDir())) {
    if (e.path().filename() != except) fs::copy_file(e.path(), dst + "/" + e.path().filename().string());
  }
}

void ExpectOneLineError(const test::CommandResult& r, const std::vector<std::string>& parts) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  for (const auto& p : parts) EXPECT_NE(r.err.find(p), std::string::npos) << "'" << p << "' not in: " << r.err;
}

TEST(Cli, HelpOnEverySubcommand) {
  auto top = RunQforge({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* sub : {"quantize", "inspect", "list-formats"}) {
    EXPECT_NE(top.out.find(sub), std::string::npos) << sub;
    auto r = RunQforge({sub, "--help"});
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find("--json"), std::string::npos) << sub << ": " << r.out;
  }
  EXPECT_NE(RunQforge({"quantize", "--help"}).out.find("--type"), std::string::npos);
}

TEST(Cli, ListFormats) {
  auto r = RunQforge({"list-formats"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* t : {"F32", "F16", "BF16", "Q8_0"}) EXPECT_NE(r.out.find(t), std::string::npos) << t;
  auto j = RunQforge({"list-formats", "--json"});
  auto parsed = nlohmann::json::parse(j.out);
  ASSERT_TRUE(parsed.is_array());
  EXPECT_GE(parsed.size(), 4u);
}

TEST(Cli, QuantizeDefaultNameAndInspect) {
  ScratchDir dir;
  auto q = RunQforge({"quantize", test::HouseModelDir(), "-f", "q8_0", "-o", dir.path(), "--threads", "2"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_EQ(dir.List(), std::vector<std::string>{"house-14m-Q8_0.gguf"});
  EXPECT_NE(q.out.find("house-14m-Q8_0.gguf"), std::string::npos) << q.out;
  EXPECT_EQ(q.err, "") << "no progress bar when stderr is not a terminal";

  auto text = RunQforge({"inspect", dir.File("house-14m-Q8_0.gguf")});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("blk.3.ffn_down.weight"), std::string::npos);
  EXPECT_NE(text.out.find("Q8_0"), std::string::npos);
  EXPECT_NE(text.out.find("total: 39 tensors"), std::string::npos) << text.out;

  auto js = RunQforge({"inspect", "--json", dir.File("house-14m-Q8_0.gguf")});
  ASSERT_EQ(js.exit_code, 0) << js.err;
  auto j = nlohmann::json::parse(js.out);
  EXPECT_EQ(j["format"], "gguf");
  EXPECT_EQ(j["metadata"]["general.file_type"], 7);
  EXPECT_EQ(j["tensors"].size(), 39u);
  EXPECT_EQ(j["total"]["parameters"], 13636096);
  EXPECT_NEAR(j["total"]["bits_per_weight"].get<double>(), 8.5, 0.01);
}

TEST(Cli, InspectHuggingFaceFolder) {
  auto r = RunQforge({"inspect", "--json", test::HouseModelDir()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["format"], "huggingface");
  EXPECT_EQ(j["tensors"][0]["type"], "BF16");
  EXPECT_EQ(j["metadata"]["llama.block_count"], 4);
}

TEST(Cli, QuantizeJsonSummary) {
  ScratchDir dir;
  auto r = RunQforge({"quantize", "--json", test::HouseModelDir(), "-f", "F16", "-o", dir.File("h.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["type"], "F16");
  EXPECT_EQ(j["file_bytes"].get<uint64_t>(), fs::file_size(dir.File("h.gguf")));
}

TEST(Cli, MissingConfig) {
  ScratchDir dir;
  CopyHouseExcept(dir.File("m"), "config.json");
  auto r = RunQforge({"quantize", dir.File("m"), "-f", "Q8_0", "-o", dir.File("o.gguf")});
  ExpectOneLineError(r, {dir.File("m") + "/config.json", "missing"});
  EXPECT_FALSE(fs::exists(dir.File("o.gguf")));
}

TEST(Cli, UnsupportedModelType) {
  ScratchDir dir;
  CopyHouseExcept(dir.File("m"), "config.json");
  test::WriteFile(dir.File("m/config.json"), R"({"model_type": "bert", "num_hidden_layers": 2})");
  auto r = RunQforge({"quantize", dir.File("m"), "-f", "Q8_0", "-o", dir.File("o.gguf")});
  ExpectOneLineError(r, {"config.json", "model_type", "bert", "expected llama, mistral, qwen2, qwen3, gemma2"});
  EXPECT_FALSE(fs::exists(dir.File("o.gguf")));
}

// MoE: inspect counts what one token passes through; the layer-by-layer
// methods refuse clearly (not yet built for experts) and leave nothing.
TEST(Cli, MixtureOfExperts) {
  ScratchDir dir;
  const std::string src = test::SharedDir() + "/reference/llama.cpp/arch/mixtral/hf";
  auto r = RunQforge({"--json", "inspect", src});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  // 2 layers x 3 stacked tensors x 8 experts of 256 x 128, 2 of 8 used per token.
  EXPECT_EQ(j["total"]["experts"], 8);
  EXPECT_EQ(j["total"]["experts_used"], 2);
  EXPECT_EQ(j["total"]["active_parameters"].get<int64_t>(),
            j["total"]["parameters"].get<int64_t>() - 2 * 3 * 6 * 256 * 128);
  r = RunQforge({"quantize", src, "--scheme", "W4A16", "--method", "rtn", "-o", dir.File("ct")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir.File("ct/model.safetensors")));
  // GPTQ into GGUF blocks: each expert on its own tokens, the coverage in the report.
  r = RunQforge({"quantize", src, "-f", "Q4_K_M", "--method", "gptq", "--calib", test::SharedDir() + "/text/calib.txt",
                 "--calib-samples", "4", "--calib-seqlen", "64", "--json", "-o", dir.File("g.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto g = nlohmann::json::parse(r.out);
  EXPECT_EQ(g["expert_coverage"]["tokens_per_expert"].size(), 2u);
  r = RunQforge({"quantize", src, "-f", "Q4_K_M", "-o", dir.File("q.gguf")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(fs::exists(dir.File("q.gguf")));
  // Same types, different (calibrated) bytes.
  EXPECT_EQ(fs::file_size(dir.File("g.gguf")), fs::file_size(dir.File("q.gguf")));
  EXPECT_NE(test::ReadFile(dir.File("g.gguf")), test::ReadFile(dir.File("q.gguf")));
}

TEST(Cli, BadJsonConfig) {
  ScratchDir dir;
  CopyHouseExcept(dir.File("m"), "config.json");
  test::WriteFile(dir.File("m/config.json"), "{\"model_type\": \"llama\",");
  auto r = RunQforge({"quantize", dir.File("m"), "-f", "Q8_0", "-o", dir.File("o.gguf")});
  ExpectOneLineError(r, {"config.json", "invalid JSON"});
}

TEST(Cli, TruncatedSafetensors) {
  ScratchDir dir;
  CopyHouseExcept(dir.File("m"), "model.safetensors");
  const std::string full = test::ReadFile(test::HouseModelDir() + "/model.safetensors");
  test::WriteFile(dir.File("m/model.safetensors"), full.substr(0, full.size() / 2));
  auto r = RunQforge({"quantize", dir.File("m"), "-f", "Q8_0", "-o", dir.File("o.gguf")});
  ExpectOneLineError(r, {dir.File("m/model.safetensors"), "data_offsets", "out of range"});
  EXPECT_EQ(dir.List(), std::vector<std::string>{"m"});
}

TEST(Cli, HeaderLengthPastTheEnd) {
  ScratchDir dir;
  CopyHouseExcept(dir.File("m"), "model.safetensors");
  test::WriteFile(dir.File("m/model.safetensors"), std::string("\x00\x10\x00\x00\x00\x00\x00\x00{}", 10));
  auto r = RunQforge({"quantize", dir.File("m"), "-f", "Q8_0", "-o", dir.File("o.gguf")});
  ExpectOneLineError(r, {"model.safetensors", "header length", "past the end"});
}

TEST(Cli, DtypeShapeMismatch) {
  ScratchDir dir;
  CopyHouseExcept(dir.File("m"), "model.safetensors");
  std::string full = test::ReadFile(test::HouseModelDir() + "/model.safetensors");
  // Claim a wider dtype for the first tensor without changing its bytes.
  const size_t at = full.find("\"BF16\"");
  ASSERT_NE(at, std::string::npos);
  full.replace(at, 6, "\"F32\" ");
  test::WriteFile(dir.File("m/model.safetensors"), full);
  auto r = RunQforge({"quantize", dir.File("m"), "-f", "Q8_0", "-o", dir.File("o.gguf")});
  ExpectOneLineError(r, {"model.safetensors", "dtype F32", "need"});
}

TEST(Cli, UnwritableOutput) {
  ScratchDir dir;
  auto r = RunQforge({"quantize", test::HouseModelDir(), "-f", "Q8_0", "-o", dir.File("no/such/dir/o.gguf")});
  ExpectOneLineError(r, {dir.File("no/such/dir/o.gguf"), "cannot create output"});
}

TEST(Cli, UnknownTypeAndMissingSource) {
  ScratchDir dir;
  auto r = RunQforge({"quantize", test::HouseModelDir(), "-f", "Q9_9", "-o", dir.File("o.gguf")});
  ExpectOneLineError(r, {"Q9_9", "list-formats"});
  auto m = RunQforge({"quantize", dir.File("nothing"), "-f", "Q8_0"});
  ExpectOneLineError(m, {dir.File("nothing"), "no such file"});
  EXPECT_TRUE(dir.List().empty());
}

TEST(Cli, TruncatedGgufSource) {
  ScratchDir dir;
  const std::string full = test::ReadFile(test::SharedDir() + "/models/stories260K/stories260K-f32.gguf");
  test::WriteFile(dir.File("s.gguf"), full.substr(0, full.size() - 1000));
  auto r = RunQforge({"quantize", dir.File("s.gguf"), "-f", "F16", "-o", dir.File("o.gguf")});
  ExpectOneLineError(r, {dir.File("s.gguf"), "past the end"});
  EXPECT_EQ(dir.List(), std::vector<std::string>{"s.gguf"});
}

TEST(Cli, RequantizeNeedsTheFlag) {
  ScratchDir dir;
  ASSERT_EQ(RunQforge({"quantize", test::HouseModelDir(), "-f", "Q8_0", "-o", dir.File("q8.gguf")}).exit_code, 0);
  auto r = RunQforge({"quantize", dir.File("q8.gguf"), "-f", "F16", "-o", dir.File("f16.gguf")});
  ExpectOneLineError(r, {"already quantized", "--allow-requantize"});
  auto ok = RunQforge({"quantize", dir.File("q8.gguf"), "-f", "F16", "-o", dir.File("f16.gguf"), "--allow-requantize"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.err.find("warning"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir.File("f16.gguf")));
}

}  // namespace
}  // namespace qforge

namespace qforge {
namespace {

std::string RefImatrix(const std::string& model) {
  return test::SharedDir() + "/reference/llama.cpp/" + model + "/" + model + ".imatrix.gguf";
}

TEST(CliPlan, PrintsTypesWithoutWriting) {
  ScratchDir dir;
  auto r = RunQforge({"plan", test::HouseModelDir(), "-f", "Q4_K_M", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tensors"].size(), 39u);
  int q6 = 0;
  for (const auto& t : j["tensors"]) q6 += t["type"] == "Q6_K";
  EXPECT_EQ(q6, 5);  // output + attn_v and ffn_down of layers 2 and 3
  EXPECT_GT(j["file_bytes"].get<uint64_t>(), j["tensor_bytes"].get<uint64_t>());
  auto text = RunQforge({"plan", test::HouseModelDir(), "-f", "q4_k_m"});
  EXPECT_NE(text.out.find("bits per weight"), std::string::npos);
}

// quantize writes exactly what plan printed, for a GGUF preset and for a
// checkpoint scheme: the same recipes, and the file holds those tensors.
TEST(CliPlan, QuantizeWritesWhatPlanPrinted) {
  ScratchDir dir;
  const std::vector<std::string> gguf = {test::HouseModelDir(), "-f", "Q4_K_M", "--tensor-type", "ffn_up=q5_k", "--json"};
  std::vector<std::string> plan_args = {"plan"}, quant_args = {"quantize"};
  plan_args.insert(plan_args.end(), gguf.begin(), gguf.end());
  quant_args.insert(quant_args.end(), gguf.begin(), gguf.end());
  quant_args.insert(quant_args.end(), {"-o", dir.File("q.gguf")});
  auto p = RunQforge(plan_args), q = RunQforge(quant_args);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  ASSERT_EQ(q.exit_code, 0) << q.err;
  const auto pj = nlohmann::json::parse(p.out), qj = nlohmann::json::parse(q.out);
  EXPECT_EQ(pj["tensors"], qj["tensors"]);
  EXPECT_EQ(pj["file_bytes"], qj["file_bytes"]);
  const auto file = nlohmann::json::parse(RunQforge({"inspect", "--json", dir.File("q.gguf")}).out);
  ASSERT_EQ(file["tensors"].size(), pj["tensors"].size());
  for (size_t i = 0; i < file["tensors"].size(); ++i) {
    EXPECT_EQ(file["tensors"][i]["name"], pj["tensors"][i]["name"]);
    EXPECT_EQ(file["tensors"][i]["type"], pj["tensors"][i]["type"]);
  }

  const std::vector<std::string> scheme = {test::HouseModelDir(), "--scheme", "W4A16_ASYM", "--method", "rtn", "--ignore",
                                           "down_proj", "--json"};
  plan_args = {"plan"};
  quant_args = {"quantize"};
  plan_args.insert(plan_args.end(), scheme.begin(), scheme.end());
  quant_args.insert(quant_args.end(), scheme.begin(), scheme.end());
  quant_args.insert(quant_args.end(), {"-o", dir.File("ckpt")});
  p = RunQforge(plan_args);
  q = RunQforge(quant_args);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  ASSERT_EQ(q.exit_code, 0) << q.err;
  const auto sp = nlohmann::json::parse(p.out), sq = nlohmann::json::parse(q.out);
  EXPECT_EQ(sp["tensors"], sq["tensors"]);
  EXPECT_EQ(sp["tensor_bytes"], sq["bytes"]);
  int quantized = 0;
  for (const auto& t : sp["tensors"]) quantized += t["type"] == "W4A16_ASYM g128";
  EXPECT_EQ(quantized, 28 - 4);
  EXPECT_EQ(sq["quantized_linears"], quantized);
}

TEST(CliPlan, PerTensorControls) {
  auto r = RunQforge({"plan", test::HouseModelDir(), "-f", "Q4_K_M", "--json", "--tensor-type", "ffn_(up|gate)=q8_0",
                      "--output-tensor-type", "q4_0", "--token-embedding-type", "f16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  for (const auto& t : j["tensors"]) {
    const std::string name = t["name"];
    std::string expected;
    if (name.find("ffn_up") != std::string::npos || name.find("ffn_gate") != std::string::npos) expected = "Q8_0";
    if (name == "output.weight") expected = "Q4_0";
    if (name == "token_embd.weight") expected = "F16";
    if (!expected.empty()) {
      EXPECT_EQ(t["type"], expected) << name;
    }
  }
  auto pure = nlohmann::json::parse(RunQforge({"plan", test::HouseModelDir(), "-f", "Q4_K_M", "--json", "--pure"}).out);
  for (const auto& t : pure["tensors"]) {
    if (t["type"] != "F32") {
      EXPECT_EQ(t["type"], "Q4_K") << t["name"];
    }
  }
  auto leave = nlohmann::json::parse(
      RunQforge({"plan", test::HouseModelDir(), "-f", "Q4_K_M", "--json", "--leave-output-tensor"}).out);
  EXPECT_EQ(leave["tensors"][0]["name"], "output.weight");
  EXPECT_EQ(leave["tensors"][0]["type"], "F32");
}

TEST(CliPlan, BadOverridesAreClearErrors) {
  ExpectOneLineError(RunQforge({"plan", test::HouseModelDir(), "-f", "Q4_K_M", "--tensor-type", "ffn_up"}),
                     {"--tensor-type", "PATTERN=TYPE"});
  ExpectOneLineError(RunQforge({"plan", test::HouseModelDir(), "-f", "Q4_K_M", "--tensor-type", "ffn_up=q9_9"}),
                     {"q9_9"});
  ExpectOneLineError(RunQforge({"plan", test::HouseModelDir(), "-f", "Q4_K_M", "--tensor-type", "(=q8_0"}),
                     {"regular expression"});
  ExpectOneLineError(RunQforge({"plan", test::HouseModelDir(), "-f", "Q4_K_M", "--exclude-weights", "x"}),
                     {"--imatrix"});
}

TEST(CliQuantize, ImatrixThatDoesNotFitNamesTheTensor) {
  ScratchDir dir;
  auto r = RunQforge({"quantize", test::HouseModelDir(), "-f", "Q4_K_M", "--imatrix", RefImatrix("stories260K"), "-o",
                      dir.File("o.gguf")});
  ExpectOneLineError(r, {"stories260K.imatrix.gguf", "blk.0.attn_k.weight", "does not fit"});
  EXPECT_TRUE(dir.List().empty());
}

TEST(CliQuantize, ImatrixRunPrintsTheTableAndRecordsTheFile) {
  ScratchDir dir;
  auto r = RunQforge({"quantize", test::HouseModelDir(), "-f", "IQ4_XS", "--imatrix", RefImatrix("house-14m"), "-o",
                      dir.File("o.gguf"), "--exclude-weights", "ffn_down"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("blk.0.ffn_up.weight"), std::string::npos);
  EXPECT_NE(r.out.find("wrote"), std::string::npos);
  auto info = nlohmann::json::parse(RunQforge({"inspect", "--json", dir.File("o.gguf")}).out);
  EXPECT_EQ(info["metadata"]["quantize.imatrix.entries_count"], 24);
  EXPECT_EQ(info["metadata"]["quantize.imatrix.dataset"], "calib.txt");
}

}  // namespace
}  // namespace qforge

namespace qforge {
namespace {

TEST(CliTokenize, IdsAndPieces) {
  auto ids = RunQforge({"tokenize", test::HouseModelDir(), "-p", "In the beginning", "--ids"});
  ASSERT_EQ(ids.exit_code, 0) << ids.err;
  EXPECT_EQ(ids.out, "[1, 705, 264, 3398]\n");
  auto pieces = RunQforge({"tokenize", test::HouseModelDir(), "-p", "In the beginning"});
  EXPECT_NE(pieces.out.find("3398 -> '\xE2\x96\x81" "beginning'"), std::string::npos) << pieces.out;
  auto nobos = RunQforge({"tokenize", test::HouseModelDir(), "-p", "In", "--ids", "--no-bos"});
  EXPECT_EQ(nobos.out, "[705]\n");
  ExpectOneLineError(RunQforge({"tokenize", test::HouseModelDir(), "-f", "/nonexistent/file.txt"}),
                     {"/nonexistent/file.txt", "cannot open"});
}

// Keeping decoded weights between chunks changes speed, never the figures.
TEST(CliPerplexity, WeightCacheGivesTheSameFigures) {
  const std::vector<std::string> args = {"perplexity", test::HouseModelDir(), "--text", test::SharedDir() + "/text/eval.txt",
                                         "--ctx", "128", "--chunks", "3", "--json"};
  auto cached = RunQforge(args);
  auto uncached_args = args;
  uncached_args.insert(uncached_args.end(), {"--cache-mb", "0"});
  auto uncached = RunQforge(uncached_args);
  ASSERT_EQ(cached.exit_code, 0) << cached.err;
  ASSERT_EQ(uncached.exit_code, 0) << uncached.err;
  EXPECT_EQ(nlohmann::json::parse(cached.out)["ppl"].get<double>(), nlohmann::json::parse(uncached.out)["ppl"].get<double>());
  const auto bad = RunQforge({"perplexity", test::HouseModelDir(), "--text", "x", "--cache-mb", "-1"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--cache-mb"), std::string::npos) << bad.err;
}

TEST(CliPerplexity, JsonShape) {
  auto r = RunQforge({"perplexity", test::SharedDir() + "/models/stories260K/stories260K-f32.gguf", "--text",
                      test::SharedDir() + "/text/stories-eval.txt", "--ctx", "128", "--chunks", "4", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  for (const char* k : {"ppl", "ppl_stderr", "tokens", "tokens_per_second"}) EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["tokens"], 512);
  EXPECT_GT(j["ppl"].get<double>(), 1.0);
  ExpectOneLineError(RunQforge({"perplexity", test::HouseModelDir(), "--text", "/nonexistent.txt"}),
                     {"/nonexistent.txt"});
}

}  // namespace
}  // namespace qforge

namespace qforge {
namespace {

TEST(CliImatrix, WritesAFileQuantizeReads) {
  ScratchDir dir;
  auto r = RunQforge({"imatrix", test::HouseModelDir(), "--text", test::SharedDir() + "/text/calib.txt", "--ctx", "64",
                      "--chunks", "3", "-o", dir.File("i.gguf"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["entries"], 28);
  EXPECT_EQ(j["chunks"], 3);
  auto q = RunQforge({"quantize", test::HouseModelDir(), "-f", "Q4_K_M", "--imatrix", dir.File("i.gguf"), "-o",
                      dir.File("q.gguf"), "--quiet"});
  EXPECT_EQ(q.exit_code, 0) << q.err;
  auto info = nlohmann::json::parse(RunQforge({"inspect", "--json", dir.File("q.gguf")}).out);
  EXPECT_EQ(info["metadata"]["quantize.imatrix.chunks_count"], 3);
}


// Smaller faults of issue 10's kind 5, each with the input that showed it.
TEST(CliInputs, GenerateJsonSurvivesBytesThatAreNotUtf8) {
  const auto r = RunQforge({"generate", test::HouseModelDir(), "-p", "\xff\xfe hi", "-n", "3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["prompt"], "\xEF\xBF\xBD\xEF\xBF\xBD hi");  // each bad byte as U+FFFD
  EXPECT_EQ(j["tokens"].size(), 3u);
}

TEST(CliInputs, ChunksMustBePositive) {
  for (const char* cmd : {"perplexity", "imatrix"}) {
    for (const char* n : {"0", "-3", "two"}) {
      const auto r = RunQforge({cmd, test::HouseModelDir(), "--text", test::SharedDir() + "/text/eval.txt", "--chunks", n});
      EXPECT_NE(r.exit_code, 0) << cmd << " " << n;
      EXPECT_NE(r.err.find("--chunks"), std::string::npos) << r.err;
      EXPECT_NE(r.err.find(std::string(n) == "two" ? "whole number" : "at least 1"), std::string::npos) << r.err;
    }
  }
}

TEST(CliInputs, InspectOpensAnImatrix) {
  ScratchDir dir;
  auto r = RunQforge({"imatrix", test::HouseModelDir(), "--text", test::SharedDir() + "/text/calib.txt", "--ctx", "64",
                      "--chunks", "2", "-o", dir.File("i.gguf"), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunQforge({"inspect", dir.File("i.gguf"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["metadata"]["general.type"], "imatrix");
  EXPECT_EQ(j["metadata"]["imatrix.chunk_count"], 2);
  EXPECT_EQ(j["tensors"].size(), 56u);  // in_sum2 and counts of 28 linears
  r = RunQforge({"inspect", dir.File("i.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("general.type imatrix (not a model)"), std::string::npos) << r.out;
}

// --process-output adds output.weight, fed every token of each chunk.
TEST(CliInputs, ImatrixProcessOutputCollectsTheHead) {
  ScratchDir dir;
  for (const bool with : {false, true}) {
    std::vector<std::string> args = {"imatrix", test::HouseModelDir(), "--text", test::SharedDir() + "/text/calib.txt", "--ctx",
                                     "64", "--chunks", "2", "-o", dir.File("i.gguf"), "-q"};
    if (with) args.push_back("--process-output");
    const auto r = RunQforge(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto m = ReadImatrix(dir.File("i.gguf"));
    ASSERT_TRUE(m.ok()) << m.status().message();
    EXPECT_EQ(m->entries.size(), with ? 29u : 28u);
    EXPECT_EQ(m->entries.count("output.weight"), with ? 1u : 0u);
    if (with) {
      EXPECT_EQ(m->entries.at("output.weight").values.size(), 512u);
    }
  }
}

// A folder whose BPE pre-tokenizer qforge cannot identify opens in every
// command that reads models once --tokenizer-pre names it.
TEST(CliInputs, TokenizerPreOnEveryCommandThatOpensAModel) {
  ScratchDir dir;
  ASSERT_EQ(test::WriteSyntheticModel(dir.File("m"), test::SyntheticSpec{}), "");
  auto tj = nlohmann::json::parse(test::ReadFile(dir.File("m/tokenizer.json")));
  tj["pre_tokenizer"] = {{"type", "Whitespace"}};
  test::WriteFile(dir.File("m/tokenizer.json"), tj.dump());
  const std::vector<std::vector<std::string>> cmds = {{"tokenize", dir.File("m"), "-p", "ab ab", "--json"},
                                                      {"inspect", dir.File("m"), "--json"},
                                                      {"generate", dir.File("m"), "-p", "ab", "-n", "2", "--json"},
                                                      {"plan", dir.File("m"), "-f", "Q8_0", "--json"}};
  for (auto args : cmds) {
    auto r = RunQforge(args);
    EXPECT_NE(r.exit_code, 0) << args[0];
    EXPECT_NE(r.err.find("--tokenizer-pre"), std::string::npos) << args[0] << ": " << r.err;
    args.insert(args.end(), {"--tokenizer-pre", "qwen2"});
    r = RunQforge(args);
    EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
  }
}
}  // namespace
}  // namespace qforge

namespace qforge {
namespace {

TEST(CliEval, JsonAndSavedBaseGiveTheSameFigures) {
  ScratchDir dir;
  const std::string stories = test::SharedDir() + "/models/stories260K/stories260K-f32.gguf";
  auto q = RunQforge({"quantize", stories, "-f", "Q4_K_M", "-o", dir.File("q.gguf"), "--quiet"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  auto first = RunQforge({"eval", "--base", stories, dir.File("q.gguf"), "--text",
                          test::SharedDir() + "/text/stories-eval.txt", "--ctx", "128", "--chunks", "8", "--save-base",
                          dir.File("base.kld"), "--json"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto j = nlohmann::json::parse(first.out);
  ASSERT_EQ(j["models"].size(), 1u);
  for (const char* k : {"path", "ppl", "ppl_ratio", "kld_mean", "kld_stderr", "kld_median", "kld_p90", "kld_p99",
                        "kld_p999", "kld_max", "top1", "rms_dp", "bpw"}) {
    EXPECT_TRUE(j["models"][0].contains(k)) << k;
  }
  EXPECT_GT(j["models"][0]["kld_mean"].get<double>(), 0.0);
  auto again = RunQforge({"eval", "--base-logits", dir.File("base.kld"), dir.File("q.gguf"), "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  auto k = nlohmann::json::parse(again.out);
  EXPECT_EQ(k["models"][0]["kld_mean"], j["models"][0]["kld_mean"]);
  EXPECT_EQ(k["models"][0]["top1"], j["models"][0]["top1"]);
  ExpectOneLineError(RunQforge({"eval", "--base-logits", dir.File("base.kld"), test::HouseModelDir()}),
                     {"vocabulary"});
}

}  // namespace
}  // namespace qforge

namespace qforge {
namespace {

TEST(CliScheme, WritesACheckpointQforgeReadsBack) {
  test::ScratchDir dir;
  // --ignore is repeatable and takes one value, even before the source.
  const auto r = test::RunQforge({"quantize", "--ignore", "layers\\.0\\.mlp", "--ignore", "o_proj", test::HouseModelDir(),
                                  "--scheme", "W4A16", "--method", "rtn", "--layout", "gptq", "--json", "-o", dir.File("out")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["quantized_linears"], 28 - 3 - 4);
  EXPECT_EQ(j["shards"], 1);
  EXPECT_GT(j["peak_rss_bytes"].get<uint64_t>(), 0u);
  EXPECT_TRUE(fs::exists(dir.File("out/quantize_config.json")));
  const auto insp = test::RunQforge({"inspect", dir.File("out")});
  ASSERT_EQ(insp.exit_code, 0) << insp.err;
  EXPECT_NE(insp.out.find("gptq int4"), std::string::npos);
  const auto ppl = test::RunQforge({"perplexity", dir.File("out"), "--text", test::SharedDir() + "/text/eval.txt",
                                    "--ctx", "128", "--chunks", "4", "--json"});
  ASSERT_EQ(ppl.exit_code, 0) << ppl.err;
  EXPECT_LT(nlohmann::json::parse(ppl.out)["ppl"].get<double>(), 200.0);
}

TEST(CliScheme, ClearErrorsAndNothingWritten) {
  test::ScratchDir dir;
  const std::string out = dir.File("out");
  ExpectOneLineError(RunQforge({"quantize", test::HouseModelDir(), "--scheme", "W5A16", "-o", out}), {"--scheme", "W5A16"});
  ExpectOneLineError(RunQforge({"quantize", test::HouseModelDir(), "--scheme", "W4A16", "--layout", "mlx", "-o", out}),
                     {"--layout", "mlx"});
  ExpectOneLineError(RunQforge({"quantize", test::HouseModelDir(), "--scheme", "W4A16", "--method", "gptq", "-o", out}),
                     {"--calib"});
  ExpectOneLineError(RunQforge({"quantize", test::HouseModelDir(), "--scheme", "W4A16", "--method", "rtn", "--ignore", "(", "-o", out}),
                     {"--ignore", "regular expression"});
  ExpectOneLineError(RunQforge({"quantize", test::HouseModelDir(), "--scheme", "W4A16", "--method", "rtn", "--max-shard-size", "5XB", "-o", out}),
                     {"--max-shard-size", "unit"});
  ExpectOneLineError(RunQforge({"quantize", test::HouseModelDir(), "--scheme", "W4A16", "-f", "Q4_0", "-o", out}),
                     {"--type", "--scheme"});
  EXPECT_TRUE(dir.List().empty());
}

// A checkpoint that is already packed is not silently quantized again; with
// --allow-requantize it is, and an ignored linear is decoded through its
// layout (it used to be read as raw float bytes from a null pointer).
TEST(CliScheme, PackedSourceNeedsAllowRequantizeAndIgnoreDecodes) {
  test::ScratchDir dir;
  const auto first = RunQforge({"quantize", test::HouseModelDir(), "--scheme", "W4A16", "--method", "rtn", "-q", "-o",
                                dir.File("w4")});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ExpectOneLineError(RunQforge({"quantize", dir.File("w4"), "--scheme", "W8A16", "--method", "rtn", "-o", dir.File("again")}),
                     {"model.layers.0.self_attn.k_proj.weight", "already quantized", "--allow-requantize"});
  EXPECT_FALSE(fs::exists(dir.File("again")));
  const auto r = RunQforge({"quantize", dir.File("w4"), "--scheme", "W8A16", "--method", "rtn", "--allow-requantize",
                            "--ignore", "down_proj", "--json", "-o", dir.File("again")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["quantized_linears"], 28 - 4);
  EXPECT_EQ(j["warnings"].size(), 24u);
  const auto ppl = RunQforge({"perplexity", dir.File("again"), "--text", test::SharedDir() + "/text/eval.txt", "--ctx",
                              "128", "--chunks", "4", "--json"});
  ASSERT_EQ(ppl.exit_code, 0) << ppl.err;
  EXPECT_LT(nlohmann::json::parse(ppl.out)["ppl"].get<double>(), 200.0);
}

}  // namespace
}  // namespace qforge

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace qforge {
namespace {

// Interrupted after its first shard is finished, a checkpoint run leaves
// neither the folder nor the partial one behind: only its resume journal,
// which holds no model file, and says where it is.
TEST(CliScheme, InterruptLeavesNothing) {
  test::ScratchDir dir;
  const std::string bin = test::QforgeBinary(), src = test::HouseModelDir(), calib = test::SharedDir() + "/text/calib.txt",
                    out = dir.File("out");
  test::ScratchDir logs;
  const std::string err = logs.File("stderr");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) ::dup2(fd, 2);
    execl(bin.c_str(), bin.c_str(), "quantize", src.c_str(), "--method", "gptq", "--calib", calib.c_str(),
          "--max-shard-size", "2MB", "-q", "-t", "1", "-o", out.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  bool shard_seen = false;
  for (int i = 0; i < 600 && !shard_seen; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (const auto& e : fs::directory_iterator(dir.path())) {
      if (e.is_directory() && fs::exists(e.path() / "model-00001-of-00006.safetensors")) shard_seen = true;
    }
  }
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(shard_seen) << "no shard was finished within a minute";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT);
  EXPECT_EQ(dir.List(), std::vector<std::string>{"out.qforge-resume"});
  for (const auto& e : fs::directory_iterator(dir.File("out.qforge-resume"))) {
    const std::string name = e.path().filename().string();
    EXPECT_TRUE(name == "journal.json" || name.rfind("layer-", 0) == 0) << name;
  }
  EXPECT_NE(test::ReadFile(err).find("finished layers are kept in " + out + ".qforge-resume: the same command with --resume"),
            std::string::npos)
      << test::ReadFile(err);
}

}  // namespace
}  // namespace qforge
