#include "tokenizer/gguf_vocab.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>

#include "io/json_file.h"
#include "tokenizer/spm_model.h"

namespace qforge {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kSpecialTypes[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};

const char* kKnownPre[] = {
    "default", "minicpm5", "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
    "midm-2.0", "lfm2", "jina-v5-nano", "deepseek-llm", "deepseek-coder", "deepseek-v3", "youtu",
    "falcon", "mpt", "starcoder", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es",
    "jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "jais-2", "gemma4", "granite-embed-multi-311m",
    "sarvam-moe", "jina-v1-en", "jina-v2-code", "roberta-bpe", "whitespace", "refact", "command-r",
    "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "qwen35", "stablelm2", "olmo", "dbrx",
    "smaug-bpe", "poro-chat", "glm4", "chatglm-bpe", "viking", "jais", "tekken", "smollm",
    "codeshell", "bloom", "gpt3-finnish", "exaone", "exaone4", "exaone-moe", "chameleon",
    "minerva-7b", "megrez", "gpt-4o", "llama4", "kanana2", "talkie", "granite-embed-multi-97m",
    "tiny_aya", "cohere2moe", "superbpe", "trillion", "granite-docling", "bailingmoe",
    "bailingmoe2", "llada-moe", "seed-coder", "hunyuan", "hunyuan-dense", "joyai-llm", "kimi-k2",
    "grok-2", "afmoe", "laguna", "minimax-m2", "solar-open", "mellum2"};

// Text that marks an added token as a control token even when it is not
// flagged special: <|...|>, <｜...｜>, <unused...>, <pad>, <mask>, <2mass>, [@BOS@].
bool LooksSpecial(const std::string& t) {
  auto starts = [&](const std::string& p) { return t.rfind(p, 0) == 0; };
  auto ends = [&](const std::string& s) {
    return t.size() >= s.size() && t.compare(t.size() - s.size(), s.size(), s) == 0;
  };
  if (starts("<|") && ends("|>")) return true;
  if (starts("<\xEF\xBD\x9C") && ends("\xEF\xBD\x9C>")) return true;
  if (starts("<unused") && ends(">")) return true;
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]";
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

template <typename V>
void Upsert(std::vector<std::pair<std::string, V>>& list, const std::string& k, V v) {
  for (auto& kv : list) {
    if (kv.first == k) {
      kv.second = v;
      return;
    }
  }
  list.emplace_back(k, v);
}

std::optional<std::string> TokenContent(const json& entry) {
  if (entry.is_string()) return entry.get<std::string>();
  if (entry.is_object() && entry.contains("content") && entry["content"].is_string()) {
    return entry["content"].get<std::string>();
  }
  return std::nullopt;
}

// What SpecialVocab reads special tokens from: tokenizer.json and
// tokenizer_config.json (either may be absent).
struct SpecialSources {
  json tok, tcfg;
  bool have_tok = false, have_tcfg = false;

