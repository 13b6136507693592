"""Does one measurement on a device predict the other models on it? Leave-one-model-out on the published data.

For every device in slmplan/data/calibration with decode measurements of 3+ catalog models (llama.cpp rows of
edge_cpu.csv / edge_cpu_more.csv, llmfit_community.csv, gpu_more.csv and the Apple Metal files, and the NPU runtimes of npu_llm.csv,
each SoC + runtime one device):

- uncalibrated: the planner with the shipped constants (and the device's spec bandwidth);
- one model: `slmplan calibrate` on the rows of ONE model, then `fit` predicts every other model on the
  calibrated profile (every model takes its turn as the measured one; the mean over all pairs);
- two / three models: calibrate on the rows of two (three) models together, as one llama-bench run with
  several -m gives them, and predict every other model (every set of models, or a seeded sample of 60);
- leave one model out: calibrate on all the other models (the size-dependent fit a*t + b*layers), predict
  the left-out one.

Errors are |predicted / measured - 1| of decode tokens/s, through the same code as the CLI
(device_calibration.calibrate -> planner.evaluate, which fit and plan use). Model names are matched to catalog ids with the importer's
strict file-name rule (fine-tunes with another name, e.g. DeepSeek-R1-Distill-Qwen-7B, are left out).

    PYTHONPATH=. python benchmarks/calibration_lomo.py            # table on stdout
    PYTHONPATH=. python benchmarks/calibration_lomo.py --json     # the numbers as JSON
    PYTHONPATH=. python benchmarks/calibration_lomo.py --prior-sweep   # one shared GPU prior b/a, several values
    PYTHONPATH=. python benchmarks/calibration_lomo.py --no-groups     # one prior group for every GPU
    PYTHONPATH=. python benchmarks/calibration_lomo.py --own           # each GPU's own b/a (a lower bound)
    PYTHONPATH=. python benchmarks/calibration_lomo.py --unseen        # the speed model refitted without the device
    PYTHONPATH=. python benchmarks/calibration_lomo.py --whole         # one-model ratio carried over whole (no split)
    PYTHONPATH=. python benchmarks/calibration_lomo.py --no-quant-factors   # one scale for every quant type
    PYTHONPATH=. python benchmarks/calibration_lomo.py --prefill [--unseen]   # the same for prompt processing (pp rows)
    PYTHONPATH=. python benchmarks/calibration_lomo.py --unseen --bounds   # the one-model decode bounds calibrate ships

By default the planner is the shipped one, whose constants were fitted on these same devices (in-sample: the
uncalibrated column flatters it, and so a calibration that leans on it). ``--unseen`` evaluates each device as
a new one: its class's constants are refitted on the other devices' rows (the shipped model shape), and the
device/model split that one-model calibration uses (estimate/shrink.py) is learned from the other devices'
held-out deviations.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import statistics
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import slmplan.device_calibration as DC  # noqa: E402
from slmplan.device_calibration import calibrate  # noqa: E402
from slmplan.estimate.calib_rows import (  # noqa: E402
    LLMFIT_DEVICES,
    apple_more_rows,
    apple_rows,
    edge_rows,
    gpu_more_rows,
    llmfit_rows,
    read_csv_lines,
)
from slmplan.gpus import find_gpu  # noqa: E402
from slmplan.importers.identify import match_name, quant_from_name  # noqa: E402
from slmplan.importers.llama_bench import BenchFile, BenchRow  # noqa: E402
from slmplan.planner import Query, evaluate  # noqa: E402
from slmplan.resolve import Candidate  # noqa: E402
from slmplan.schema.device import DeviceProfile  # noqa: E402
from slmplan.socs import find_chip  # noqa: E402


def _row(src: str, mid: str, quant: str, tg: float, n_gen: int, threads: int | None = None) -> BenchRow:
    return BenchRow(source=src, n_prompt=0, n_gen=n_gen, n_depth=0, tokens_per_s=tg, threads=threads,
                    model_id=mid, quant=quant)


def _strict_id(name: str) -> str | None:
    """The importer's file-name rule (one catalog id whose parts appear as whole words), as `slmplan calibrate`."""
    hits = match_name(name)
    return hits[0] if len(hits) == 1 else None


def _q4_k_m(name: str, column: str) -> str | None:
    q = (quant_from_name(name) or column or "").upper()
    return q if q == "Q4_K_M" else None  # the one quant every device measured (others: a handful of rows)


