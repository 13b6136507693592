"""llama.cpp (GGUF) against ONNX Runtime GenAI (INT4 converted from the same GGUF), side by side.

1. Converts the bundled SmolLM2-135M Q4_1 GGUF to ONNX INT4 and to ONNX FP32 (the reference:
   the GGUF dequantized, nothing quantized again) with `slmplan convert` (cached in --work).
2. Benchmarks both runtimes with `slmplan bench` (pp512, tg128, TTFT, peak RSS, load time),
   alternated ABBA over --rounds, and prints medians and the ONNX/llama.cpp ratio.
3. Quality: greedy generation of 32 tokens for a few prompts in llama.cpp (GGUF Q4_1), ONNX INT4
   (quantized twice) and ONNX FP32; reports, against FP32, the share of prompts whose 32 tokens are
   identical and the mean position of the first differing token.

    python benchmarks/onnx_vs_llamacpp.py [--rounds 2] [--work ~/.cache/slmplan/onnx-compare] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from slmplan.localdevice import cache_dir  # noqa: E402
from slmplan.testmodels import smollm2_path  # noqa: E402

PROMPTS = ["What is the capital of France?", "Write a haiku about autumn leaves.",
           "Explain in one sentence what a CPU does.", "List three fruits that are red.",
           "How many legs does a spider have?", "Give me a tip for sleeping better."]
N_GEN = 32


def slm(*args) -> str:
    r = subprocess.run([sys.executable, "-m", "slmplan.cli.main", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"slmplan {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def ensure_onnx(gguf: Path, work: Path, precision: str) -> Path:
    out = work / f"{gguf.stem}-onnx-{precision}"
    if not (out / "genai_config.json").exists():
        print(f"converting {gguf.name} -> ONNX {precision} ...", flush=True)
        slm("convert", str(gguf), "--to", "onnx", "--precision", precision, "-o", str(out), "--force")
    return out


def bench(model: str, runtime: str, threads: int, reps: int) -> dict:
    d = json.loads(slm("bench", model, "--runtime", runtime, "--threads", str(threads), "--reps", str(reps),
                       "--format", "json"))
    r = {x["test"]: x["tokens_per_s_mean"] for x in d["results"]}
    return {"pp512": r.get("pp512"), "tg128": r.get("tg128"), "ttft_s": d["ttft"]["ttft_s_median"] if d["ttft"] else None,
            "peak_rss_mib": d["memory"]["peak_rss_bytes"] / 2**20, "load_s": d["load_s"],
            "model_size_mib": (d["model_size_bytes"] or 0) / 2**20}


GREEDY_LLAMA = r"""
import json, sys, llama_cpp
m = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=512, n_threads=2, verbose=False, seed=0)
out = []
for p in json.loads(sys.argv[2]):
    r = m.create_chat_completion([{"role": "user", "content": p}], max_tokens=int(sys.argv[3]), temperature=0.0, top_k=1)
    out.append(r["choices"][0]["message"]["content"])
print(json.dumps(out))
"""

GREEDY_ONNX = r"""
import json, sys, onnxruntime_genai as og
m = og.Model(sys.argv[1]); tok = og.Tokenizer(m)
out = []
for p in json.loads(sys.argv[2]):
    s = tok.apply_chat_template(json.dumps([{"role": "user", "content": p}]), add_generation_prompt=True)
    ids = tok.encode(s)
    gp = og.GeneratorParams(m); gp.set_search_options(max_length=len(ids) + int(sys.argv[3]), do_sample=False)
    g = og.Generator(m, gp); g.append_tokens(ids)
    gen = []
    while not g.is_done() and len(gen) < int(sys.argv[3]):
        g.generate_next_token(); gen.append(int(g.get_next_tokens()[0]))
    out.append(tok.decode(gen))
print(json.dumps(out))
"""


def greedy(script: str, model: Path) -> list[str]:
    r = subprocess.run([sys.executable, "-c", script, str(model), json.dumps(PROMPTS), str(N_GEN)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def agreement(a: list[str], ref: list[str]) -> dict:
    """Word-level: identical answers, and the mean index of the first differing word."""
    same, first = 0, []
    for x, y in zip(a, ref):
        wx, wy = x.split(), y.split()
        i = next((k for k, (p, q) in enumerate(zip(wx, wy)) if p != q), min(len(wx), len(wy)))
        if wx == wy:
            same += 1
        first.append(i)
    return {"identical_answers": f"{same}/{len(ref)}", "mean_first_difference_word": round(statistics.fmean(first), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--work", default=str(cache_dir() / "onnx-compare"))
    ap.add_argument("--json")
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    gguf = smollm2_path()
    int4 = ensure_onnx(gguf, work, "int4")
    fp32 = ensure_onnx(gguf, work, "fp32")
    runs = {"llama.cpp": [], "onnx": []}
    for i in range(a.rounds):
        order = [("llama.cpp", str(gguf)), ("onnx", str(int4))]
        for rt, model in (order if i % 2 == 0 else order[::-1]):
            runs[rt].append(bench(model, rt, a.threads, a.reps))
            print(f"round {i + 1}/{a.rounds} {rt}: {runs[rt][-1]}", flush=True)
    med = {rt: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for rt, rs in runs.items()}
    print(f"\n{'':<22}{'llama.cpp Q4_1':>16}{'ONNX INT4':>12}{'ONNX/llama.cpp':>16}")
    for k in ("pp512", "tg128", "ttft_s", "peak_rss_mib", "load_s", "model_size_mib"):
        x, y = med["llama.cpp"][k], med["onnx"][k]
        print(f"{k:<22}{x:>16.3f}{y:>12.3f}{(y / x if x else float('nan')):>16.3f}")
    print("\nquality: greedy 32 tokens on", len(PROMPTS), "prompts, against the ONNX FP32 conversion")
    ref = greedy(GREEDY_ONNX, fp32)
    q = {"onnx_int4": agreement(greedy(GREEDY_ONNX, int4), ref), "llama_cpp_q4_1": agreement(greedy(GREEDY_LLAMA, gguf), ref)}
    for k, v in q.items():
        print(f"  {k:<16} {v}")
    if a.json:
        Path(a.json).write_text(json.dumps({"runs": runs, "medians": med, "quality": q, "threads": a.threads}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
