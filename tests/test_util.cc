#include "test_util.h"

#include "engine/llama_engine.h"
#include "eval/kld.h"
#include "eval/perplexity.h"
#include "io/imatrix.h"
#include "model/model.h"
#include "model/model_tokenizer.h"
#include "numeric/half.h"
#include "plan/plan.h"
#include "sinks/gguf_sink.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace qforge::test {
namespace fs = std::filesystem;

std::string SourceDir() { return QFORGE_SOURCE_DIR; }
std::string SharedDir() { return QFORGE_SHARED_DIR; }
std::string QforgeBinary() { return QFORGE_BINARY; }
std::string HouseModelDir() { return SourceDir() + "/models/house-14m"; }

std::map<std::string, std::string> TreeContents(const std::string& path) {
  std::map<std::string, std::string> out;
  if (fs::is_regular_file(path)) {
    out[""] = ReadFile(path);
    return out;
  }
  for (const auto& e : fs::recursive_directory_iterator(path)) {
    if (e.is_regular_file()) out[fs::relative(e.path(), path).string()] = ReadFile(e.path().string());
  }
  return out;
}

std::string CopyHouseModel(const std::string& dst) {
  fs::create_directories(dst);
  for (const auto& e : fs::directory_iterator(HouseModelDir())) fs::copy_file(e.path(), dst + "/" + e.path().filename().string());
  return dst;
}

void PokeBf16(const std::string& safetensors_path, const std::string& name, int64_t index, float v, int64_t count) {
  std::fstream f(safetensors_path, std::ios::in | std::ios::out | std::ios::binary);
  uint64_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 8);
  std::string header(n, '\0');
  f.read(header.data(), static_cast<std::streamsize>(n));
  const auto j = nlohmann::json::parse(header);
  const auto& t = j.at(name);
  ASSERT_EQ(t.at("dtype"), "BF16") << name;
  const uint16_t b = FloatToBf16(v);
  f.seekp(static_cast<std::streamoff>(8 + n + t.at("data_offsets")[0].get<uint64_t>() + 2 * static_cast<uint64_t>(index)));
  for (int64_t i = 0; i < count; ++i) f.write(reinterpret_cast<const char*>(&b), 2);
  ASSERT_TRUE(f.good()) << safetensors_path;
}

ScratchDir::ScratchDir() {
  std::random_device rd;
  std::string base = fs::temp_directory_path().string() + "/qforge-test-";
  for (int i = 0; i < 100; ++i) {
    std::string p = base + std::to_string(::getpid()) + "-" + std::to_string(rd());
    if (fs::create_directory(p)) {
      path_ = p;
      return;
    }
  }
  ADD_FAILURE() << "cannot create a scratch folder";
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  if (!path_.empty()) fs::remove_all(path_, ec);
}

std::vector<std::string> ScratchDir::List() const {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}
}  // namespace