  // A token named in tokenizer_config.json ("bos_token"), as its content.
  std::optional<std::string> ConfigToken(const char* key) const {
    if (!have_tcfg || !tcfg.contains(key)) return std::nullopt;
    return TokenContent(tcfg[key]);
  }
};

// Records a special id once (the first source wins), when it is a valid id.
// One outside the vocabulary is skipped with a warning naming its source,
// as gguf-py's SpecialVocab skips it.
void SetSpecialId(const std::string& typ, const json& id, size_t n_vocab, const std::string& source, GgufVocab* v) {
  if (!id.is_number_integer()) return;
  for (const auto& kv : v->special_ids) {
    if (kv.first == typ) return;
  }
  const int64_t t = id.get<int64_t>();
  if (t < 0 || static_cast<size_t>(t) >= n_vocab) {
    v->warnings.push_back(source + ": " + typ + " token id " + std::to_string(t) + " is outside the vocabulary (0.." +
                          std::to_string(static_cast<int64_t>(n_vocab) - 1) + "); skipped, as llama.cpp's converter does");
    return;
  }
  v->special_ids.emplace_back(typ, static_cast<uint32_t>(t));
}

std::optional<std::string> SpecialIdOf(const json& e) {
  if (e.is_object() && e.contains("SpecialToken") && e["SpecialToken"].contains("id") && e["SpecialToken"]["id"].is_string()) {
    return e["SpecialToken"]["id"].get<std::string>();
  }
  return std::nullopt;
}

std::optional<std::string> SequenceIdOf(const json& e) {
  if (e.is_object() && e.contains("Sequence") && e["Sequence"].contains("id") && e["Sequence"]["id"].is_string()) {
    return e["Sequence"]["id"].get<std::string>();
  }
  return std::nullopt;
}

// add_bos/add_eos from a TemplateProcessing's single template, add_sep from
// its pair template, as SpecialVocab infers them.
void ReadTemplateProcessing(const json& proc, const SpecialSources& src, std::optional<std::string>& bos,
                            std::optional<std::string>& eos, const std::optional<std::string>& sep,
                            const std::optional<std::string>& cls, GgufVocab* v) {
  const json single = proc.value("single", json::array());
  const json pair = proc.value("pair", json::array());
  std::optional<std::string> first, last;
  if (single.is_array() && single.size() > 1) {
    first = SpecialIdOf(single.front());
    if (first) {
      if (!src.have_tcfg) bos = first;
      Upsert(v->add_flags, "bos", first == bos || (cls && first == cls));
    }
    last = SpecialIdOf(single.back());
    if (last) {
      if (!src.have_tcfg) eos = last;
      Upsert(v->add_flags, "eos", last == eos);
    }
  }
  if (!pair.is_array() || pair.empty()) return;
  const size_t begin = (first && SpecialIdOf(pair.front()) == first) ? 1 : 0;
  const size_t end = (last && SpecialIdOf(pair.back()) == last) ? pair.size() - 1 : pair.size();
  if (end <= begin) return;
  if (SequenceIdOf(pair[begin]) != "A" || SequenceIdOf(pair[end - 1]) != "B" || end - begin <= 2) return;
  bool add_sep = false;
  auto is_sep = [&](const std::optional<std::string>& s) { return s && (s == sep || s == eos); };
  if (is_sep(SpecialIdOf(pair[begin + 1])) && !last) add_sep = true;
  if (end - begin - 2 == 2 && is_sep(SpecialIdOf(pair[begin + 2]))) add_sep = true;
  Upsert(v->add_flags, "sep", add_sep);
}

// tokenizer.json's post-processor: the add_* flags it implies.
void ReadPostProcessor(const SpecialSources& src, GgufVocab* v) {
  if (!src.have_tok || !src.tok.contains("post_processor") || !src.tok["post_processor"].is_object()) return;
  const json& pp = src.tok["post_processor"];
  std::vector<json> procs;
  if (pp.contains("processors") && pp["processors"].is_array()) {
    for (const auto& p : pp["processors"]) procs.push_back(p);
  } else {
    procs.push_back(pp);
  }
  auto bos = src.ConfigToken("bos_token"), eos = src.ConfigToken("eos_token");
  const auto sep = src.ConfigToken("sep_token"), cls = src.ConfigToken("cls_token");
  if (!bos && cls) bos = cls;
  if (!eos && sep) eos = sep;
  for (const auto& proc : procs) {
    const std::string type = proc.value("type", "");
    if (type == "RobertaProcessing") {
      Upsert(v->add_flags, "bos", true);
      Upsert(v->add_flags, "eos", true);
      Upsert(v->add_flags, "sep", true);
    } else if (type == "TemplateProcessing") {
      ReadTemplateProcessing(proc, src, bos, eos, sep, cls, v);
    }
  }
}

// The chat template: tokenizer_config.json's, else chat_template.jinja, else chat_template.json's.
Result<std::optional<std::string>> ReadChatTemplate(const fs::path& dir, const json& tcfg) {
  if (tcfg.contains("chat_template") && tcfg["chat_template"].is_string()) {
    return std::optional<std::string>(tcfg["chat_template"].get<std::string>());
  }
  if (fs::exists(dir / "chat_template.jinja")) {
    std::ifstream in(dir / "chat_template.jinja", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return std::optional<std::string>(ss.str());
  }
  if (fs::exists(dir / "chat_template.json")) {
    QF_ASSIGN_OR_RETURN(json ct, ReadJsonFile((dir / "chat_template.json").string()));
    if (ct.is_object() && ct.contains("chat_template") && ct["chat_template"].is_string()) {
      return std::optional<std::string>(ct["chat_template"].get<std::string>());
    }
  }
  return std::optional<std::string>();
}

// tokenizer_config.json: the chat template, add_* flags and the ids of the
// named special tokens (through tokenizer.json's added_tokens).
Status ReadTokenizerConfig(const fs::path& dir, const SpecialSources& src, size_t n_vocab, GgufVocab* v) {
  if (!src.have_tcfg) return Status::Ok();
  QF_ASSIGN_OR_RETURN(v->chat_template, ReadChatTemplate(dir, src.tcfg));
  const json added = src.have_tok ? src.tok.value("added_tokens", json::array()) : json::array();
  for (const char* typ : kSpecialTypes) {
    const std::string t(typ);
    auto add = src.tcfg.find("add_" + t + "_token");
    if (add != src.tcfg.end() && add->is_boolean()) Upsert(v->add_flags, t, add->get<bool>());
    auto content = src.ConfigToken((t + "_token").c_str());
    if (!content) continue;
    for (const auto& a : added) {
      if (a.is_object() && a.value("content", "") == *content && a.contains("id")) {
        SetSpecialId(t, a["id"], n_vocab, (dir / "tokenizer.json").string() + " (added_tokens, " + t + "_token)", v);
        break;
      }
    }
  }
  return Status::Ok();
}

// Special ids, add_* flags and chat template, as gguf-py's SpecialVocab reads
// them: tokenizer.json's post-processor, then tokenizer_config.json, then
// config.json for ids still unknown.
Status LoadSpecials(const fs::path& dir, size_t n_vocab, GgufVocab* v) {
  SpecialSources src;
  if (fs::exists(dir / "tokenizer.json")) {
    QF_ASSIGN_OR_RETURN(src.tok, ReadJsonFile((dir / "tokenizer.json").string()));
    src.have_tok = src.tok.is_object();
  }
  if (fs::exists(dir / "tokenizer_config.json")) {
    QF_ASSIGN_OR_RETURN(src.tcfg, ReadJsonFile((dir / "tokenizer_config.json").string()));
    src.have_tcfg = src.tcfg.is_object();
  }
  ReadPostProcessor(src, v);
  QF_RETURN_IF_ERROR(ReadTokenizerConfig(dir, src, n_vocab, v));
  if (fs::exists(dir / "config.json")) {
    QF_ASSIGN_OR_RETURN(json cfg, ReadJsonFile((dir / "config.json").string()));
    if (cfg.is_object()) {
      for (const char* typ : kSpecialTypes) {
        auto it = cfg.find(std::string(typ) + "_token_id");
        if (it != cfg.end()) SetSpecialId(typ, *it, n_vocab, (dir / "config.json").string() + " (" + it.key() + ")", v);
      }
    }
  }
  // Only bos, eos and sep have add_* keys in GGUF.
  std::erase_if(v->add_flags, [](const auto& kv) { return kv.first != "bos" && kv.first != "eos" && kv.first != "sep"; });
  return Status::Ok();
}

Status LoadSentencePiece(const fs::path& dir, const VocabOptions& opts, GgufVocab* v) {
  QF_ASSIGN_OR_RETURN(SpmModel spm, ReadSpmModel((dir / "tokenizer.model").string()));
  size_t n = spm.pieces.size();
  if (opts.config_vocab_size && *opts.config_vocab_size > 0) n = static_cast<size_t>(*opts.config_vocab_size);
  v->model = "llama";
  v->pre = "default";
  v->tokens.resize(n);
  v->scores.assign(n, -10000.0f);
  v->types.assign(n, kTokUnused);
  for (size_t i = 0; i < n; ++i) v->tokens[i] = "[PAD" + std::to_string(i) + "]";
  for (size_t i = 0; i < std::min(n, spm.pieces.size()); ++i) {
    const SpmPiece& p = spm.pieces[i];
    v->tokens[i] = p.text;
    v->scores[i] = p.score;
    switch (p.type) {
      case SpmPiece::kUnknown: v->types[i] = kTokUnknown; break;
      case SpmPiece::kControl: v->types[i] = kTokControl; break;
      case SpmPiece::kUnused: v->types[i] = kTokUnused; break;
      case SpmPiece::kByte: v->types[i] = kTokByte; break;
      default: v->types[i] = kTokNormal; break;  // user-defined pieces count as normal here
    }
  }
  auto overwrite = [&](int64_t id, const std::string& text, bool special) {
    if (id < 0 || static_cast<size_t>(id) >= n) return;
    if (special || LooksSpecial(text)) {
      v->types[id] = kTokControl;
      v->tokens[id] = text;
    } else {
      v->types[id] = kTokUserDefined;
      v->tokens[id] = ReplaceAll(text, "\xE2\x96\x81", " ");
    }
    v->scores[id] = -1000.0f;
  };
  if (fs::exists(dir / "added_tokens.json")) {
    QF_ASSIGN_OR_RETURN(json at, ReadJsonFile((dir / "added_tokens.json").string()));
    if (at.is_object()) {
      for (auto it = at.begin(); it != at.end(); ++it) {
        if (it.value().is_number_integer()) overwrite(it.value().get<int64_t>(), it.key(), false);
      }
    }
  }
  if (fs::exists(dir / "tokenizer_config.json")) {
    QF_ASSIGN_OR_RETURN(json tc, ReadJsonFile((dir / "tokenizer_config.json").string()));
    if (tc.is_object() && tc.contains("added_tokens_decoder") && tc["added_tokens_decoder"].is_object()) {
      for (auto it = tc["added_tokens_decoder"].begin(); it != tc["added_tokens_decoder"].end(); ++it) {
        int64_t id = -1;
        try {
          id = std::stoll(it.key());
        } catch (...) {
          return Status::Error((dir / "tokenizer_config.json").string() + ": added_tokens_decoder: key '" +
                               it.key() + "' is not a token id");
        }
        const json& e = it.value();
        if (!e.is_object() || !e.contains("content") || !e["content"].is_string()) continue;
        overwrite(id, e["content"].get<std::string>(), e.value("special", false));
      }
    }
  }
  return LoadSpecials(dir, n, v);
}

// Recognises the pre-tokenizer of a byte-level BPE tokenizer.json from its
// split regex, since the converter's hash of token ids needs a tokenizer.
std::optional<std::string> DetectPreTokenizer(const json& tok) {
  std::vector<std::string> patterns;
  bool byte_level_regex = false, single_digits = false;
  std::function<void(const json&)> walk = [&](const json& p) {
    if (!p.is_object()) return;
    const std::string type = p.value("type", "");
    if (type == "Sequence" && p.contains("pretokenizers")) {
      for (const auto& q : p["pretokenizers"]) walk(q);
    } else if (type == "Split" && p.contains("pattern") && p["pattern"].is_object()) {
      const json& pat = p["pattern"];
      if (pat.contains("Regex") && pat["Regex"].is_string()) patterns.push_back(pat["Regex"]);
    } else if (type == "ByteLevel") {
      byte_level_regex = p.value("use_regex", true);
    } else if (type == "Digits") {
      single_digits = p.value("individual_digits", false);
    }
  };
  if (tok.contains("pre_tokenizer")) walk(tok["pre_tokenizer"]);
  // An added token's content, to tell apart families that split alike.
  auto has_added = [&](const std::string& content) {
    if (!tok.contains("added_tokens") || !tok["added_tokens"].is_array()) return false;
    for (const auto& a : tok["added_tokens"]) {
      if (a.is_object() && a.value("content", "") == content) return true;
    }
    return false;
  };
  auto any = [&](const std::string& needle) {
    return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return p.find(needle) != std::string::npos; });
  };
  const std::string kContractions = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
  const std::string kCaseWords = "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+";
  if (any("&&[^\\p{Han}]")) return "kimi-k2";
  if (any(kCaseWords + kContractions + "?")) {
    // o200k: GPT-4o's tokenizer, and Llama 4's (its header tokens tell).
    return has_added("<|header_start|>") ? "llama4" : "gpt-4o";
  }
  for (const auto& p : patterns) {
    if (p.find(kContractions) != std::string::npos) {
      if (p.find("\\p{N}{1,3}") != std::string::npos) return "llama-bpe";
      if (p.find("|\\p{N}|") != std::string::npos) return "qwen2";
      if (p.find("|\\p{N}{1}|") != std::string::npos) return "seed-coder";
    }
  }
  // Tekken: case-aware words and '/' kept with trailing newlines.
  if (any("[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*" + kCaseWords) && any("[\\r\\n/]*")) return "tekken";
  // DeepSeek V3/R1: words of letters and marks after at most one non-letter, symbol runs.
  if (any("[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+")) return "deepseek-v3";
  // DeepSeek LLM: words over an explicit list of cased letters (Latin first).
  if (any("\\s?[A-Za-z\xC2\xB5\xC3\x80-")) return "deepseek-llm";
  if (any("\\s?\\p{L}+") && any("\\s?\\p{P}+")) return "deepseek-coder";
  if (patterns.empty() && byte_level_regex) {
    // Digits one by one, then GPT-2's split: StarCoder's tokenizer, and SmolLM's (a chat vocabulary).
    if (single_digits) return has_added("<|im_start|>") ? "smollm" : "starcoder";
    return "gpt-2";
  }
  return std::nullopt;
}

