"""Deployment path for the recommended models on the device's platform: which runtimes can run them,
the file each needs and how to make it, the download size per quant, and what slmplan predicts or
measured. The runtime knowledge lives in data/runtimes.yaml with its sources."""

from __future__ import annotations

import platform as _platform

from slmplan.catalog import facts, get_model, load_catalog
from slmplan.errors import SlmplanError
from slmplan.runtimes import runtimes
from slmplan.schema.device import DeviceProfile
from slmplan.schema.estimate import FitResult
from slmplan.schema.report import Deployment, Download, Figure, RuntimeOption

PLATFORM_NAMES = {"ios": "iOS / iPadOS", "android": "Android", "macos": "macOS", "windows": "Windows", "linux": "Linux"}


def platform_of(device: DeviceProfile) -> str:
    apple = (device.soc or "").startswith("Apple") or device.name.startswith("Apple")
    if device.id == "local":
        return {"Darwin": "macos", "Windows": "windows"}.get(_platform.system(), "linux")
    if device.kind in ("phone", "tablet"):
        return "ios" if apple else "android"
    if apple:
        return "macos"
    return "linux" if device.kind in ("sbc", "server") else "windows"


def _soc_ok(rt: dict, device: DeviceProfile) -> bool:
    from slmplan.estimate.npu import device_chip

    need = rt.get("requires_soc")
    # a vendor runtime only for a profile that names that vendor's chip (not a generic "... class" profile);
    # the chip table's name counts too ("soc: Snapdragon 8 Gen 3" is its "Qualcomm Snapdragon 8 Gen 3")
    names = [device.soc or "", device_chip(device) or ""]
    return not need or any(n.lower().startswith(need.lower()) for n in names)


def _arch(model: str) -> str | None:
    try:
        return get_model(load_catalog(), model).architecture
    except SlmplanError:
        return None


NPU_MIN_ROWS = 3  # the deployment table shows an NPU runtime's estimate only when its fit rests on this many rows


def _npu_note(rt: dict, device: DeviceProfile, model: str) -> tuple[str, str]:
    """What ``--runtime npu`` predicts for this runtime's NPU path and ``model``, or why nothing."""
    from slmplan.estimate.npu import RUNTIMES, estimate_npu_speed, runtime_fits

    npu = rt["npu_runtime"]
    if npu not in (device.npu_runtimes or []):
        return "not predicted", (f"not predicted: no {RUNTIMES[npu]} path known for this chip "
                                 "(npu_runtimes in the profile or the chip table)")
    fit = runtime_fits()[npu].decode
    if fit is None or fit.rows < NPU_MIN_ROWS:
        n = fit.rows if fit else 0
        return "not predicted", (f"not predicted here: {n} published decode measurement{'s' if n != 1 else ''} of "
                                 f"{RUNTIMES[npu]}, too few for this table ('slmplan fit MODEL --runtime npu' gives "
                                 "the estimate with its wide bounds)")
    try:
        s = estimate_npu_speed(facts(get_model(load_catalog(), model)), device, runtime=npu)
    except SlmplanError as e:  # e.g. a typo in the profile's npu_measurements: say so here, the report stands
        return "not predicted", f"not predicted: {e.one_line()}"
    if s.decode_tokens_per_s is None:
        return "not predicted", f"not predicted: {s.method}"
    ttft = f", first token after ~{s.ttft_s:.1f} s" if s.ttft_s is not None else ""
    return "predicted", (f"predicted with --runtime npu for {model} on the NPU ({RUNTIMES[npu]}): "
                         f"~{s.decode_tokens_per_s:.1f} tokens/s decode ({s.decode_tokens_per_s_low:.1f}-"
                         f"{s.decode_tokens_per_s_high:.1f}){ttft}, in the runtime's own 4-bit format; an estimate "
                         "fitted on published NPU measurements")


