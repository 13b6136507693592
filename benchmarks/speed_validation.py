"""Held-out accuracy of the speed model on everything in slmplan/data/calibration.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/speed_validation.py
    PYTHONPATH=$PWD .venv/bin/python benchmarks/speed_validation.py --local bench1.json bench2.json ...

Prints, per backend class and backend, leave-one-device-out and leave-one-model-out errors of
decode and prefill tokens/s (median and mean |predicted/measured - 1|, bias = median
predicted/measured - 1, worst case, and how often the measured value fell inside low/high), the
NPU runtimes' leave-one-chip-out and leave-one-model-out errors, and with ``--local`` the
measured/predicted ratios of ``slmplan bench --format json`` results (median over runs, recomputed
with the current model from the device figures stored in each result, so nothing is measured again;
runs where other processes used more than 15% of the CPU or whose contention is unknown are left out).
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
            if s.get("decode_builds_2025_on"):
                print(_row(f"  {cls} decode {split.split('_')[2]}-out, builds of 2025 on", s["decode_builds_2025_on"]))
            if len(s["decode_by_backend"]) > 1:
                for b, e in s["decode_by_backend"].items():
                    print(_row(f"  {cls} decode {split.split('_')[2]}-out, {b}", e))


def npu_tables() -> None:
    from slmplan.estimate.npu import validate_npu

    print("\n| NPU split | quantity | rows | median abs err | mean abs err | bias | worst | inside low-high |")
    print("|---|---|---|---|---|---|---|---|")
    for g in ("chip", "model"):
        for q, e in validate_npu(g).items():
            if e.get("rows"):
                print(f"| leave-one-{g}-out | {q} | {e['rows']} | {e['median_abs_pct']}% | {e['mean_abs_pct']}% | {e['bias_pct']:+}% | {e['worst_pct']}% "
                      f"| {e['within_low_high_pct']}% |")


def _stored_device(d: dict):
    """The device figures a result was predicted with (its ``prediction`` block), so that a re-run on
    another host (or after the host's profile changed) compares with the same inputs; None if absent."""
    from slmplan.localdevice import flops_per_cycle
    from slmplan.schema.device import DeviceProfile
    from slmplan.socs import X86_QUANT_FLOPS_PER_CYCLE

    p = d.get("prediction") or {}
    if not p.get("bandwidth_gbs") or not p.get("cpu_gflops"):
        return None
    sy = d.get("system") or {}
    quant = p.get("cpu_quant_gflops")
    machine = sy.get("machine")
    x86 = machine in ("x86_64", "AMD64")
    isa = "x86_64" if x86 else "arm64" if machine in ("aarch64", "arm64") else None
    if quant is None and x86 and sy.get("cpu_features"):  # a result stored before the field: its CPU's count
        fpc = flops_per_cycle(sy["cpu_features"], sy.get("cpu_vendor"), sy.get("cpu_family"), sy.get("cpu_model_number"))
        quant = p["cpu_gflops"] * X86_QUANT_FLOPS_PER_CYCLE / fpc if fpc > X86_QUANT_FLOPS_PER_CYCLE else None
    return DeviceProfile(id="local", name=f"the machine of {d.get('started_at', 'this result')}", kind="desktop",
                         ram_gb=1024, memory_budget_gb=1024, memory_bandwidth_gbs=p["bandwidth_gbs"],
                         cpu_cores=d["threads"], threads=d["threads"], cpu_gflops=p["cpu_gflops"],
                         cpu_quant_gflops=quant, backend="cpu", cpu_isa=isa,
                         cpu_features=sy.get("cpu_features"))


def local(paths: list[str]) -> None:
    """The stored local runs against the shipped model, each with the device figures stored with it."""
    from slmplan.bench.predict import make_predictor
    from slmplan.estimate.speed import load_constants
    from slmplan.gguf import read_gguf
    from slmplan.model import facts_from_gguf

    meas = defaultdict(list)
    devices = {}
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
            repack = (d.get("settings") or {}).get("repack") is not False
            dev = _stored_device(d)  # runs of different machines (their stored figures) are not pooled
            figs = (dev.memory_bandwidth_gbs, dev.cpu_gflops) if dev else None
            key = (d["model"], d["model_path"], d["quant"], d["threads"], r["test"], r["n_prompt"], r["n_gen"], repack, figs)
            meas[key].append(r["tokens_per_s_median"])
            devices.setdefault(key, dev)
    if any(v is None for v in devices.values()):  # results without stored figures: this machine's profile
        from slmplan.localdevice import detect_local

        here = detect_local()
        devices = {k: v or here for k, v in devices.items()}
    figures = sorted({(v.memory_bandwidth_gbs, v.cpu_gflops) for v in devices.values()})
    print(f"\nLocal results, no --calibrate; device figures as stored with each result (GB/s, GFLOPS): {figures}; "
          f"{skipped} busy run(s) left out")
    print("| model | quant | test | threads | repack | runs | measured tok/s (median) | predicted | measured/predicted |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key, v in sorted(meas.items()):
        m, path, q, th, test, npp, ng, repack, _ = key
        p = make_predictor(facts_from_gguf(read_gguf(_model_file(m, path))), q, devices[key], th, constants=load_constants(), label="shipped",
                           repack=repack)
        pred = p.tokens_per_s(npp, ng, 0)
        med = statistics.median(v)
        print(f"| {m} | {q} | {test} | {th} | {'on' if repack else 'off'} | {len(v)} | {med:.1f} | {pred:.1f} | {med / pred:.2f} |")


def _model_file(model: str, path: str) -> str:
    """The GGUF a stored result ran, or on another machine the same bundled test model assembled here."""
    import os

    from slmplan.testmodels import BUNDLED, bundled_model_path

    if not os.path.exists(path) and model in BUNDLED:
        return str(bundled_model_path(model))
    return path


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