// Whether a sentencepiece-style tokenizer.json puts U+2581 before the text:
// a Prepend normalizer (LLaMA, Mistral), or a Metaspace pre-tokenizer that
// prepends (older files: add_prefix_space; newer: prepend_scheme). Gemma's
// only replaces spaces.
bool PrependsSpace(const json& tok) {
  bool prepends = false;
  std::function<void(const json&)> walk = [&](const json& n) {
    if (!n.is_object()) return;
    const std::string type = n.value("type", "");
    if (type == "Sequence") {
      for (const char* key : {"normalizers", "pretokenizers"}) {
        if (n.contains(key) && n[key].is_array()) {
          for (const auto& c : n[key]) walk(c);
        }
      }
    } else if (type == "Prepend") {
      prepends = prepends || n.value("prepend", "") == "\xE2\x96\x81";
    } else if (type == "Metaspace") {
      const std::string scheme = n.value("prepend_scheme", "");
      prepends = prepends || (scheme.empty() ? n.value("add_prefix_space", true) : scheme != "never");
    }
  };
  if (tok.contains("normalizer")) walk(tok["normalizer"]);
  if (tok.contains("pre_tokenizer")) walk(tok["pre_tokenizer"]);
  return prepends;
}

// model.vocab of a tokenizer.json: id -> token.
Result<std::map<int64_t, std::string>> ReadBpeVocab(const json& model, const std::string& path) {
  std::map<int64_t, std::string> by_id;
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > (int64_t{1} << 30)) {
      return Status::Error(path + ": model.vocab['" + it.key() + "']: expected a token id in [0, 2^30]");
    }
    by_id[it.value().get<int64_t>()] = it.key();
  }
  return by_id;
}

