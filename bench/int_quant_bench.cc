// GPTQ, AWQ and RTN wall time on the bundled model (W4A16_ASYM, group 128,
// compressed-tensors, calibration on ../shared/text/calib.txt with the
// defaults), 2 threads, and where the time goes: forward passes, Hessian
// accumulation, solves (GPTQ) or searches (AWQ), packing and writing. Each
// method runs in a child process so its peak resident size is its own.
// No reference tool runs on this machine (llm-compressor, GPTQModel and
// AutoAWQ need Python and a GPU), so these are absolute figures.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "pipeline/int_pipeline.h"
#include "model/model.h"

namespace {
namespace fs = std::filesystem;

int RunOne(qforge::Method method, const std::string& shared, const std::string& out) {
  auto model = qforge::OpenModel(std::string(QFORGE_SOURCE_DIR) + "/models/house-14m");
  if (!model.ok()) return 1;
  qforge::IntPipelineOptions o;
  if (!qforge::ParseIntScheme("W4A16_ASYM", &o.plan.spec).ok()) return 1;
  o.plan.method = method;
  o.calib.text_path = shared + "/text/calib.txt";
  o.threads = 2;
  qforge::IntPipelineReport r;
  qforge::Status s = qforge::QuantizeToIntCheckpoint(*model, out, o, &r);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  const auto& t = r.timings;
  std::printf("%-5s %7.2f s  forward %6.2f  hessian %5.2f  solve %5.2f  search %6.2f  pack+write %5.2f  "
              "(%lld x %lld tokens)  peak RSS %6.1f MiB\n",
              qforge::MethodName(method), r.total_s, t.forward_s, t.hessian_s, t.solve_s, t.search_s, r.pack_write_s,
              static_cast<long long>(r.samples), static_cast<long long>(r.seqlen), static_cast<double>(ru.ru_maxrss) / 1024.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string shared = argc > 1 ? argv[1] : std::string(QFORGE_SOURCE_DIR) + "/../shared";
  const fs::path tmp = fs::temp_directory_path() / ("qforge-int-bench-" + std::to_string(getpid()));
  fs::create_directories(tmp);
  std::printf("house-14m W4A16_ASYM g128, 2 threads\n");
  int rc = 0;
  for (auto m : {qforge::Method::kRtn, qforge::Method::kGptq, qforge::Method::kAwq}) {
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
      const int code = RunOne(m, shared, (tmp / qforge::MethodName(m)).string());
      std::fflush(stdout);
      _exit(code);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
  }
  fs::remove_all(tmp);
  return rc;
}