def llmfit_devices() -> dict[str, tuple[DeviceProfile, list[BenchRow]]]:
    """llmfit's community GPU results, read as the speed fit reads them (calib_rows.llmfit_rows: known devices,
    duplicates and models larger than 90% of the GPU's memory left out), models identified as `calibrate` does."""
    rows: dict[str, list[BenchRow]] = defaultdict(list)
    for r in llmfit_rows(lambda mid, q: DC.measured_facts(mid, None).weights_bytes(q), identify=_strict_id, quant=_q4_k_m):
        if r.runtime == "llamacpp" and r.tg:
            rows[r.device].append(_row(f"llmfit_community.csv:{r.line}", r.model_id, r.quant, r.tg, r.tg_tokens or 128))
    out = {}
    for dev, rs in rows.items():
        backend, bw, src = LLMFIT_DEVICES[dev]
        gpu = find_gpu(dev)  # the FP32 peak from the GPU table (vendor specifications), as calibrate takes it
        tf, tf_src = (gpu.fp32_tflops, f"{gpu.name}: {gpu.source}") if gpu else (None, None)
        prof = DeviceProfile(id=dev, name=dev, kind="desktop", ram_gb=64, memory_budget_gb=60,
                             memory_bandwidth_gbs=bw, cpu_cores=8, backend=backend, gpu_tflops=tf,
                             sources={"memory_bandwidth_gbs": src, **({"gpu_tflops": tf_src} if tf_src else {})})
        out[dev] = (prof, rs)
    return out


# the profile keys that give a row's kernel family (speed.cpu_kernels_of) as the speed fit sees it
KERNEL_PROFILE_KEYS = {"x86-avx2": {"cpu_isa": "x86_64", "cpu_features": ["avx2", "fma"]},
                       "x86-sse": {"cpu_isa": "x86_64", "cpu_features": ["sse3", "ssse3"]},
                       "arm64": {"cpu_isa": "arm64"}}


def edge_cpu_devices() -> dict[str, tuple[DeviceProfile, list[BenchRow]]]:
    """The llama.cpp CPU rows of edge_cpu.csv, read as the speed fit reads them (calib_rows.edge_rows)."""
    rows: dict[str, list] = defaultdict(list)
    for r in edge_rows():
        if "llama.cpp" in r.runtime and "llamafile" not in r.runtime and r.tg:
            rows[r.device].append((r, _row(f"{r.data_file}:{r.line}", r.model_id, r.quant, r.tg, r.tg_tokens or 128)))
    out = {}
    for dev, rs in rows.items():
        r0 = rs[0][0]
        prof = DeviceProfile(id="edge", name=dev, kind="sbc", ram_gb=64, memory_budget_gb=60,
                             memory_bandwidth_gbs=r0.bandwidth_gbs, cpu_cores=8, backend="cpu",
                             cpu_gflops=r0.cpu_gflops, **KERNEL_PROFILE_KEYS.get(r0.cpu_kernels or "", {}))
        out[dev] = (prof, [x[1] for x in rs])
    return out


def gpu_more_devices() -> dict[str, tuple[DeviceProfile, list[BenchRow]]]:
    """llama-bench results on GPUs (gpu_more.csv, calib_rows.gpu_more_rows): decode alone, one build per device."""
    rows: dict[str, list] = defaultdict(list)
    facts = {r["device"]: r for _, r in read_csv_lines("gpu_more.csv")}
    for r in gpu_more_rows():
        if r.tg:
            rows[r.device].append(_row(f"{r.data_file}:{r.line}", r.model_id, r.quant, r.tg, r.tg_tokens or 128, r.threads))
    out = {}
    for dev, rs in rows.items():
        f = facts[dev]
        cc = float(f["cuda_compute_capability"]) if f["cuda_compute_capability"] else None
        prof = DeviceProfile(id="gpu-bench", name=dev, kind="sbc", ram_gb=64, memory_budget_gb=60,
                             memory_bandwidth_gbs=float(f["memory_bandwidth_gbs"]), cpu_cores=8, backend=f["backend"],
                             cuda_compute_capability=cc, gpu_tflops=float(f["gpu_tflops"]) if f["gpu_tflops"] else None,
                             sources={"memory_bandwidth_gbs": f["bandwidth_source"], "gpu_tflops": f["gpu_tflops_source"]})
        out[dev] = (prof, rs)
    return out


def apple_devices() -> dict[str, tuple[DeviceProfile, list[BenchRow]]]:
    """llama.cpp Metal results (apple_m1_m2_llama2_7b.csv and apple_more.csv, calib_rows.apple_rows /
    apple_more_rows), one device per chip as the speed fit groups them (GPU-core variants and sources of a chip
    together: decode is bound by the chip's bandwidth, which the variants share)."""
    rows: dict[str, list] = defaultdict(list)
    bw: dict[str, float] = {}
    for r in apple_rows() + apple_more_rows():
        if r.tg:
            rows[r.device].append(_row(f"{r.data_file}:{r.line}", r.model_id, r.quant, r.tg, r.tg_tokens or 128))
            bw[r.device] = r.bandwidth_gbs
    return {f"Apple {chip} (Metal)": (DeviceProfile(id="apple", name=f"Apple {chip} (Metal)", kind="laptop", ram_gb=64,
                                                    memory_budget_gb=60, memory_bandwidth_gbs=bw[chip], cpu_cores=8,
                                                    backend="metal"), rs)
            for chip, rs in rows.items()}


