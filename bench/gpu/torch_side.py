"""The PyTorch side of the GPU benchmark (comparison f), run on the GPU server where transformers is installed.

  python torch_side.py make-models --out DIR        base (28 layers) and InRa (29 layers, realign marker) checkpoints
                                                    of the r1-distill-qwen-1.5b shape, float16, seeded random weights,
                                                    plus hf-logits.json: float32 transformers logits for a check
  python torch_side.py bench --models DIR --out F   eager dual-branch decode (aligned and reference models, one forward
                                                    each per step, logits blended), device bandwidth

Every section writes what it measured even when a later one fails.
"""
import argparse
import copy
import json
import os
import sys
import time
import traceback

import torch
import transformers
from transformers import Qwen2Config, Qwen2ForCausalLM

SHAPE = dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
             num_key_value_heads=2, max_position_embeddings=131072, rope_theta=10000.0, rms_norm_eps=1e-6,
             tie_word_embeddings=False, hidden_act="silu")
CHECK_IDS = [(i * 7919 + 17) % 150000 for i in range(32)]
CHECK_LAMBDAS = [0.0, 0.5, 1.0]


def log(msg):
    print(f"[torch-side {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def make_models(out):
    torch.manual_seed(1234)
    base_dir, inra_dir = os.path.join(out, "base"), os.path.join(out, "inra")
    cfg = Qwen2Config(**SHAPE)
    with torch.device("cuda"):
        base = Qwen2ForCausalLM(cfg)
    base = base.to(torch.float16).eval()
    base.save_pretrained(base_dir, safe_serialization=True)
    log("base saved")
    icfg = Qwen2Config(**{**SHAPE, "num_hidden_layers": SHAPE["num_hidden_layers"] + 1})
    icfg.realign_inra = {"adapter_layers": 1, "base_layers": SHAPE["num_hidden_layers"]}
    with torch.device("cuda"):
        inra = Qwen2ForCausalLM(icfg).to(torch.float16).eval()
    with torch.no_grad():
        inra.model.embed_tokens.weight.copy_(base.model.embed_tokens.weight)
        inra.model.norm.weight.copy_(base.model.norm.weight)
        inra.lm_head.weight.copy_(base.lm_head.weight)
        for i, layer in enumerate(base.model.layers):
            inra.model.layers[i + 1].load_state_dict(layer.state_dict())
        adapter = copy.deepcopy(base.model.layers[0])
        # identity expansion (o_proj and down_proj zero), then a perturbation standing in for training
        adapter.self_attn.o_proj.weight.zero_()
        adapter.mlp.down_proj.weight.zero_()
        for p in adapter.parameters():
            p.add_(torch.randn_like(p) * 0.02)
        inra.model.layers[0].load_state_dict(adapter.state_dict())
    inra.save_pretrained(inra_dir, safe_serialization=True)
    log("inra saved")
    # reference logits in float32 for the check of the float16 ONNX graphs
    ids = torch.tensor([CHECK_IDS], device="cuda")
    with torch.inference_mode():
        za = inra.float()(input_ids=ids).logits[0, -1].double()
        zr = base.float()(input_ids=ids).logits[0, -1].double()
    rows = [(l * za + (1 - l) * zr).float().tolist() for l in CHECK_LAMBDAS]
    with open(os.path.join(out, "hf-logits.json"), "w") as f:
        json.dump({"input_ids": CHECK_IDS, "lambdas": CHECK_LAMBDAS, "last_logits": rows}, f)
    log("hf-logits.json written")


def cuda_ms(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    r = fn()
    torch.cuda.synchronize()
    return r, (time.perf_counter() - t0) * 1000


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def bench(models, out_file):
    res = {"torch": torch.__version__, "transformers": transformers.__version__, "gpu": torch.cuda.get_device_name(0)}
    save = lambda: json.dump(res, open(out_file, "w"), indent=2)
    try:
        x = torch.empty(2 ** 31, dtype=torch.uint8, device="cuda")
        y = torch.empty_like(x)
        times = [cuda_ms(lambda: y.copy_(x))[1] for _ in range(10)]
        res["bandwidth_GBps"] = 2 * x.numel() / (median(times[2:]) / 1000) / 1e9
        del x, y
        torch.cuda.empty_cache()
        log(f"bandwidth {res['bandwidth_GBps']:.0f} GB/s")
    except Exception:
        res["bandwidth_error"] = traceback.format_exc()
    save()
    def load(d):
        try:
            m = Qwen2ForCausalLM.from_pretrained(os.path.join(models, d), dtype=torch.float16)
        except TypeError:
            m = Qwen2ForCausalLM.from_pretrained(os.path.join(models, d), torch_dtype=torch.float16)
        return m.cuda().eval()
    aligned, reference = load("inra"), load("base")
    res["attn_implementation"] = getattr(aligned.config, "_attn_implementation", None)
    lam = 0.5
    rows = []
    res["decode"] = rows
    for B in (1, 8, 32):
        try:
            g = torch.Generator(device="cpu").manual_seed(B)
            prompt = torch.randint(0, 150000, (B, 128), generator=g).cuda()
            with torch.inference_mode():
                (oa, ob), pre_ms = cuda_ms(lambda: (aligned(input_ids=prompt, use_cache=True), reference(input_ids=prompt, use_cache=True)))
                ca, cr = oa.past_key_values, ob.past_key_values
                tok = (lam * oa.logits[:, -1].float() + (1 - lam) * ob.logits[:, -1].float()).argmax(-1, keepdim=True)
                steps = []
                for _ in range(12):
                    def step():
                        a = aligned(input_ids=tok, past_key_values=ca, use_cache=True)
                        r = reference(input_ids=tok, past_key_values=cr, use_cache=True)
                        return (lam * a.logits[:, -1].float() + (1 - lam) * r.logits[:, -1].float()).argmax(-1, keepdim=True)
                    tok, ms = cuda_ms(step)
                    steps.append(ms)
            rows.append({"batch": B, "prefill_ms": pre_ms, "prefill_tokens_per_s": B * 128 * 1000 / pre_ms, "step_ms": median(steps[2:])})
            log(f"batch {B}: {rows[-1]}")
        except Exception:
            rows.append({"batch": B, "error": traceback.format_exc()})
        save()
    res["weights_bytes"] = {"aligned": sum(p.numel() * p.element_size() for p in aligned.parameters()),
                            "reference": sum(p.numel() * p.element_size() for p in reference.parameters())}
    save()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["make-models", "bench"])
    ap.add_argument("--out")
    ap.add_argument("--models")
    a = ap.parse_args()
    if a.cmd == "make-models":
        make_models(a.out)
    else:
        bench(a.models, a.out)