CommandResult RunQforge(const std::vector<std::string>& args) {
  ScratchDir tmp;
  std::ostringstream cmd;
  cmd << ShellQuote(QforgeBinary());
  for (const auto& a : args) cmd << ' ' << ShellQuote(a);
  cmd << " >" << ShellQuote(tmp.File("out")) << " 2>" << ShellQuote(tmp.File("err")) << " </dev/null";
  int status = std::system(cmd.str().c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadFile(tmp.File("out"));
  r.err = ReadFile(tmp.File("err"));
  return r;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream o(path, std::ios::binary);
  o.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::string> SplitString(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t at = s.find(sep, pos);
    if (at == std::string::npos) {
      out.push_back(s.substr(pos));
      break;
    }
    out.push_back(s.substr(pos, at - pos));
    pos = at + sep.size();
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ReferenceRun ParseReferenceLabel(const std::string& label) {
  ReferenceRun r;
  std::string rest = label;
  auto take = [&](const std::string& suffix) {
    if (rest.size() > suffix.size() && rest.compare(rest.size() - suffix.size(), suffix.size(), suffix) == 0) {
      rest.resize(rest.size() - suffix.size());
      return true;
    }
    return false;
  };
  r.imatrix = take("-imatrix");
  r.ffn_f16 = take("-ffnF16");
  r.pure = take("-pure");
  r.type = rest;
  return r;
}

std::string ReferenceSource(const std::string& model_name) {
  if (model_name == "house-14m") return HouseModelDir();
  if (model_name == "stories260K") return SharedDir() + "/models/stories260K/stories260K-f32.gguf";
  return SharedDir() + "/reference/llama.cpp/" + model_name + "/hf";
}

Status QuantizeLikeReference(const std::string& model_name, const std::string& label, const std::string& out,
                             int threads) {
  const ReferenceRun run = ParseReferenceLabel(label);
  const std::string ref_dir = SharedDir() + "/reference/llama.cpp/" + model_name;
  const std::string src = ReferenceSource(model_name);
  const std::string stem = model_name.substr(model_name.rfind('/') + 1);
  QF_ASSIGN_OR_RETURN(Model model, OpenModel(src));
  const Preset* p = FindPreset(run.type);
  if (p == nullptr) return Status::Error("no preset " + run.type);
  PlanOptions po;
  po.pure = run.pure;
  po.like_llama_quantize = true;  // the labels are llama-quantize's runs, not the converter's
  if (run.ffn_f16) {
    QF_ASSIGN_OR_RETURN(auto o, ParseTensorTypeOverride("ffn_down=f16"));
    po.tensor_types.push_back(std::move(o));
  }
  Imatrix im;
  if (run.imatrix) {
    QF_ASSIGN_OR_RETURN(im, ReadImatrix(ref_dir + "/" + stem + ".imatrix.gguf"));
    po.imatrix = &im;
    po.imatrix_arg = stem + ".imatrix.gguf";
  }
  QF_ASSIGN_OR_RETURN(Plan plan, BuildPlan(model, *p, po));
  SinkOptions so;
  so.threads = threads;
  return WriteGguf(plan, out, so);
}

std::string PythonFloatRepr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout: positional for
  // exponents in [-4, 16), scientific with a two-digit exponent otherwise.
  std::array<char, 64> buf{};
  auto res = std::to_chars(buf.data(), buf.data() + buf.size(), d, std::chars_format::scientific);
  std::string s(buf.data(), res.ptr);
  std::string sign;
  if (s[0] == '-') {
    sign = "-";
    s = s.substr(1);
  }
  size_t e = s.find('e');
  std::string mant = s.substr(0, e);
  int exp = std::stoi(s.substr(e + 1));
  std::string digits;
  for (char c : mant) if (c != '.') digits += c;
  if (exp >= -4 && exp < 16) {
    std::string out = sign;
    const size_t point = static_cast<size_t>(exp + 1);
    if (exp < 0) {
      out.append("0.");
      out.append(static_cast<size_t>(-exp - 1), '0');
      out.append(digits);
    } else if (digits.size() <= point) {
      out.append(digits);
      out.append(point - digits.size(), '0');
      out.append(".0");
    } else {
      out.append(digits, 0, point);
      out.push_back('.');
      out.append(digits, point, std::string::npos);
    }
    return out;
  }
  std::string m = digits.size() > 1 ? digits.substr(0, 1) + "." + digits.substr(1) : digits;
  char eb[16];
  std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  return sign + m + eb;
}

namespace {

bool DecodeUtf8(const std::string& s, size_t& i, uint32_t* cp) {
  const auto c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + len > s.size()) return false;
  uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < len; ++k) v = (v << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  *cp = v;
  i += static_cast<size_t>(len);
  return true;
}

// Code points str.isprintable() rejects: controls, separators other than the
// ASCII space, format characters, surrogates, private use. Covers the
// characters our vocabularies contain; exotic unassigned ones are not listed.
bool PyPrintable(uint32_t cp) {
  if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) return false;
  if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F)) return false;
  if ((cp >= 0x205F && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x206F) || cp == 0x3000) return false;
  if (cp == 0xFEFF || (cp >= 0xD800 && cp <= 0xF8FF) || (cp >= 0xFFF9 && cp <= 0xFFFB)) return false;
  if (cp >= 0xF0000) return false;
  return true;
}

}  // namespace

std::string PythonStrRepr(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp = 0;
    size_t start = i;
    if (!DecodeUtf8(s, i, &cp)) {
      ++i;
      cp = 0xDC00 + static_cast<unsigned char>(s[start]);  // surrogateescape-like marker
    }
    char buf[16];
    if (cp == static_cast<uint32_t>(quote) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (!PyPrintable(cp)) {
      if (cp < 0x100) std::snprintf(buf, sizeof buf, "\\x%02x", cp);
      else if (cp < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      else std::snprintf(buf, sizeof buf, "\\U%08x", cp);
      out += buf;
    } else {
      out += s.substr(start, i - start);
    }
  }
  out += quote;
  return out;
}

std::string PythonRepr(const GgufValue& v) {
  std::string out = "[";
  for (uint64_t i = 0; i < v.count(); ++i) {
    if (i) out += ", ";
    if (v.elem_type() == GgufType::STRING) out += PythonStrRepr(v.strings()[i]);
    else if (v.elem_type() == GgufType::FLOAT32 || v.elem_type() == GgufType::FLOAT64) out += PythonFloatRepr(v.ArrayF64(i));
    else if (v.elem_type() == GgufType::BOOL) out += v.ArrayI64(i) ? "True" : "False";
    else out += std::to_string(v.ArrayI64(i));
  }
  return out + "]";
}

std::vector<double> MeanKldsAgainst(const Model& base, const std::vector<const Model*>& quants) {
  std::vector<double> out(quants.size(), INFINITY);
  auto tok = TokenizerForModel(base);
  auto be = LlamaEngine::Create(base, 2);
  EXPECT_TRUE(tok.ok() && be.ok());
  if (!tok.ok() || !be.ok()) return out;
  PerplexityOptions po;
  po.n_ctx = 128;
  po.max_chunks = 8;
  po.bos = (*tok)->adds_bos() ? (*tok)->bos_id() : -1;
  PerplexityResult ppl;
  auto kb = ComputeKldBase(**be, (*tok)->Encode(ReadFile(SharedDir() + "/text/eval.txt"), true), po, &ppl);
  EXPECT_TRUE(kb.ok()) << kb.status().message();
  if (!kb.ok()) return out;
  for (size_t i = 0; i < quants.size(); ++i) {
    auto qe = LlamaEngine::Create(*quants[i], 2);
    EXPECT_TRUE(qe.ok()) << qe.status().message();
    if (!qe.ok()) continue;
    auto st = EvaluateKld(**qe, *kb, po.bos);
    EXPECT_TRUE(st.ok()) << st.status().message();
    if (st.ok()) out[i] = st->kld_mean;
  }
  return out;
}

}  // namespace qforge::test
