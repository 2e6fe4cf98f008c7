#include "model/shape_check.h"

#include <map>

#include "arch/arch_spec.h"

namespace qforge {
namespace {

std::string ShapeText(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// The expected ggml shape (ne[0] innermost) of each rule, and what it is made of.
struct Expected {
  std::vector<int64_t> ne;
  std::string why;
};

// The mixture-of-experts tensors: NE experts of width Fe, a shared expert of
// width Fs (Qwen2-MoE); empty when the model has no experts.
std::map<std::string, Expected> ExpertRules(int64_t E, int64_t NE, int64_t Fe, int64_t Fs) {
  if (NE <= 0) return {};
  const std::string e = "embedding_length " + std::to_string(E), ne = "expert_count " + std::to_string(NE);
  const std::string fe = "expert feed_forward_length " + std::to_string(Fe);
  const std::string fs = "expert_shared_feed_forward_length " + std::to_string(Fs);
  std::map<std::string, Expected> r = {
      {"ffn_gate_inp.weight", {{E, NE}, e + " x " + ne}},
      {"ffn_gate_exps.weight", {{E, Fe, NE}, e + " x " + fe + " x " + ne}},
      {"ffn_up_exps.weight", {{E, Fe, NE}, e + " x " + fe + " x " + ne}},
      {"ffn_down_exps.weight", {{Fe, E, NE}, fe + " x " + e + " x " + ne}},
      {"ffn_gate_inp_shexp.weight", {{E}, e}},
  };
  if (Fs > 0) {
    r["ffn_gate_shexp.weight"] = {{E, Fs}, e + " x " + fs};
    r["ffn_up_shexp.weight"] = {{E, Fs}, e + " x " + fs};
    r["ffn_down_shexp.weight"] = {{Fs, E}, fs + " x " + e};
  }
  return r;
}

std::map<std::string, Expected> LayerRules(int64_t E, int64_t F, int64_t H, int64_t HKV, int64_t Dk, int64_t Dv) {
  const std::string e = "embedding_length " + std::to_string(E);
  return {
      {"attn_norm.weight", {{E}, e}},
      {"ffn_norm.weight", {{E}, e}},
      {"attn_q.weight", {{E, H * Dk}, e + " x head_count*key_length " + std::to_string(H * Dk)}},
      {"attn_k.weight", {{E, HKV * Dk}, e + " x head_count_kv*key_length " + std::to_string(HKV * Dk)}},
      {"attn_v.weight", {{E, HKV * Dv}, e + " x head_count_kv*value_length " + std::to_string(HKV * Dv)}},
      {"attn_output.weight", {{H * Dv, E}, "head_count*value_length " + std::to_string(H * Dv) + " x " + e}},
      {"attn_q.bias", {{H * Dk}, "head_count*key_length"}},
      {"attn_k.bias", {{HKV * Dk}, "head_count_kv*key_length"}},
      {"attn_v.bias", {{HKV * Dv}, "head_count_kv*value_length"}},
      {"attn_q_norm.weight", {{Dk}, "key_length"}},
      {"attn_k_norm.weight", {{Dk}, "key_length"}},
      {"ffn_gate.weight", {{E, F}, e + " x feed_forward_length " + std::to_string(F)}},
      {"ffn_up.weight", {{E, F}, e + " x feed_forward_length " + std::to_string(F)}},
      {"ffn_down.weight", {{F, E}, "feed_forward_length " + std::to_string(F) + " x " + e}},
      {"post_attention_norm.weight", {{E}, e}},
      {"post_ffw_norm.weight", {{E}, e}},
      {"attn_qkv.weight", {{E, (H + 2 * HKV) * Dk}, e + " x (head_count + 2*head_count_kv)*key_length " +
                                                       std::to_string((H + 2 * HKV) * Dk)}},
      {"attn_qkv.bias", {{(H + 2 * HKV) * Dk}, "(head_count + 2*head_count_kv)*key_length"}},
  };
}

// "blk.N.rest" -> rest when N < n_layer; else empty.
std::string LayerPart(const std::string& name, int64_t n_layer) {
  const int l = BlockOf(name);
  if (l < 0 || l >= n_layer) return {};
  return name.substr(name.find('.', 4) + 1);
}

// ne with trailing 1s dropped (GGUF may store [E, 1] for a vector).
std::vector<int64_t> Trimmed(std::vector<int64_t> ne) {
  while (ne.size() > 1 && ne.back() == 1) ne.pop_back();
  return ne;
}

}  // namespace

Status CheckTensorShapes(const Model& m) {
  if (ArchOfGguf(m.architecture) == nullptr) return Status::Ok();
  const int64_t E = m.ArchInt("embedding_length", 0), F = m.ArchInt("feed_forward_length", 0);
  const int64_t H = m.ArchInt("attention.head_count", 0), HKV = m.ArchInt("attention.head_count_kv", H);
  const int64_t n_layer = m.ArchInt("block_count", 0);
  if (E <= 0 || H <= 0 || HKV <= 0 || n_layer <= 0) return Status::Ok();  // the engine names missing keys
  const int64_t Dk = m.ArchInt("attention.key_length", E / H), Dv = m.ArchInt("attention.value_length", Dk);
  auto rules = LayerRules(E, F, H, HKV, Dk, Dv);
  const int64_t NE = m.ArchInt("expert_count", 0);
  if (NE < 0 || NE > 4096) {
    return Status::Error(m.path + ": metadata '" + m.architecture + ".expert_count': " + std::to_string(NE) +
                         " (expected 0..4096)");
  }
  const int64_t Fe = m.ArchInt("expert_feed_forward_length", F);
  const int64_t Fs = m.ArchInt("expert_shared_feed_forward_length", 0);
  for (auto& [k, v] : ExpertRules(E, NE, Fe, Fs)) rules[k] = v;
  int64_t stacked_layers = 0;  // layers with a full set of experts
  int64_t n_vocab = 0;
  if (const GgufValue* t = m.metadata.Find("tokenizer.ggml.tokens"); t && t->is_array()) n_vocab = static_cast<int64_t>(t->count());
  for (const ModelTensor& t : m.tensors) {
    Expected want;
    if (t.name == "token_embd.weight" || t.name == "output.weight") {
      want = {{E, n_vocab > 0 ? n_vocab : (t.ne.size() > 1 ? t.ne[1] : 0)},
              "embedding_length " + std::to_string(E) + " x the tokenizer's " + std::to_string(n_vocab) + " tokens"};
    } else if (t.name == "output_norm.weight") {
      want = {{E}, "embedding_length " + std::to_string(E)};
    } else if (t.name == "rope_freqs.weight" || t.name == "rope_factors_long.weight" ||
               t.name == "rope_factors_short.weight") {
      const int64_t n_rot = m.ArchInt("rope.dimension_count", Dk);
      want = {{n_rot / 2}, "rope.dimension_count/2: one factor per rotated pair"};
    } else if (std::string part = LayerPart(t.name, n_layer); !part.empty() && rules.count(part)) {
      want = rules.at(part);
      // Phi-3's fused gate and up projections: one ffn_up of 2 x n_ff rows.
      if (part == "ffn_up.weight" && m.Find(t.name.substr(0, t.name.size() - part.size()) + "ffn_gate.weight") == nullptr) {
        want = {{E, 2 * F}, "embedding_length " + std::to_string(E) + " x 2*feed_forward_length " +
                                std::to_string(2 * F) + " (gate and up fused)"};
      }
      if (part.rfind("ffn_", 0) == 0 && part != "ffn_norm.weight" && F <= 0) continue;
    } else {
      continue;
    }
    if (t.name.find("ffn_up_exps.weight") != std::string::npos) ++stacked_layers;
    if (Trimmed(t.ne) != Trimmed(want.ne)) {
      return Status::Error(m.path + ": tensor '" + t.source_name + "': shape " + ShapeText(t.ne) + " (ggml order), expected " +
                           ShapeText(want.ne) + " (" + want.why + ")");
    }
  }
  // Stacked experts without expert_count (or the reverse) would route
  // through a router the metadata does not describe.
  if ((stacked_layers > 0) != (NE > 0)) {
    return Status::Error(m.path + ": metadata '" + m.architecture + ".expert_count': " + std::to_string(NE) + " but " +
                         std::to_string(stacked_layers) + " layers hold stacked experts (ffn_up_exps)");
  }
  return Status::Ok();
}

}  // namespace qforge
