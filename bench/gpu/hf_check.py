"""The transformers side of the one-shot GPU check (bench/gpu/gpu-check.sh).

  python3 hf_check.py --dir D --out F

Loads the checkpoints realign wrote (D/inra: the InRa model, read by transformers as a plain Qwen2 of all its
layers = the aligned branch; D/base: the reference branch) in float32 and writes F: the last position's logits of
fixed ids for λ = 0, 0.5, 1, blended as λ·aligned + (1 − λ)·reference in float64 — the same ids and λ as
gpu-check.ts (ref-logits, logits). Runs on CUDA when torch sees a GPU, else on the CPU.
"""
import argparse
import json
import os
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM

LAMBDAS = [0.0, 0.5, 1.0]


def log(msg):
    print(f"[hf-check {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load(path, device):
    try:
        m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except TypeError:  # transformers 4 names it torch_dtype
        m = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
    return m.to(device).eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with open(os.path.join(a.dir, "inra", "config.json")) as f:
        vocab = json.load(f)["vocab_size"]
    ids = [(i * 7919 + 17) % min(vocab, 150000) for i in range(32)]
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, {device}")
    x = torch.tensor([ids], device=device)
    logits = {}
    for side in ("inra", "base"):
        t0 = time.time()
        m = load(os.path.join(a.dir, side), device)
        with torch.inference_mode():
            logits[side] = m(input_ids=x).logits[0, -1].double().cpu()
        log(f"{side}: {m.config.num_hidden_layers} layers, {time.time() - t0:.1f} s")
        del m
        if device == "cuda":
            torch.cuda.empty_cache()
    za, zr = logits["inra"], logits["base"]
    rows = [(l * za + (1 - l) * zr).tolist() for l in LAMBDAS]
    source = f"transformers {transformers.__version__} float32 on {torch.cuda.get_device_name(0) if device == 'cuda' else 'cpu'}"
    with open(a.out, "w") as f:
        json.dump({"source": source, "input_ids": ids, "lambdas": LAMBDAS, "last_logits": rows}, f)
    log(f"wrote {a.out}")


if __name__ == "__main__":
    main()
