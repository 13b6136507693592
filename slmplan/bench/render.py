"""Bench results as JSON, CSV, Markdown or a rich table; files are written atomically."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rich.console import JustifyMethod
from rich.table import Table

from slmplan.schema.bench import BenchRun
from slmplan.textsafe import for_rich

MIB = 1 << 20
FORMATS = ("table", "json", "csv", "md")


def format_for_path(path: str) -> str | None:
    ext = Path(path).suffix.lower()
    return {".json": "json", ".csv": "csv", ".md": "md", ".markdown": "md"}.get(ext)


def to_json(run: BenchRun) -> str:
    return json.dumps(run.model_dump(), indent=2) + "\n"


def _mib(n: int | float | None) -> str:
    return "" if n is None else f"{n / MIB:.2f}"


def _f(x: float | None, d: int = 2) -> str:
    return "" if x is None else f"{x:.{d}f}"


CSV_COLUMNS = ["model", "quant", "runtime", "threads", "n_batch", "n_ubatch", "flash_attn", "test", "n_prompt", "n_gen",
               "n_depth", "reps", "tokens_per_s_mean", "tokens_per_s_std", "tokens_per_s_median",
               "predicted_tokens_per_s", "ratio_measured_to_predicted", "kv_cache_bytes", "compute_bytes",
               "peak_rss_bytes", "complete", "samples"]


def to_csv(run: BenchRun) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    rows = [(r.test, r.n_prompt, r.n_gen, r.n_depth, len(r.samples), r.tokens_per_s_mean, r.tokens_per_s_std,
             r.tokens_per_s_median, r.predicted_tokens_per_s, r.ratio_measured_to_predicted,
             r.buffers.kv_cache_bytes, r.buffers.compute_bytes, r.flash_attn, r.complete,
             ";".join(str(x) for x in r.samples)) for r in run.results]
    for (test, npp, ntg, nd, reps, mean, std, med, pred, ratio, kv, comp, fa, complete, samples) in rows:
        w.writerow([run.model, run.quant, run.runtime, run.threads, run.settings.n_batch, run.settings.n_ubatch,
                    fa or run.settings.flash_attn, test, npp, ntg, nd, reps, mean, std, med, pred, ratio, kv, comp,
                    run.memory.peak_rss_bytes, complete, samples])
    return buf.getvalue()


def to_markdown(run: BenchRun) -> str:
    lines = [f"## slmplan bench: {Path(run.model_path).name}", "",
             f"{run.model_desc} | {run.runtime} | threads {run.threads} | n_batch {run.settings.n_batch} | "
             f"n_ubatch {run.settings.n_ubatch} | flash_attn {run.settings.flash_attn} | reps {run.settings.reps}"
             f"{' | repack ' + ('on' if run.settings.repack else 'off') if run.settings.repack is not None else ''}", "",
             "| test | t/s (mean ± std) | median | predicted | measured/predicted | KV MiB | compute MiB |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in run.results:
        lines.append(f"| {r.test}{'' if r.complete else ' (partial)'} | {r.tokens_per_s_mean:.2f} ± {r.tokens_per_s_std:.2f} "
                     f"| {r.tokens_per_s_median:.2f} | {_f(r.predicted_tokens_per_s)} | {_f(r.ratio_measured_to_predicted)} "
                     f"| {_mib(r.buffers.kv_cache_bytes)} | {_mib(r.buffers.compute_bytes)} |")
    if run.ttft:
        t = run.ttft
        lines += ["", f"Time to first token ({t.prompt_tokens}-token prompt): {t.ttft_s_median * 1000:.1f} ms median "
                  f"(predicted {_f(t.predicted_ttft_s and t.predicted_ttft_s * 1000, 1) or 'unknown'} ms)"]
    m = run.memory
    lines += ["", f"Memory: peak RSS {_mib(m.peak_rss_bytes)} MiB (anonymous {_mib(m.rss_anon_bytes)}, file-backed "
              f"{_mib(m.rss_file_bytes)}); weights mapped {_mib(m.weights_mapped_bytes)} MiB, repacked "
              f"{_mib(m.weights_repacked_bytes) or '0'} MiB; load {run.load_s} s"]
    sysi = run.system
    lines += ["", f"System: {sysi.get('cpu_model')} ({sysi.get('logical_cores')} logical cores), "
              f"{_mib(sysi.get('ram_total_bytes'))} MiB RAM, {sysi.get('os')}, llama-cpp-python "
              f"{sysi.get('versions', {}).get('llama_cpp_python')}"]
    if run.prediction:
        lines += ["", f"Predictions: {run.prediction.method}."]
    for w in run.warnings:
        lines += ["", f"> **Warning:** {w}"]
    if run.interrupted:
        lines += ["", "> **Interrupted:** only the samples measured before Ctrl-C are included."]
    return "\n".join(lines) + "\n"


def render(run: BenchRun, fmt: str) -> str:
    return {"json": to_json, "csv": to_csv, "md": to_markdown}[fmt](run)


def _repack_label(run: BenchRun) -> str:
    r = run.settings.repack
    if r is None:
        return ""
    return ", repack " + ("on" if r else "OFF (slmplan's fallback: see warning)" if run.settings.repack_reason else "off")


def tables(run: BenchRun) -> list[Table]:
    t = Table(title=for_rich(f"{Path(run.model_path).name} - {run.model_desc} - {run.runtime}, {run.threads} threads{_repack_label(run)}"),
              caption=for_rich(f"Warning: not llama.cpp's default configuration: {run.settings.repack_reason}")
              if run.settings.repack_reason else None)
    cols: tuple[tuple[str, JustifyMethod], ...] = (
        ("test", "left"), ("t/s mean ± std", "right"), ("median", "right"), ("predicted", "right"),
        ("meas/pred", "right"), ("KV MiB", "right"), ("compute MiB", "right"))
    for col, just in cols:
        t.add_column(col, justify=just)
    for r in run.results:
        ratio = r.ratio_measured_to_predicted
        style = "" if ratio is None else ("green" if 0.8 <= ratio <= 1.25 else "yellow")
        t.add_row(r.test + ("" if r.complete else " (partial)"), f"{r.tokens_per_s_mean:,.2f} ± {r.tokens_per_s_std:,.2f}",
                  f"{r.tokens_per_s_median:,.2f}", _f(r.predicted_tokens_per_s) or "unknown",
                  f"[{style}]{_f(ratio)}[/]" if ratio else "-", _mib(r.buffers.kv_cache_bytes), _mib(r.buffers.compute_bytes))
    out = [t]
    m = run.memory
    mt = Table(title="Memory (MiB)", show_header=True)
    for col in ("what", "measured", "predicted"):
        mt.add_column(col, justify="right" if col != "what" else "left")
    if m.weights_mapped_bytes is not None:
        mt.add_row("weights (mapped)", _mib(m.weights_mapped_bytes), _mib(m.predicted_weights_bytes))
        mt.add_row("weights (repacked copy: " + (", ".join(sorted(m.extra_buffers)) or "none") + ")",
                   _mib(m.weights_repacked_bytes) or "0.00", _mib(m.predicted_repack_bytes))
    elif run.model_size_bytes:
        mt.add_row("model files on disk", _mib(run.model_size_bytes), "")
    worst = max(run.results, key=lambda r: r.buffers.compute_bytes or 0, default=None)
    if worst and worst.buffers.kv_cache_bytes is not None:
        mt.add_row(f"KV cache ({worst.test})", _mib(worst.buffers.kv_cache_bytes), _mib(worst.buffers.predicted_kv_cache_bytes))
        mt.add_row(f"compute + output ({worst.test})",
                   _mib((worst.buffers.compute_bytes or 0) + (worst.buffers.output_bytes or 0)),
                   _mib(worst.buffers.predicted_compute_bytes))
    mt.add_row("process peak RSS", _mib(m.peak_rss_bytes), "")
    mt.add_row("  anonymous / file-backed (end)", f"{_mib(m.rss_anon_bytes)} / {_mib(m.rss_file_bytes)}", "")
    out.append(mt)
    return out


def summary_lines(run: BenchRun) -> list[str]:
    lines = []
    if run.ttft:
        t = run.ttft
        pred = f", predicted {t.predicted_ttft_s * 1000:.0f} ms" if t.predicted_ttft_s else ""
        lines.append(f"Time to first token: {t.ttft_s_median * 1000:.1f} ms median for a {t.prompt_tokens}-token "
                     f"{'chat ' if t.chat_template else ''}prompt{pred}")
    lines.append(f"Load {run.load_s} s. Predictions: {run.prediction.method}." if run.prediction else f"Load {run.load_s} s.")
    return lines