def _speed_note(rt: dict, device: DeviceProfile, best: FitResult, bench_runtimes: set[str],
                runs: list[str] | None = None) -> tuple[str, str]:
    kind = rt["slmplan"]
    if kind == "predicted-npu":  # for the first pick the runtime is documented for
        return _npu_note(rt, device, (runs or [best.model])[0])
    if best.speed.backend.startswith("npu") and kind == "predicted":  # this report's speeds are the NPU's
        return "not predicted", ("not shown: this report's speeds are the NPU runtime's (--runtime npu); "
                                 "the report without --runtime npu predicts llama.cpp")
    if rt["id"] == "llama.cpp" and "llama.cpp" in bench_runtimes:
        measured = "; also measured by slmplan bench (see Predicted vs measured)"
    else:
        measured = ""
    if kind == "predicted" and device.effective_backend in rt.get("predicted_backends", []):
        s = best.speed
        ttft = f", first token after ~{s.ttft_s:.1f} s" if s.prefill_tokens_per_s and s.ttft_s is not None else ""
        dec = f"~{s.decode_tokens_per_s:.1f} tokens/s decode" if s.decode_tokens_per_s else "decode speed unknown"
        if device.effective_backend in ("cuda", "vulkan"):
            measured += " (GPU constants fitted on Apple Metal data: less certain on this GPU)"
        return "predicted", (f"predicted for {best.model} {best.quant} on {device.effective_backend}: "
                             f"{dec}{ttft}{measured}")
    if kind == "predicted":
        return "not predicted", f"not predicted: slmplan models llama.cpp on {', '.join(rt['predicted_backends'])}, not here"
    if kind == "measured-only":
        if rt["id"] == "onnxruntime-genai" and any("onnx" in r.lower() for r in bench_runtimes):
            return "measured", "measured by slmplan bench on the benchmark machine (see the runtimes table); not predicted"
        return "not predicted", "not predicted; slmplan bench --runtime onnx measures it on a machine that runs slmplan"
    return "not predicted", "not predicted: slmplan does not model this runtime"


def _downloads(models: list[str], ranked: list[FitResult]) -> list[Download]:
    out: list[Download] = []
    try:
        cat = load_catalog()
    except SlmplanError:
        return out
    by_key = {(r.model, r.quant): r for r in ranked}
    for mid in models:
        try:
            m = get_model(cat, mid)
        except SlmplanError:
            continue
        for v in m.variants:
            if v.size_bytes:
                size = Figure(value=float(v.size_bytes), unit="bytes", source=f"published: {v.source}")
            elif (mid, v.quant) in by_key:
                mem = by_key[(mid, v.quant)].memory
                m_ = mem.weights_method or ""
                src = m_ if m_.startswith(("estimate", "measured")) else f"estimate: {m_ or 'slmplan weights'}"
                value = float(mem.weights_bytes)
                f = facts(m)
                if v.format == "GGUF" and mem.per_layer_embd == "mapped":
                    value += mem.per_layer_embd_bytes  # in the file even when the runtime leaves it in storage
                if f.n_layer_nextn and v.format == "GGUF":  # a recent llama.cpp conversion holds the MTP block too
                    value += f.mtp_bytes(v.quant)
                    src += "; with the multi-token-prediction block llama.cpp's converter keeps (not loaded)"
                size = Figure(value=value, unit="bytes", source=src)
            else:
                size = Figure(value=None, unit="bytes", source="unknown")
            out.append(Download(model=mid, quant=v.quant, format=v.format, size=size))
    return out


def deployment(device: DeviceProfile, pick_results: list[FitResult], ranked: list[FitResult],
               bench_runtimes: set[str]) -> Deployment | None:
    if not pick_results:
        return None
    from slmplan.convert import SUPPORTED_ARCHS  # light: stdlib only at import

    plat = platform_of(device)
    models = list(dict.fromkeys(r.model for r in pick_results))
    archs = {m: _arch(m) for m in models}
    best = pick_results[0]
    options, notes = [], []
    for rt in runtimes():
        if plat not in rt["backends"] or not _soc_ok(rt, device):
            continue
        supported = rt["architectures"]
        runs = [m for m in models if supported == "all" or archs[m] in supported]
        if not runs:
            notes.append(f"{rt['name']}: not documented for {', '.join(f'{m} ({archs[m]})' for m in models)}.")
            continue
        status, speed = _speed_note(rt, device, best, bench_runtimes, runs)
        conv = bool(rt.get("slmplan_convert")) and all(archs[m] in SUPPORTED_ARCHS for m in runs)
        produce = rt["produce"]
        if rt.get("slmplan_convert") and not conv:
            produce += " (slmplan convert does not handle " + ", ".join(
                f"{m} ({archs[m]})" for m in runs if archs[m] not in SUPPORTED_ARCHS) + ": use the upstream builder)"
        only = "" if len(runs) == len(models) else f" (documented for {', '.join(runs)} only)"
        options.append(RuntimeOption(
            runtime=rt["name"] + only, backend=rt["backends"][plat], format=rt["format"], produce=produce,
            slmplan_convert=conv, slmplan=status, speed_note=speed, source=rt["source"]))
    if any(o.slmplan == "predicted" and not o.runtime.startswith("llama.cpp") for o in options):
        notes.append("slmplan predicts llama.cpp and, with --runtime npu, the NPU paths marked predicted (an estimate "
                     "fitted on published NPU measurements); for the other runtimes measure on the target device "
                     "(their speed depends on the runtime version and the accelerator it uses).")
    else:
        notes.append("Only llama.cpp speeds are predicted by slmplan; for the other runtimes measure on the target device "
                     "(their speed depends on the runtime version and the accelerator it uses).")
    return Deployment(platform=PLATFORM_NAMES[plat], models=models, options=options,
                      downloads=_downloads(models, ranked), notes=notes)
