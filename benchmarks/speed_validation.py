"""Held-out accuracy of the speed model on everything in slmplan/data/calibration.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/speed_validation.py
    PYTHONPATH=$PWD .venv/bin/python benchmarks/speed_validation.py --local bench1.json bench2.json ...

Prints, per backend class and backend, leave-one-device-out and leave-one-model-out errors of
decode and prefill tokens/s (median and mean |predicted/measured - 1|, bias = median
predicted/measured - 1, worst case, and how often the measured value fell inside low/high), the
NPU runtimes' leave-one-chip-out and leave-one-model-out errors, and with ``--local`` the
measured/predicted ratios of ``slmplan bench --format json`` results on this machine (median over
runs, recomputed with the current model; runs where other processes used more than 15% of the CPU
or whose contention is unknown are left out).
"""

import json
import statistics
import sys
from collections import defaultdict


def _row(name, e):
    if not e.get("rows"):
        return f"| {name} | 0 | - | - | - | - | - |"
    cov = e.get("within_low_high_pct")
    return (f"| {name} | {e['rows']} | {e['median_abs_pct']}% | {e['mean_abs_pct']}% | {e['bias_pct']:+}% | "
            f"{e['worst_pct']}% | {'-' if cov is None else f'{cov}%'} |")


def model_tables() -> None:
    from slmplan.estimate.fit import fit_all

    v = fit_all()["validation"]
    print("| class / split / backend | rows | median abs err | mean abs err | bias | worst | inside low-high |")
    print("|---|---|---|---|---|---|---|")
    for cls, val in v.items():
        for split in ("leave_one_device_out", "leave_one_model_out"):
            s = val[split]
            print(_row(f"{cls} decode, {split.replace('_', '-')} ({s['groups']} groups)", s["decode"]))
            if s["prefill"].get("rows"):
                print(_row(f"{cls} prefill, {split.replace('_', '-')}", s["prefill"]))
            if len(s["decode_by_backend"]) > 1:
                for b, e in s["decode_by_backend"].items():
                    print(_row(f"  {cls} decode {split.split('_')[2]}-out, {b}", e))


def npu_tables() -> None:
    from slmplan.estimate.npu import validate_npu

    print("\n| NPU split | quantity | rows | median abs err | mean abs err | worst |")
    print("|---|---|---|---|---|---|")
    for g in ("chip", "model"):
        for q, e in validate_npu(g).items():
            if e.get("rows"):
                print(f"| leave-one-{g}-out | {q} | {e['rows']} | {e['median_abs_pct']}% | {e['mean_abs_pct']}% | {e['worst_pct']}% |")


def local(paths: list[str]) -> None:
    from slmplan.bench.predict import make_predictor
    from slmplan.estimate.speed import load_constants
    from slmplan.gguf import read_gguf
    from slmplan.localdevice import detect_local
    from slmplan.model import facts_from_gguf

    dev = detect_local()
    meas = defaultdict(list)
    skipped = 0
    for p in paths:
        try:
            with open(p) as fh:
                d = json.load(fh)
        except (OSError, ValueError):
            continue
        others = (d["system"].get("contention") or {}).get("others_cpu_fraction")
        if others is None or others > 0.15 or d.get("interrupted"):
            skipped += 1
            continue
        for r in d["results"]:
            meas[(d["model"], d["model_path"], d["quant"], d["threads"], r["test"], r["n_prompt"], r["n_gen"])].append(
                r["tokens_per_s_median"])
    print(f"\nThis machine ({dev.name}; {dev.memory_bandwidth_gbs} GB/s, {dev.cpu_gflops} GFLOPS profile), "
          f"no --calibrate; {skipped} busy run(s) left out")
    print("| model | quant | test | runs | measured tok/s (median) | predicted | measured/predicted |")
    print("|---|---|---|---|---|---|---|")
    for (m, path, q, th, test, npp, ng), v in sorted(meas.items()):
        p = make_predictor(facts_from_gguf(read_gguf(path)), q, dev, th, constants=load_constants(), label="shipped")
        pred = p.tokens_per_s(npp, ng, 0)
        med = statistics.median(v)
        print(f"| {m} | {q} | {test} | {len(v)} | {med:.1f} | {pred:.1f} | {med / pred:.2f} |")


def main() -> int:
    args = sys.argv[1:]
    if "--local" in args:
        local(args[args.index("--local") + 1:])
        return 0
    model_tables()
    npu_tables()
    return 0


if __name__ == "__main__":
    sys.exit(main())