# 4-bit weights with 16-bit activations (Qualcomm w4a16, FastFlowLM Q4NX): no GGUF type; the planner's
# bytes per token are taken for Q4_0 (4 bits + a 16-bit scale per 32 weights), an approximation.
NPU_QUANT = {"w4a16": "Q4_0", "q4nx": "Q4_0"}


def npu_devices() -> dict[str, tuple[DeviceProfile, list[BenchRow]]]:
    """NPU runtimes (not llama.cpp): one device = one SoC with one runtime, its bandwidth from the chip table
    (slmplan/data/socs.yaml, as --runtime npu uses it). The calibration form is the same: a measured speed
    corrects the planner's bandwidth-based prediction (backend treated as cpu without a compute figure, i.e.
    bandwidth + fixed cost)."""
    rows: dict[tuple, list] = defaultdict(list)
    chips = {}
    for line, r in read_csv_lines("npu_llm.csv"):
        q = NPU_QUANT.get(r["quant"].lower())
        hits = match_name(r["model"])
        chip = find_chip(r["soc"])
        if not chip or not chip.memory_bandwidth_gbs or not q or len(hits) != 1 or not r["decode_tps"]:
            continue
        chips[r["soc"]] = chip
        rows[(r["soc"], r["runtime"])].append(_row(f"npu_llm.csv:{line}", hits[0], q, float(r["decode_tps"]), 128))
    out = {}
    for (soc, runtime), rs in rows.items():
        chip = chips[soc]
        prof = DeviceProfile(id="npu", name=f"{soc}, {runtime}", kind="phone", ram_gb=16, memory_budget_gb=12,
                             memory_bandwidth_gbs=chip.memory_bandwidth_gbs, cpu_cores=8, backend="cpu",
                             sources={"memory_bandwidth_gbs": f"{chip.name}: {chip.source}"})
        out[prof.name] = (prof, rs)
    return out


def _predict(dev: DeviceProfile, row: BenchRow) -> float:
    """planner.fit's path (evaluate) for the row's model and quant, also when the catalog lists no such variant:
    decode tokens/s, or prompt tokens/s for a prompt row (n_gen 0, --prefill)."""
    return _predict_bounds(dev, row)[0]


def _predict_bounds(dev: DeviceProfile, row: BenchRow) -> tuple[float, float | None, float | None]:
    """(predicted, low, high) tokens/s as _predict."""
    from slmplan.catalog import facts, get_model, load_catalog

    c = Candidate(facts(get_model(load_catalog(), row.model_id)), row.quant)
    if row.n_gen == 0:
        s = evaluate(c, dev, Query(ctx=4096, n_prompt=row.n_prompt, n_gen=1)).speed
        assert s.prefill_tokens_per_s is not None  # prefill devices have a compute figure
        return s.prefill_tokens_per_s, s.prefill_tokens_per_s_low, s.prefill_tokens_per_s_high
    s = evaluate(c, dev, Query(ctx=4096, n_prompt=0, n_gen=row.n_gen)).speed
    return s.decode_tokens_per_s, s.decode_tokens_per_s_low, s.decode_tokens_per_s_high


def _inside(pred: tuple[float, float | None, float | None], row: BenchRow) -> bool:
    """The measured value within the predicted low/high (a _predict_bounds result for the row)."""
    _, lo, hi = pred
    return lo is not None and hi is not None and lo <= row.tokens_per_s <= hi


def prefill_devices() -> dict[str, tuple[DeviceProfile, list[BenchRow]]]:
    """The devices above with published prompt-processing rows (pp, llama.cpp), the rows as llama-bench pp tests."""
    profiles = {n: b for n, (b, _) in {**gpu_more_devices(), **apple_devices(), **edge_cpu_devices()}.items()}
    rows: dict[str, list[BenchRow]] = defaultdict(list)
    tflops: dict[str, float] = {}
    named = [(f"Apple {r.device} (Metal)", r) for r in apple_rows() + apple_more_rows()] + [
        (r.device, r) for r in gpu_more_rows()] + [
        (r.device, r) for r in edge_rows() if "llama.cpp" in r.runtime and "llamafile" not in r.runtime]
    for name, r in named:
        if r.pp and name in profiles:
            if r.gpu_tflops:
                tflops[name] = r.gpu_tflops  # the Apple chips' GPU peak, as the speed fit takes it
            rows[name].append(BenchRow(source=f"{r.data_file}:{r.line}", n_prompt=r.pp_tokens, n_gen=0, n_depth=0,
                                       tokens_per_s=r.pp, model_id=r.model_id, quant=r.quant))
    return {n: (profiles[n] if profiles[n].gpu_tflops or n not in tflops else
                profiles[n].model_copy(update={"gpu_tflops": tflops[n]}), rs) for n, rs in rows.items()}


