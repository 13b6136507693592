"""`bench --calibrate`: calibrate this machine's profile on its own benchmarks, with the same fit as
`slmplan calibrate` (slmplan.device_calibration).

The run's complete tests become the same rows `slmplan calibrate` reads from a `slmplan bench -o` JSON; the
rows of earlier calibrating runs with the same settings (threads, flash attention, KV types) are kept, a test
measured again replaces its older row, and the whole set is fitted again on the detected 'local' profile. The
resulting ``calibration:`` block is stored in ``<cache>/local_calibration.json``; ``--device local`` (fit,
plan, report, later benchmarks' predictions) is the detected profile with it and says "calibrated on N
measurements from slmplan bench ...".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from slmplan.calibration_store import load_local_calibration, local_calibration_path
from slmplan.errors import BadInputError, SlmplanError
from slmplan.fileio import write_atomic
from slmplan.importers.llama_bench import BenchRow, rows_from_bench_run
from slmplan.schema.bench import BenchRun
from slmplan.schema.calibration import DeviceCalibration
from slmplan.schema.device import DeviceProfile

_LLAMA_BENCH_BACKEND = {"cpu": "CPU", "cuda": "CUDA", "metal": "Metal", "vulkan": "Vulkan"}


def source_name(run: BenchRun) -> str:
    return f"slmplan bench {Path(run.model_path).name}"


def run_rows(run: BenchRun, catalog_path: str | None = None) -> list[BenchRow]:
    """The run's complete tests as identified rows: the catalog model when the file is one, else the file's own
    facts (the calibration reads them from the GGUF while it is there)."""
    from slmplan.importers.identify import identify

    rows, _ = rows_from_bench_run(run, source_name(run))
    for r in rows:
        try:
            r.model_id, r.quant = identify(r, catalog_path)
        except BadInputError:  # not a catalog model: named by its file
            r.model_id, r.quant = Path(run.model_path).stem, run.quant
    return [r for r in rows if r.quant]


def _stored_rows(cal: DeviceCalibration) -> list[BenchRow]:
    """The rows an earlier calibration was fitted on, with the settings it recorded."""
    return [BenchRow(source=r.source, n_prompt=r.n_prompt, n_gen=r.n_gen, n_depth=r.n_depth,
                     tokens_per_s=r.measured_tokens_per_s, model_id=r.model, quant=r.quant, gguf_path=r.gguf_path,
                     threads=cal.threads, backends=_LLAMA_BENCH_BACKEND.get(cal.backend, cal.backend), n_gpu_layers=0,
                     flash_attn=cal.flash_attn, type_k=cal.type_k, type_v=cal.type_v, repack=cal.repack)
            for r in cal.residuals]


def _same_test(a: BenchRow, b: BenchRow) -> bool:
    """The same test of the same model (files of one catalog model have its shapes, so its speed)."""
    return (a.model_id, a.quant, a.n_prompt, a.n_gen, a.n_depth) == (b.model_id, b.quant, b.n_prompt, b.n_gen, b.n_depth)


def merged_rows(new: list[BenchRow], old: DeviceCalibration | None) -> tuple[list[BenchRow], list[str], list[str]]:
    """This run's rows plus the stored ones measured with the same settings that it did not measure again;
    returns the rows, their sources and notes."""
    notes: list[str] = []
    sources = sorted({r.source.rsplit(":results[", 1)[0] for r in new})
    if old is None or not new:
        return new, sources, notes
    n0 = new[0]
    same = ((old.threads, old.flash_attn, old.type_k, old.type_v, old.repack)
            == (n0.threads, n0.flash_attn, n0.type_k, n0.type_v, n0.repack))
    if not same:
        notes.append(f"the stored calibration measured other settings ({old.threads} threads, fa {old.flash_attn}, "
                     f"kv {old.type_k}/{old.type_v}, repack {old.repack}): replaced by this run's")
        return new, sources, notes
    kept = [r for r in _stored_rows(old) if not any(_same_test(r, n) for n in new)]
    kept_sources = [f for f in old.files if any(r.source.startswith(f + ":") for r in kept)]
    return kept + new, kept_sources + [s for s in sources if s not in kept_sources], notes


def _has_facts(row: BenchRow, catalog_path: str | None) -> bool:
    from slmplan.device_calibration import measured_facts

    try:
        measured_facts(row.model_id or "", catalog_path, row.gguf_path)
    except BadInputError:
        return False
    return True


def calibrate_local(run: BenchRun, base: DeviceProfile, catalog_path: str | None = None,
                    now: str | None = None) -> tuple[DeviceCalibration, list[str]] | None:
    """Fit ``base`` (the detected local profile, without a calibration) on this run and the stored rows, store the
    calibration and return it with notes; None when the run has no complete test to calibrate on."""
    from slmplan.device_calibration import calibrate_rows

    new = run_rows(run, catalog_path)
    if not new:
        return None
    rows, sources, notes = merged_rows(new, load_local_calibration())
    lost = [r for r in rows if r not in new and not _has_facts(r, catalog_path)]
    if lost:
        notes.append(f"dropped {len(lost)} stored measurement(s) of {', '.join(sorted({r.model_id or '?' for r in lost}))}: "
                     "the file is gone and no catalog entry describes it")
        rows = [r for r in rows if r not in lost]
    base = base.model_copy(update={"calibration": None})
    dev, more = calibrate_rows(rows, base, sources, catalog_path, now)
    cal = dev.calibration
    assert cal is not None  # calibrate_rows raises when there is nothing to fit
    _store(cal)
    return cal, notes + more


def _store(cal: DeviceCalibration) -> None:
    path = local_calibration_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(cal.model_dump(exclude_none=True), indent=1))
    except (OSError, SlmplanError) as e:  # after a whole benchmark: warn, never lose its results
        why = e.message if isinstance(e, SlmplanError) else (e.strerror or str(e))
        sys.stderr.write(f"Warning: could not store the calibration in {path} ({why}); set SLMPLAN_CACHE_DIR "
                         "to a writable folder.\n")