// added_tokens: id -> (content, special).
Result<std::map<int64_t, std::pair<std::string, bool>>> ReadAddedTokens(const json& tok, const std::string& path) {
  std::map<int64_t, std::pair<std::string, bool>> added;
  if (!tok.contains("added_tokens") || !tok["added_tokens"].is_array()) return added;
  for (const auto& a : tok["added_tokens"]) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
        !a["content"].is_string()) {
      return Status::Error(path + ": added_tokens: each entry needs an integer id and a string content");
    }
    const int64_t id = a["id"].get<int64_t>();
    if (id < 0 || id > (int64_t{1} << 30)) return Status::Error(path + ": added_tokens: id out of range");
    added[id] = {a["content"].get<std::string>(), a.value("special", false)};
  }
  return added;
}

// model.merges, as "left right" strings (pair form: spaces become U+0120).
Status ReadMerges(const json& model, const std::string& path, GgufVocab* v) {
  if (!model.contains("merges") || !model["merges"].is_array()) return Status::Ok();
  for (const auto& m : model["merges"]) {
    if (m.is_string()) {
      v->merges.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      v->merges.push_back(ReplaceAll(m[0].get<std::string>(), " ", "\xC4\xA0") + " " +
                          ReplaceAll(m[1].get<std::string>(), " ", "\xC4\xA0"));
    } else {
      return Status::Error(path + ": model.merges: expected strings or [left, right] pairs");
    }
  }
  return Status::Ok();
}