def run_prefill(unseen: bool = False) -> list[dict]:
    """One-model / two-model / leave-one-model-out for prefill on every device with pp rows of 3+ catalog models
    (``unseen``: each device's class refitted without its rows, as run() does)."""
    from slmplan.estimate.speed import load_constants

    devices = prefill_devices()
    classes = load_constants().classes
    saved = dict(classes)
    held = unseen_constants() if unseen else {}
    out = []
    try:
        for n, (b, rows) in sorted(devices.items()):
            if len({r.model_id for r in rows}) < 3:
                continue
            classes.clear()
            classes.update(saved)
            fit_name = n if n in held else _fit_name(n)
            if fit_name in held:
                c, k = held[fit_name]
                if not k.eff_pp:  # the only device of its class with prompt rows: no prefill fit without it
                    print(f"{n}: no {c} prefill fit without this device (not evaluated)", file=sys.stderr)
                    continue
                classes[c] = k
            out.append(evaluate_device(b, rows) | {"speed_model": "refitted without the device" if fit_name in held
                                                   else "shipped"})
    finally:
        classes.clear()
        classes.update(saved)
    return out


def _calibrated(base: DeviceProfile, rows: list[BenchRow]) -> DeviceProfile:
    dev, _ = calibrate([BenchFile("published-rows", "csv", rows, [])], base, now="benchmark")
    return dev


def _err(pred: float, meas: float) -> float:
    return abs(pred / meas - 1)


MEASURED_SETS = (2, 3)  # models measured together, besides one and all-but-one
MAX_SETS = 60  # sets of k models evaluated per device (a seeded sample when there are more)


def measured_k(base: DeviceProfile, rows: list[BenchRow], by_model: dict[str, list[BenchRow]], k: int) -> float | None:
    """Calibrate on the rows of k models (every k-set, or a seeded sample of MAX_SETS), predict all the other
    models: the mean error over the sets' predictions. None when the device has fewer than k + 1 models."""
    models = sorted(by_model)
    if len(models) <= k:
        return None
    sets = list(itertools.combinations(models, k))
    if len(sets) > MAX_SETS:
        sets = random.Random(f"{base.name}:{k}").sample(sets, MAX_SETS)
    errs = []
    for chosen in sets:
        dev = _calibrated(base, [r for m in chosen for r in by_model[m]])
        errs += [_err(_predict(dev, r), r.tokens_per_s) for r in rows if r.model_id not in chosen]
    return statistics.fmean(errs)


def evaluate_device(base: DeviceProfile, rows: list[BenchRow], ks: tuple[int, ...] = MEASURED_SETS) -> dict:
    by_model: dict[str, list[BenchRow]] = defaultdict(list)
    for r in rows:
        by_model[r.model_id].append(r)
    models = sorted(by_model)
    raw = [_err(_predict(base, r), r.tokens_per_s) for r in rows]
    one, lomo = [], []
    one_ratios: list[float] = []  # measured / predicted of the other models, one model measured
    inside_one: list[bool] = []
    inside_lomo: list[bool] = []
    per_model = {}
    for m in models:
        others = [r for r in rows if r.model_id != m]
        dev1 = _calibrated(base, by_model[m])
        p1 = [_predict_bounds(dev1, r) for r in others]  # one evaluate per row: the value and its bounds
        e1 = [_err(p[0], r.tokens_per_s) for p, r in zip(p1, others)]
        one_ratios += [r.tokens_per_s / p[0] for p, r in zip(p1, others)]
        one += e1
        inside_one += [_inside(p, r) for p, r in zip(p1, others)]
        devl = _calibrated(base, others)
        pl = [_predict_bounds(devl, r) for r in by_model[m]]
        el = [_err(p[0], r.tokens_per_s) for p, r in zip(pl, by_model[m])]
        lomo += el
        inside_lomo += [_inside(p, r) for p, r in zip(pl, by_model[m])]
        per_model[m] = {"rows": len(by_model[m]), "calibrated_on_it_mean_abs_pct_on_others": round(100 * statistics.fmean(e1), 1),
                        "left_out_abs_pct": round(100 * statistics.fmean(el), 1)}
    pct = lambda xs: round(100 * statistics.fmean(xs), 1)  # noqa: E731
    k_sets = {k: (round(100 * e, 1) if (e := measured_k(base, rows, by_model, k)) is not None else None) for k in ks}
    return {"device": base.name, "runtime": "NPU runtime" if base.id == "npu" else "llama.cpp", "backend": base.effective_backend, "bandwidth_gbs": base.memory_bandwidth_gbs,
            "models": len(models), "rows": len(rows), "uncalibrated_mean_abs_pct": pct(raw),
            "one_model_mean_abs_pct": pct(one), "one_model_median_abs_pct": round(100 * statistics.median(one), 1),
            "lomo_mean_abs_pct": pct(lomo), "k_models_mean_abs_pct": k_sets, "per_model": per_model,
            "one_model_inside_low_high_pct": round(100 * sum(inside_one) / len(inside_one), 1),
            "lomo_inside_low_high_pct": round(100 * sum(inside_lomo) / len(inside_lomo), 1),
            "one_model_ratios": [round(x, 4) for x in one_ratios]}


