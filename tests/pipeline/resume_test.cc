// Resumable calibrated runs: a GPTQ (or AWQ) run killed after its second
// layer leaves no output that looks valid, only its journal; --resume goes
// on from there and writes the same bytes as a run never interrupted.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "pipeline/journal.h"
#include "test_util.h"

namespace qforge {
namespace {
namespace fs = std::filesystem;

test::CommandResult RunKilledAfter(int layers, const std::vector<std::string>& args) {
  ::setenv("QFORGE_TEST_KILL_AFTER_LAYERS", std::to_string(layers).c_str(), 1);
  auto r = test::RunQforge(args);
  ::unsetenv("QFORGE_TEST_KILL_AFTER_LAYERS");
  return r;
}

class Resume : public ::testing::TestWithParam<std::vector<std::string>> {
 protected:
  // The quantize arguments for output `out`.
  std::vector<std::string> Args(const std::string& out, bool resume) const {
    std::vector<std::string> a = {"quantize", test::HouseModelDir()};
    a.insert(a.end(), GetParam().begin(), GetParam().end());
    a.insert(a.end(), {"--calib", test::SharedDir() + "/text/calib.txt", "--calib-samples", "4", "--calib-seqlen", "128",
                       "--json", "-o", out});
    if (resume) a.push_back("--resume");
    return a;
  }
  test::ScratchDir dir_;
};

TEST_P(Resume, KilledAfterTheSecondLayerThenResumedGivesTheSameBytes) {
  const std::string whole = dir_.File("whole"), resumed = dir_.File("resumed");
  auto r = test::RunQforge(Args(whole, false));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(LayerJournal::DirFor(whole))) << "the journal outlived a finished run";

  r = RunKilledAfter(2, Args(resumed, false));
  ASSERT_NE(r.exit_code, 0) << "the fault hook did not fire";
  EXPECT_FALSE(fs::exists(resumed)) << "an interrupted run left something at the output path";
  const auto state = nlohmann::json::parse(test::ReadFile(LayerJournal::DirFor(resumed) + "/journal.json"));
  EXPECT_EQ(state["layers_done"], 2);

  r = test::RunQforge(Args(resumed, true));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["resumed_layers"], 2);
  EXPECT_FALSE(fs::exists(LayerJournal::DirFor(resumed)));
  // What the killed run left beside the output (its temporary file or
  // partial folder) is gone too: only the two outputs remain.
  std::vector<std::string> left = dir_.List();
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"resumed", "whole"}));
  const auto a = test::TreeContents(whole), b = test::TreeContents(resumed);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, bytes] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(b.at(name) == bytes) << name << " differs after --resume";
  }
}

// --resume refuses a journal of another run; without --resume an old
// journal is discarded and the run starts over.
TEST_P(Resume, AJournalOfAnotherRunIsRefusedAndWithoutResumeDiscarded) {
  const std::string out = dir_.File("o");
  auto r = RunKilledAfter(1, Args(out, false));
  ASSERT_NE(r.exit_code, 0);
  auto other = Args(out, true);
  other.insert(other.begin() + 2, {"--damp", "0.05"});
  r = test::RunQforge(other);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("another model, plan, options or calibration"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("it had 'method "), std::string::npos) << r.err;  // names the option line that differs
  EXPECT_FALSE(fs::exists(out));
  r = test::RunQforge(Args(out, false));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["resumed_layers"], 0);
}

// A journal entry that does not read back whole (a disk fault, a cut-off
// copy) costs that layer and the ones after it, not the run: they are
// computed again, with a warning, and the bytes are still the same.
TEST_P(Resume, ADamagedEntryIsComputedAgain) {
  const std::string whole = dir_.File("whole"), out = dir_.File("o");
  auto r = test::RunQforge(Args(whole, false));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunKilledAfter(2, Args(out, false));
  ASSERT_NE(r.exit_code, 0);
  const std::string entry = LayerJournal::DirFor(out) + "/layer-00001.bin";
  const std::string bytes = test::ReadFile(entry);
  ASSERT_GT(bytes.size(), 100u);
  test::WriteFile(entry, bytes.substr(0, bytes.size() / 2));
  r = test::RunQforge(Args(out, true));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["resumed_layers"], 1);
  EXPECT_NE(j["warnings"].dump().find("resume journal: layer 1 could not be used"), std::string::npos) << j["warnings"];
  EXPECT_TRUE(test::TreeContents(whole) == test::TreeContents(out));
}

INSTANTIATE_TEST_SUITE_P(Methods, Resume,
                         ::testing::Values(std::vector<std::string>{"--scheme", "W4A16", "--method", "gptq"},
                                           std::vector<std::string>{"--scheme", "W4A16_ASYM", "--method", "awq", "--layout", "awq"},
                                           std::vector<std::string>{"-f", "Q4_K_M", "--method", "gptq"}),
                         [](const auto& info) { return info.param[1] == "Q4_K_M" ? std::string("GgufGptq")
                                                       : info.param[3] == "awq"  ? std::string("Awq")
                                                                                 : std::string("Gptq"); });

}  // namespace
}  // namespace qforge