Status LoadBpe(const fs::path& dir, const VocabOptions& opts, GgufVocab* v) {
  const std::string path = (dir / "tokenizer.json").string();
  QF_ASSIGN_OR_RETURN(json tok, ReadJsonFile(path));
  if (!tok.is_object() || !tok.contains("model") || !tok["model"].is_object()) {
    return Status::Error(path + ": model: expected an object");
  }
  const json& model = tok["model"];
  if (model.value("type", "") != "BPE") {
    return Status::Error(path + ": model.type: '" + model.value("type", std::string("?")) +
                         "' is not supported (expected BPE, or a tokenizer.model beside it)");
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    return Status::Error(path + ": model.vocab: expected an object mapping tokens to ids");
  }
  const bool byte_fallback = model.value("byte_fallback", false);
  QF_ASSIGN_OR_RETURN(auto by_id, ReadBpeVocab(model, path));
  QF_ASSIGN_OR_RETURN(auto added, ReadAddedTokens(tok, path));
  int64_t n = 0;
  if (!by_id.empty()) n = by_id.rbegin()->first + 1;
  if (!added.empty()) n = std::max(n, added.rbegin()->first + 1);
  if (opts.config_vocab_size && *opts.config_vocab_size > n) n = *opts.config_vocab_size;
  v->tokens.resize(n);
  v->types.assign(n, kTokNormal);
  for (int64_t i = 0; i < n; ++i) {
    auto a = added.find(i);
    auto b = by_id.find(i);
    if (a != added.end()) {
      v->tokens[i] = a->second.first;
      v->types[i] = (a->second.second || LooksSpecial(a->second.first)) ? kTokControl : kTokUserDefined;
    } else if (b != by_id.end()) {
      v->tokens[i] = b->second;
    } else {
      v->tokens[i] = "[PAD" + std::to_string(i) + "]";
      v->types[i] = kTokUnused;
    }
  }
  if (byte_fallback) {
    // A sentencepiece-style BPE (LLaMA/Mistral/Gemma tokenizer.json without tokenizer.model).
    v->model = "llama";
    v->pre = "default";
    v->add_space_prefix = PrependsSpace(tok);
    static const std::regex kByteToken("<0x[0-9A-Fa-f]{2}>");
    v->scores.assign(n, -1000.0f);
    for (int64_t i = 0; i < n; ++i) {
      if (std::regex_match(v->tokens[i], kByteToken)) v->types[i] = kTokByte;
    }
  } else {
    v->model = "gpt2";
    if (!opts.tokenizer_pre.empty()) {
      v->pre = opts.tokenizer_pre;
    } else if (auto pre = DetectPreTokenizer(tok)) {
      v->pre = *pre;
    } else {
      return Status::Error(path + ": pre_tokenizer: not one qforge recognises; name it with --tokenizer-pre NAME "
                                  "(e.g. llama-bpe, qwen2, gpt-2)");
    }
  }
  QF_RETURN_IF_ERROR(ReadMerges(model, path, v));
  if (!opts.tokenizer_pre.empty()) v->pre = opts.tokenizer_pre;
  return LoadSpecials(dir, static_cast<size_t>(n), v);
}

}  // namespace