def weighted_quantile(groups: list[list[float]], q: float) -> float:
    """The q-quantile of the pooled values, each group weighing the same (every value 1/len(group))."""
    pts = sorted((x, 1 / len(g)) for g in groups for x in g)
    total, acc = sum(w for _, w in pts), 0.0
    for x, w in pts:
        acc += w
        if acc >= q * total:
            return x
    return pts[-1][0]


def one_model_bounds(results: list[dict]) -> dict[str, tuple[float, float]]:
    """10th/90th percentile of measured/predicted for the other models after a one-model calibration, per
    class (cpu, gpu = CUDA/Vulkan, metal) and over all llama.cpp devices, each device weighing the same."""
    cls = {"cpu": "cpu", "cuda": "gpu", "vulkan": "gpu", "metal": "metal"}
    out = {}
    for name in ("cpu", "gpu", "metal", "all"):
        g = [r["one_model_ratios"] for r in results if r["runtime"] == "llama.cpp" and name in ("all", cls[r["backend"]])]
        if g:
            out[name] = (round(weighted_quantile(g, 0.1), 3), round(weighted_quantile(g, 0.9), 3))
    return out


def _fit_name(name: str) -> str:
    """The speed fit's device name of a device here (the Apple chips are named by chip there)."""
    return name.removeprefix("Apple ").removesuffix(" (Metal)") if name.endswith(" (Metal)") else name


def unseen_constants() -> dict[str, tuple[str, object]]:
    """Speed-fit device name -> (class, ClassConstants fitted without that device's rows, with the device/model
    split learned without it)."""
    from slmplan.estimate import fit as F
    from slmplan.estimate.speed import load_constants

    get = F.Facts()
    rows = F.load_rows(get)
    q_dec = F.fit_quant_decode(get)
    shipped = load_constants()
    out = {}
    for cls, k in shipped.classes.items():
        q_pp = F.fit_quant_prefill(rows, cls)
        sp = k.c_layer_no_graphs_s is not None or k.c_layer_old_builds_s is not None
        shape = dict(te=k.thread_exp, overlap=k.overlap, split=sp, free_token=shipped.extra["c_token_fitted"][cls],
                     ce=k.core_exp, qc=F.rates_of(k.quant_cpu))
        lodo = F._held_out(rows, cls, get, q_dec, q_pp, "device", **shape)
        for dev in sorted({r.device for r in rows if r.cls == cls}):
            train = [r for r in rows if r.cls == cls and r.device != dev]
            kk = F.fit_class(train, cls, get, q_dec, q_pp, **shape)
            dp = F.device_prior_of(lodo, exclude=dev) if cls in F.SHRINK_CLASSES else None
            out[dev] = (cls, replace(kk, decode_ratio_low=k.decode_ratio_low, decode_ratio_high=k.decode_ratio_high,
                                     decode_ratio_by_backend=k.decode_ratio_by_backend,
                                     device_prior=dp.to_dict() if dp else {}))
    return out


def layer_over_a(base: DeviceProfile, rows: list[BenchRow]) -> float | None:
    """b/a of the size-dependent fit on all of a device's rows (the fixed cost per layer at spec speed)."""
    dev = _calibrated(base, rows)
    d = dev.calibration.decode
    return d.b_layer_s / d.a if d and d.form == "a and b fitted" else None


PRIOR_MODES = ("compute", "groups", "no-groups", "own")
GPU_GROUPS = DC.COMPUTE_PRIOR_GROUPS  # the CUDA/Vulkan prior groups (--no-groups and --prior-sweep join them; Metal stays apart)


