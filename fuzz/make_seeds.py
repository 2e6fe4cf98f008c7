#!/usr/bin/env python3
"""Writes the harnesses' seed corpora (fuzz/corpus/<harness>/) from a tiny
generated LLaMA folder and what qforge makes of it. Run from the repository
root after a build: fuzz/make_seeds.py build/qforge. Only the standard
library is used; the seeds are committed, so CI never runs this."""
import json, os, shutil, struct, subprocess, sys, tempfile

QFORGE = sys.argv[1] if len(sys.argv) > 1 else "build/qforge"
ROOT = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(ROOT, "corpus")
HOUSE = os.path.join(ROOT, "..", "models", "house-14m")
MARK = b"\n#qforge-part#\n"
# Text for the tokenizers to encode: spaces and newlines, digits, an added
# token, bytes that are not UTF-8, several scripts.
TEXT = ("Once upon a time,  there was\n\n\ta house. 12345 <|endoftext|> <s></s> "
        "caf\u00e9 \u4f60\u597d \u0645\u0631\u062d\u0628\u0627 \U0001F600\u200d ").encode() + b"\xff\xfe\xc3"

def safetensors(tensors):
    """tensors: list of (name, dtype, shape, bytes)."""
    header, off, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)

def f32(n, seed):
    x, out = seed, []
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append((x / 0x7FFFFFFF - 0.5) * 0.2)
    return struct.pack("<%df" % n, *out)

def tiny_model(d):
    E, F, V, H, KV, L = 32, 64, 8, 2, 1, 1
    D = E // H
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": E, "intermediate_size": F,
           "num_attention_heads": H, "num_key_value_heads": KV, "num_hidden_layers": L, "vocab_size": V,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 64, "tie_word_embeddings": False,
           "bos_token_id": None, "eos_token_id": 5}
    t = [("model.embed_tokens.weight", "F32", [V, E], f32(V * E, 1)), ("lm_head.weight", "F32", [V, E], f32(V * E, 2)),
         ("model.norm.weight", "F32", [E], f32(E, 3))]
    p = "model.layers.0."
    t += [(p + "input_layernorm.weight", "F32", [E], f32(E, 4)), (p + "post_attention_layernorm.weight", "F32", [E], f32(E, 5)),
          (p + "self_attn.q_proj.weight", "F32", [H * D, E], f32(H * D * E, 6)),
          (p + "self_attn.k_proj.weight", "F32", [KV * D, E], f32(KV * D * E, 7)),
          (p + "self_attn.v_proj.weight", "F32", [KV * D, E], f32(KV * D * E, 8)),
          (p + "self_attn.o_proj.weight", "F32", [E, H * D], f32(E * H * D, 9)),
          (p + "mlp.gate_proj.weight", "F32", [F, E], f32(F * E, 10)), (p + "mlp.up_proj.weight", "F32", [F, E], f32(F * E, 11)),
          (p + "mlp.down_proj.weight", "F32", [E, F], f32(E * F, 12))]
    regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
    tok = {"version": "1.0",
           "added_tokens": [{"id": 5, "content": "<|endoftext|>", "special": True, "normalized": False}],
           "normalizer": None,
           "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
               {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated"},
               {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]},
           "post_processor": None, "decoder": {"type": "ByteLevel"},
           "model": {"type": "BPE", "byte_fallback": False,
                     "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3, "\u0120ab": 4},
                     "merges": [["a", "b"], ["\u0120", "ab"]]}}
    os.makedirs(d)
    open(os.path.join(d, "config.json"), "w").write(json.dumps(cfg))
    open(os.path.join(d, "tokenizer.json"), "w").write(json.dumps(tok))
    open(os.path.join(d, "tokenizer_config.json"), "w").write(json.dumps({"eos_token": "<|endoftext|>"}))
    open(os.path.join(d, "model.safetensors"), "wb").write(safetensors(t))

def put(harness, name, data):
    os.makedirs(os.path.join(CORPUS, harness), exist_ok=True)
    open(os.path.join(CORPUS, harness, name), "wb").write(data)

def run(*args):
    subprocess.run([QFORGE, *args, "-q"], check=True)

def main():
    tmp = tempfile.mkdtemp()
    try:
        m = os.path.join(tmp, "m")
        tiny_model(m)
        rd = lambda *p: open(os.path.join(*p), "rb").read()
        for typ in ["F32", "Q8_0", "Q4_0"]:
            out = os.path.join(tmp, typ + ".gguf")
            run("quantize", m, "-f", typ, "-o", out)
            put("gguf_model", typ.lower(), rd(out))
        st = rd(m, "model.safetensors")
        index = json.dumps({"metadata": {"total_size": 0}, "weight_map": {"model.norm.weight": "a.safetensors"}}).encode()
        put("safetensors", "tiny", st + MARK + index)
        put("hf_tokenizer", "bpe", rd(m, "tokenizer.json") + MARK + rd(m, "tokenizer_config.json") + MARK + rd(m, "config.json"))
        put("hf_tokenizer", "house", rd(HOUSE, "tokenizer.json") + MARK + rd(HOUSE, "tokenizer_config.json") + MARK +
            rd(HOUSE, "config.json") + MARK + TEXT)
        put("spm_model", "house", rd(HOUSE, "tokenizer.model"))
        put("spm_model", "house_text", rd(HOUSE, "tokenizer.model") + MARK + TEXT)
        text = os.path.join(tmp, "t.txt")
        open(text, "w").write("ab ab a b ab " * 200)
        imx = os.path.join(tmp, "i.gguf")
        run("imatrix", m, "--text", text, "--ctx", "16", "--chunks", "2", "-o", imx)
        put("imatrix", "gguf", rd(imx))
        # The legacy .dat layout: entries (name, ncall, values), chunk count, dataset name.
        vals = struct.pack("<4f", 1.0, 2.0, 0.5, 0.25)
        name = b"blk.0.attn_q.weight"
        dat = struct.pack("<i", 1) + struct.pack("<i", len(name)) + name + struct.pack("<ii", 1, 4) + vals
        put("imatrix", "dat", dat + struct.pack("<ii", 2, 5) + b"t.txt")
        for layout in ["compressed-tensors", "gptq", "awq"]:
            out = os.path.join(tmp, layout)
            scheme = "W4A16_ASYM" if layout == "awq" else "W4A16"
            run("quantize", m, "--scheme", scheme, "--method", "rtn", "--layout", layout, "--group-size", "32", "-o", out)
            put("checkpoint", layout, rd(out, "config.json") + MARK + rd(out, "model.safetensors") + MARK + rd(m, "tokenizer.json"))
    finally:
        shutil.rmtree(tmp)

main()
