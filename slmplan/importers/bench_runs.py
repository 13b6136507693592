"""llama-bench rows as slmplan BenchRun objects, so that `report --bench` shows them like its own runs:
one run per model file, each test with the planner's prediction for the report's device."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from slmplan.schema.bench import BenchRun, BenchSettings, Prediction, TestResult
from slmplan.schema.device import DeviceProfile


def is_slmplan_bench(path: str) -> bool:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    # a JSON object that is not one llama-bench -o jsonl row: slmplan's loader names what is wrong with it
    return isinstance(data, dict) and "avg_ts" not in data


def runs_from_llama_bench(path: str, device: DeviceProfile | None, catalog_path: str | None = None) -> list[BenchRun]:
    from slmplan.device_calibration import predict_row
    from slmplan.importers.identify import identify_rows
    from slmplan.importers.llama_bench import read_bench_file

    f = read_bench_file(path)
    identify_rows(f.rows, catalog_path)
    groups: dict[tuple, list] = {}
    for r in f.rows:
        groups.setdefault((r.model_label, r.model_id, r.quant, r.threads, r.backends), []).append(r)
    runs = []
    for (label, mid, quant, threads, backends), rows in groups.items():
        r0 = rows[0]
        results, warnings = [], [f"read from llama-bench output {path} ({f.format}); model identified as {mid} {quant}"]
        warnings += [f"skipped {s}" for s in f.skipped]
        for r in rows:
            pred = predict_row(r, device, catalog_path) if device else None
            samples = list(r.samples_ts)
            results.append(TestResult(
                test=r.test.replace(" ", ""), n_prompt=r.n_prompt, n_gen=r.n_gen, n_depth=r.n_depth,
                tokens_per_s_mean=r.tokens_per_s, tokens_per_s_std=r.tokens_per_s_std or 0.0, samples=samples,
                samples_ns=list(r.samples_ns),
                tokens_per_s_median=statistics.median(samples) if samples else r.tokens_per_s,
                flash_attn=r.flash_attn, predicted_tokens_per_s=round(pred, 2) if pred else None,
                ratio_measured_to_predicted=round(r.tokens_per_s / pred, 3) if pred else None))
        if not r0.samples_ts:
            warnings.append("llama-bench's table gives mean ± std only: the median shown is the mean")
        pred_info = None
        if device:
            method = device.calibration.method if device.calibration else "slmplan speed model (shipped constants)"
            from slmplan.estimate.speed import hardware_for

            hw = hardware_for(device)
            pred_info = Prediction(device=device.id, constants="device calibration" if device.calibration else "shipped",
                                   bandwidth_gbs=device.memory_bandwidth_gbs, cpu_gflops=device.cpu_gflops, method=method,
                                   cpu_quant_gflops=device.cpu_quant_gflops, cpu_kernels=hw.cpu_kernels)
        runs.append(BenchRun(
            runtime=f"llama-bench (llama.cpp {r0.build or 'build unknown'}, {backends or 'backend unknown'})",
            model=mid, model_path=r0.model_filename or label, model_desc=r0.model_type or "", quant=quant,
            n_params=r0.model_n_params, model_size_bytes=r0.model_size, threads=threads or 0,
            settings=BenchSettings(threads=threads or 0, n_batch=r0.n_batch or 0, n_ubatch=r0.n_ubatch or 0,
                                   flash_attn=r0.flash_attn or "unknown", type_k=r0.type_k or "f16",
                                   type_v=r0.type_v or "f16", reps=len(r0.samples_ts), warmup=True, repack=r0.repack),
            results=results, system={k: v for k, v in (("cpu_model", r0.cpu_info), ("gpu", r0.gpu_info),
                                                        ("backends", backends)) if v},
            prediction=pred_info, warnings=warnings))
    return runs