def run(devices: dict, mode: str = "compute", ks: tuple[int, ...] = MEASURED_SETS, unseen: bool = False,
        whole: bool = False) -> tuple[list[dict], list[str], dict]:
    """Every device with 3+ catalog models. For the one-model case the prior b/a of a device is learned from the
    OTHER devices only (leave one device out), so no device is predicted with its own data. ``mode``
    "compute" (what calibrate does): a CUDA/Vulkan GPU with an FP32 peak gets b/a = k / x (its FLOPs per byte),
    k from the other such GPUs, every other device the median of its group's other devices; "groups": the
    groups for every GPU; "no-groups": one group for every GPU (the median of all other GPUs); "own": each GPU's
    own b/a, which a one-model calibration cannot know (a lower bound for any prior)."""
    results, skipped = [], []
    evald = {n: v for n, v in sorted(devices.items()) if len({r.model_id for r in v[1]}) >= 3}
    skipped = [f"{n}: {len({r.model_id for r in v[1]})} catalog model(s)" for n, v in sorted(devices.items()) if n not in evald]
    ratio = {n: layer_over_a(b, rows) for n, (b, rows) in evald.items()}
    xs = {n: DC.flops_per_byte(b) for n, (b, _) in evald.items()}
    saved = dict(DC.ONE_MODEL_LAYER_PRIOR_S)
    saved_compute = dict(DC.ONE_MODEL_COMPUTE_PRIOR)
    group = {n: DC.prior_group(b) for n, (b, _) in evald.items()}
    if mode in ("no-groups", "own"):  # every GPU in one group
        group = {n: "gpu" if g in GPU_GROUPS else g for n, g in group.items()}
    from slmplan.estimate.speed import load_constants

    classes = load_constants().classes  # the cached shipped constants: set per device for unseen / whole / NPU
    saved_classes = dict(classes)
    held = unseen_constants() if unseen else {}

    def whole_ratio(k):  # the constants without the device/model split (--whole, and the NPU stand-ins)
        return replace(k, device_prior={})

    try:
        for n, (base, rows) in evald.items():
            classes.update({c: whole_ratio(k) if whole else k for c, k in saved_classes.items()})
            fit_name = n if n in held else _fit_name(n)
            if fit_name in held:
                c, k = held[fit_name]
                classes[c] = whole_ratio(k) if whole else k
            if base.id == "npu":  # a stand-in for an NPU runtime: the CPU class's device/model split is not its own
                classes["cpu"] = whole_ratio(classes["cpu"])
            g = group[n]
            others = [r for m, r in ratio.items() if m != n and r is not None and group[m] == g]
            if mode == "own" and ratio[n] is not None:
                others = [ratio[n]]
            if not others and g in GPU_GROUPS:  # the only device of its group: the median of the other CUDA/Vulkan GPUs
                others = [r for m, r in ratio.items() if m != n and r is not None and group[m] in GPU_GROUPS]
            if g in saved and not others:  # no other device of the group: the planner's own split, not a
                DC.ONE_MODEL_LAYER_PRIOR_S.pop(g)  # shipped prior computed with this very device
            if g in saved and others:
                value = statistics.median(others)
                # calibrate looks the group up again (DC.prior_group): with one group, every GPU group gets it
                for key in (GPU_GROUPS if mode in ("no-groups", "own") and g in GPU_GROUPS else (g,)):
                    DC.ONE_MODEL_LAYER_PRIOR_S[key] = value
            DC.ONE_MODEL_COMPUTE_PRIOR.clear()
            pairs = [(xs[m], r) for m, r in ratio.items() if m != n and r and xs[m] and group[m] in GPU_GROUPS]
            if mode == "compute" and g in GPU_GROUPS and xs[n] and pairs:
                DC.ONE_MODEL_COMPUTE_PRIOR.update(k_s=DC.compute_prior_k(pairs), x_min=min(x for x, _ in pairs),
                                                  x_max=max(x for x, _ in pairs))
            res = evaluate_device(base, rows, ks)
            res["prior_group"] = g
            res["one_model_layer_prior_ms"] = round(DC.layer_prior(base, [])[0] * 1e3, 4) if (
                g in DC.ONE_MODEL_LAYER_PRIOR_S or DC.ONE_MODEL_COMPUTE_PRIOR) else None
            res["speed_model"] = "refitted without the device" if fit_name in held else (
                "shipped (not in its fit)" if unseen else "shipped")
            results.append(res)
            DC.ONE_MODEL_LAYER_PRIOR_S.update(saved)
    finally:
        classes.clear()
        classes.update(saved_classes)
        DC.ONE_MODEL_LAYER_PRIOR_S.clear()
        DC.ONE_MODEL_LAYER_PRIOR_S.update(saved)
        DC.ONE_MODEL_COMPUTE_PRIOR.clear()
        DC.ONE_MODEL_COMPUTE_PRIOR.update(saved_compute)
    gpu = {n: r for n, r in ratio.items() if r and group[n] in saved}
    pool = [r for n, r in gpu.items() if group[n] in GPU_GROUPS]
    # a CUDA/Vulkan group of one device has no median of its own: the median of all CUDA/Vulkan GPUs (as above)
    prior: dict = {f"{g}_median_b_over_a_ms": round(1e3 * statistics.median(v if len(v) > 1 or g not in GPU_GROUPS else pool), 4)
                   for g in sorted({group[n] for n in gpu}) if (v := [r for n, r in gpu.items() if group[n] == g])}
    prior["per_device_b_over_a_ms"] = {n: round(r * 1e3, 4) for n, r in gpu.items()}
    pairs = [(xs[n], r) for n, r in gpu.items() if xs[n] and group[n] in GPU_GROUPS]
    if pairs:  # b/a = k / x over every CUDA/Vulkan GPU with an FP32 peak: the shipped ONE_MODEL_COMPUTE_PRIOR
        lx, lr = [math.log(x) for x, _ in pairs], [math.log(r) for _, r in pairs]
        mx, mr = statistics.fmean(lx), statistics.fmean(lr)
        sxy = sum((a - mx) * (b - mr) for a, b in zip(lx, lr))
        sxx, syy = sum((a - mx) ** 2 for a in lx), sum((b - mr) ** 2 for b in lr)
        prior["compute"] = {"k_ms": round(1e3 * DC.compute_prior_k(pairs), 4), "x_min": round(min(x for x, _ in pairs), 1),
                            "x_max": round(max(x for x, _ in pairs), 1), "devices": len(pairs),
                            "log_log_slope": round(sxy / sxx, 2), "log_log_r": round(sxy / math.sqrt(sxx * syy), 2),
                            "flops_per_byte": {n: round(xs[n], 1) for n in gpu if xs[n] and group[n] in GPU_GROUPS}}
    return results, skipped, prior


