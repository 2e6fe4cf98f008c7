#include "tokenizer/spm_tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <queue>

#include "tokenizer/gguf_vocab.h"

namespace qforge {
namespace {

const std::string kSpace = "\xE2\x96\x81";  // U+2581

size_t Utf8Len(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c >> 5) == 6) return 2;
  if ((c >> 4) == 14) return 3;
  if ((c >> 3) == 30) return 4;
  return 1;  // invalid lead byte: a symbol of its own
}

struct Symbol {
  int prev, next;
  const char* text;
  size_t n;
};

struct Bigram {
  int left, right;
  float score;
  size_t size;
  bool operator<(const Bigram& o) const {  // max-heap: higher score, then leftmost
    return score < o.score || (score == o.score && left > o.left);
  }
};

}  // namespace

Result<SpmTokenizer> SpmTokenizer::FromMetadata(const GgufMetadata& md, const std::string& source) {
  const GgufValue* model = md.Find("tokenizer.ggml.model");
  if (model == nullptr || model->type() != GgufType::STRING) {
    return Status::Error(source + ": metadata 'tokenizer.ggml.model': missing (the model has no tokenizer)");
  }
  if (model->AsString() != "llama") {
    return Status::Error(source + ": metadata 'tokenizer.ggml.model': '" + model->AsString() +
                         "' tokenizers are not supported yet (expected 'llama')");
  }
  const GgufValue* toks = md.Find("tokenizer.ggml.tokens");
  const GgufValue* scores = md.Find("tokenizer.ggml.scores");
  const GgufValue* types = md.Find("tokenizer.ggml.token_type");
  if (!toks || !toks->is_array() || toks->elem_type() != GgufType::STRING || toks->count() == 0) {
    return Status::Error(source + ": metadata 'tokenizer.ggml.tokens': expected a non-empty array of strings");
  }
  const uint64_t n = toks->count();
  if (!scores || !scores->is_array() || scores->count() < n) {
    return Status::Error(source + ": metadata 'tokenizer.ggml.scores': expected at least one score per token");
  }
  SpmTokenizer t;
  t.tokens_ = toks->strings();
  t.scores_.resize(n);
  t.types_.assign(n, kTokNormal);
  for (uint64_t i = 0; i < n; ++i) t.scores_[i] = static_cast<float>(scores->ArrayF64(i));
  if (types && types->is_array() && types->count() >= n) {
    for (uint64_t i = 0; i < n; ++i) t.types_[i] = static_cast<int32_t>(types->ArrayI64(i));
  }
  for (uint64_t i = 0; i < n; ++i) {
    t.ids_.emplace(t.tokens_[i], static_cast<int32_t>(i));
    if (t.types_[i] == kTokUserDefined) t.user_defined_.push_back(static_cast<int32_t>(i));
    if (t.types_[i] == kTokControl && !t.tokens_[i].empty()) t.control_.push_back(static_cast<int32_t>(i));
  }
  t.SetParseSpecial(false);
  auto id_key = [&](const char* key, int32_t def) {
    const GgufValue* v = md.Find(key);
    if (v == nullptr || !v->is_integer()) return def;
    const int64_t id = v->AsI64();
    return id >= 0 && static_cast<uint64_t>(id) < n ? static_cast<int32_t>(id) : def;
  };
  t.bos_ = id_key("tokenizer.ggml.bos_token_id", 1);
  t.eos_ = id_key("tokenizer.ggml.eos_token_id", 2);
  t.unk_ = id_key("tokenizer.ggml.unknown_token_id", 0);
  if (const GgufValue* v = md.Find("tokenizer.ggml.add_bos_token")) t.add_bos_ = v->AsBool();
  if (const GgufValue* v = md.Find("tokenizer.ggml.add_space_prefix")) t.add_space_prefix_ = v->AsBool();
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto it = t.ids_.find(name);
    t.byte_ids_[b] = it == t.ids_.end() ? t.unk_ : it->second;
  }
  return t;
}

std::string SpmTokenizer::TokenText(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size()) return "";
  return tokens_[static_cast<size_t>(id)];
}

std::string SpmTokenizer::TokenPiece(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size()) return "";
  const int32_t type = types_[static_cast<size_t>(id)];
  const std::string& t = tokens_[static_cast<size_t>(id)];
  if (type == kTokControl) return "";
  if (type == kTokByte) {
    if (auto b = ByteTokenValue(t)) return std::string(1, *b);  // other text typed BYTE reads as text
  }
  std::string out;
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += t[i++];
    }
  }
  return out;
}

void SpmTokenizer::SetParseSpecial(bool on) {
  verbatim_ = user_defined_;
  if (on) verbatim_.insert(verbatim_.end(), control_.begin(), control_.end());
  std::stable_sort(verbatim_.begin(), verbatim_.end(),
                   [&](int32_t a, int32_t b) { return tokens_[a].size() > tokens_[b].size(); });
}

std::vector<int32_t> SpmTokenizer::Encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos && add_bos_) out.push_back(bos_);
  // User-defined tokens are matched verbatim; the text between them is
  // tokenized normally, the first piece with the space prefix.
  SplitOnTokens(
      text, tokens_, verbatim_,
      [&](std::string_view piece, bool first) {
        std::string s = first && add_space_prefix_ ? kSpace : "";
        for (char c : piece) {
          if (c == ' ') s += kSpace;
          else s += c;
        }
        EncodeFragment(s, &out);
      },
      [&](int32_t id) { out.push_back(id); });
  return out;
}

void SpmTokenizer::EncodeFragment(std::string_view text, std::vector<int32_t>* out) const {
  std::vector<Symbol> symbols;
  for (size_t off = 0; off < text.size();) {
    const size_t len = std::min(Utf8Len(static_cast<unsigned char>(text[off])), text.size() - off);
    const int idx = static_cast<int>(symbols.size());
    symbols.push_back({idx - 1, off + len == text.size() ? -1 : idx + 1, text.data() + off, len});
    off += len;
  }
  std::priority_queue<Bigram> queue;
  std::unordered_map<std::string, std::pair<int, int>> rev_merge;
  auto try_add = [&](int left, int right) {
    if (left == -1 || right == -1) return;
    const std::string joined(symbols[left].text, symbols[left].n + symbols[right].n);
    auto it = ids_.find(joined);
    if (it == ids_.end()) return;
    queue.push({left, right, scores_[static_cast<size_t>(it->second)], joined.size()});
    rev_merge[joined] = {left, right};
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = symbols[b.left];
    Symbol& r = symbols[b.right];
    // Stale entries: one side already merged away or grown since.
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  // Resegment: known pieces become tokens; unknown ones split back along
  // their merges or fall back to bytes.
  std::function<void(std::string_view)> emit = [&](std::string_view piece) {
    auto it = ids_.find(std::string(piece));
    if (it != ids_.end()) {
      out->push_back(it->second);
      return;
    }
    auto m = rev_merge.find(std::string(piece));
    if (m != rev_merge.end()) {
      const Symbol& a = symbols[m->second.first];
      const size_t left_len = static_cast<size_t>(symbols[m->second.second].text - a.text);
      emit(piece.substr(0, left_len));
      emit(piece.substr(left_len));
      return;
    }
    for (unsigned char c : piece) out->push_back(byte_ids_[c]);
  };
  for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    emit(std::string_view(symbols[i].text, symbols[i].n));
  }
}

}  // namespace qforge