bool IsKnownPreTokenizer(const std::string& name) {
  return std::find(std::begin(kKnownPre), std::end(kKnownPre), name) != std::end(kKnownPre);
}

Result<GgufVocab> LoadHfVocab(const std::string& folder, const VocabOptions& opts) {
  if (!opts.tokenizer_pre.empty() && !IsKnownPreTokenizer(opts.tokenizer_pre)) {
    return Status::Error("--tokenizer-pre: '" + opts.tokenizer_pre + "' is not a pre-tokenizer llama.cpp knows");
  }
  const fs::path dir(folder);
  GgufVocab v;
  if (fs::exists(dir / "tokenizer.model")) {
    QF_RETURN_IF_ERROR(LoadSentencePiece(dir, opts, &v));
  } else if (fs::exists(dir / "tokenizer.json")) {
    QF_RETURN_IF_ERROR(LoadBpe(dir, opts, &v));
  } else {
    return Status::Error(folder + ": tokenizer: neither tokenizer.model nor tokenizer.json is present");
  }
  return v;
}

void AddVocabMetadata(const GgufVocab& v, GgufMetadata* md) {
  md->Append("tokenizer.ggml.model", GgufValue::Str(v.model));
  md->Append("tokenizer.ggml.pre", GgufValue::Str(v.pre));
  md->Append("tokenizer.ggml.tokens", GgufValue::StrArray(v.tokens));
  if (!v.scores.empty()) md->Append("tokenizer.ggml.scores", GgufValue::F32Array(v.scores));
  md->Append("tokenizer.ggml.token_type", GgufValue::I32Array(v.types));
  if (!v.merges.empty()) md->Append("tokenizer.ggml.merges", GgufValue::StrArray(v.merges));
  static const std::map<std::string, std::string> kIdKey = {
      {"bos", "bos_token_id"}, {"eos", "eos_token_id"}, {"unk", "unknown_token_id"},
      {"sep", "seperator_token_id"}, {"pad", "padding_token_id"}, {"cls", "cls_token_id"},
      {"mask", "mask_token_id"}};
  for (const auto& [typ, id] : v.special_ids) {
    md->Append("tokenizer.ggml." + kIdKey.at(typ), GgufValue::U32(id));
  }
  for (const auto& [typ, on] : v.add_flags) {
    md->Append("tokenizer.ggml.add_" + typ + "_token", GgufValue::Bool(on));
  }
  if (v.chat_template && !v.chat_template->empty()) {
    md->Append("tokenizer.chat_template", GgufValue::Str(*v.chat_template));
  }
}

}  // namespace qforge