def prior_sweep(devices: dict, priors_ms: tuple[float, ...] = (0.0, 0.03, 0.06, 0.09, 0.1166, 0.14, 0.18, 0.25)) -> dict:
    """The GPU devices' one-model error with ONE shared prior b/a for all of them (chosen on these devices
    themselves, so a lower bound for any shared prior): where the shipped median stands among them."""
    gpus = {n: v for n, v in sorted(devices.items()) if v[0].effective_backend in ("cuda", "vulkan") and len({r.model_id for r in v[1]}) >= 3}
    saved = dict(DC.ONE_MODEL_LAYER_PRIOR_S)
    saved_compute = dict(DC.ONE_MODEL_COMPUTE_PRIOR)
    DC.ONE_MODEL_COMPUTE_PRIOR.clear()  # the shared value for every GPU, whatever its FP32 peak
    out = {}
    try:
        for p in priors_ms:
            for g in GPU_GROUPS:  # every CUDA/Vulkan group the same
                DC.ONE_MODEL_LAYER_PRIOR_S[g] = p * 1e-3
            out[p] = round(statistics.fmean(evaluate_device(b, rows, ks=())["one_model_mean_abs_pct"] for b, rows in gpus.values()), 2)
    finally:
        DC.ONE_MODEL_LAYER_PRIOR_S.clear()
        DC.ONE_MODEL_LAYER_PRIOR_S.update(saved)
        DC.ONE_MODEL_COMPUTE_PRIOR.update(saved_compute)
    return out


def _k_values(results: list[dict], k: int) -> list[float]:
    return [e for r in results if (e := r["k_models_mean_abs_pct"][k]) is not None]


def main(argv: list[str]) -> int:
    devices = {**llmfit_devices(), **gpu_more_devices(), **apple_devices(), **edge_cpu_devices(), **npu_devices()}
    if "--prior-sweep" in argv:
        for p, e in prior_sweep(devices).items():
            print(f"shared GPU prior b/a {p:.4f} ms: calibrated on one model {e:.2f}% (mean over the GPUs)")
        return 0
    mode = next((m for m in PRIOR_MODES if f"--{m}" in argv), "compute")
    DC.QUANT_FACTORS = "--no-quant-factors" not in argv
    if "--prefill" in argv:
        res = run_prefill(unseen="--unseen" in argv)
        print("| device | models (rows) | uncalibrated | calibrated on one model: other models | on two models | "
              "leave one model out |  (prompt tokens/s)")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        for r in res:
            print(f"| {r['device']} ({r['backend']}) | {r['models']} ({r['rows']}) | {r['uncalibrated_mean_abs_pct']}% | "
                  f"{r['one_model_mean_abs_pct']}% (median {r['one_model_median_abs_pct']}%) | "
                  f"{r['k_models_mean_abs_pct'][2] if r['k_models_mean_abs_pct'][2] is not None else 'n/a'}% | "
                  f"{r['lomo_mean_abs_pct']}% |")
        print(f"mean over {len(res)} devices: uncalibrated {statistics.fmean(r['uncalibrated_mean_abs_pct'] for r in res):.1f}%, "
              f"one model {statistics.fmean(r['one_model_mean_abs_pct'] for r in res):.1f}%, "
              f"leave one model out {statistics.fmean(r['lomo_mean_abs_pct'] for r in res):.1f}% "
              "(mean |predicted/measured - 1| of prompt tokens/s)")
        return 0
    results, skipped, prior = run(devices, mode, unseen="--unseen" in argv, whole="--whole" in argv)
    if "--bounds" in argv:
        for name, (lo, hi) in one_model_bounds(results).items():
            print(f"one model measured, the other models' measured/predicted, 10th-90th percentile ({name}): "
                  f"x{lo:.3f}-x{hi:.3f}" + (f" (shipped: {DC.ONE_MODEL_DECODE_BOUNDS})" if name == "all" else ""))
        cov = {}
        for r in results:  # each device's coverage by the pooled bounds of the OTHER devices
            if r["runtime"] != "llama.cpp":
                continue
            lo, hi = one_model_bounds([o for o in results if o is not r])["all"]
            cov[r["device"]] = round(100 * statistics.fmean(lo <= x <= hi for x in r["one_model_ratios"]), 1)
        print(f"inside the other devices' pooled bounds, per device: {cov}; mean {statistics.fmean(cov.values()):.1f}%")
        lc = [r for r in results if r["runtime"] == "llama.cpp"]
        print(f"inside calibrate's low/high, mean over the llama.cpp devices: one model measured "
              f"{statistics.fmean(r['one_model_inside_low_high_pct'] for r in lc):.1f}%, all the other models "
              f"(leave one model out, bounds from the residuals) {statistics.fmean(r['lomo_inside_low_high_pct'] for r in lc):.1f}% "
              f"({ {r['device']: r['lomo_inside_low_high_pct'] for r in lc} })")
        return 0
    if "--json" in argv:
        print(json.dumps({"devices": results, "skipped": skipped, "prior": prior}, indent=1))
        return 0
    print("| device | runtime | models (rows) | uncalibrated | calibrated on one model: other models | on two models | "
          "on three models | leave one model out |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    kpct = lambda r, k: "n/a" if r["k_models_mean_abs_pct"][k] is None else f"{r['k_models_mean_abs_pct'][k]}%"  # noqa: E731
    for r in results:
        print(f"| {r['device']} ({r['backend']}, {r['bandwidth_gbs']:g} GB/s) | {r['runtime']} | {r['models']} ({r['rows']}) | "
              f"{r['uncalibrated_mean_abs_pct']}% | {r['one_model_mean_abs_pct']}% (median {r['one_model_median_abs_pct']}%) | "
              f"{kpct(r, 2)} | {kpct(r, 3)} | {r['lomo_mean_abs_pct']}% |")
    for label, sel in (("all devices", results), ("llama.cpp devices", [r for r in results if r["runtime"] == "llama.cpp"]),
                       ("llama.cpp GPUs", [r for r in results if r["runtime"] == "llama.cpp" and r["backend"] != "cpu"]),
                       ("CUDA/Vulkan GPUs", [r for r in results if r["backend"] in ("cuda", "vulkan")])):
        if sel:
            print(f"mean over {label} ({len(sel)}): uncalibrated {statistics.fmean(r['uncalibrated_mean_abs_pct'] for r in sel):.1f}%, "
                  f"calibrated on one model {statistics.fmean(r['one_model_mean_abs_pct'] for r in sel):.1f}%, "
                  + "".join(f"on {k} models {statistics.fmean(v):.1f}% ({len(v)} devices), "
                            for k in MEASURED_SETS if (v := _k_values(sel, k))) +
                  f"leave one model out {statistics.fmean(r['lomo_mean_abs_pct'] for r in sel):.1f}% "
                  "(mean |predicted/measured - 1| of decode tokens/s)")
    medians = "; ".join(f"{k.removesuffix('_median_b_over_a_ms')} {v} ms (shipped "
                        f"{DC.ONE_MODEL_LAYER_PRIOR_S.get(k.removesuffix('_median_b_over_a_ms'), 0) * 1e3:g} ms)"
                        for k, v in prior.items() if k.endswith("_median_b_over_a_ms"))
    print(f"prior fixed cost per layer (b/a), GPU devices: {prior['per_device_b_over_a_ms']} ms; medians by group: {medians}")
    if c := prior.get("compute"):
        cp = DC.ONE_MODEL_COMPUTE_PRIOR
        print(f"b/a = k / x over the {c['devices']} CUDA/Vulkan GPUs with an FP32 peak (x = FP32 FLOPs per byte of bandwidth: "
              f"{c['flops_per_byte']}): k = {c['k_ms']} ms (shipped {cp.get('k_s', 0) * 1e3:g} ms), x {c['x_min']}-{c['x_max']} "
              f"(shipped {cp.get('x_min')}-{cp.get('x_max')}); log-log slope {c['log_log_slope']}, r {c['log_log_r']}")
    print(f"devices with fewer than 3 catalog models (not evaluated): {'; '.join(skipped)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
