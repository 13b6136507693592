"""`slmplan bench` against llama.cpp's own llama-bench: same model, threads, build; alternated.

Builds llama-bench from the installed llama-cpp-python's sdist once (see llama_bench_build.py; it
runs on the very same shared libraries), then for each bundled test model runs, round after round,
llama-bench and `slmplan bench` with identical settings (pp512 / tg128, 5 repetitions, warmup, same
threads), in ABBA order so slow drifts of a shared machine cancel. Prints, per model and test, the
per-round ratio slmplan/llama-bench of the mean tokens/s and its median, plus the ratio of the best
single samples (the least disturbed repetition of each tool: robust on a noisy shared machine);
exits 1 if a median ratio is outside 1 +- tol.

    python benchmarks/bench_vs_llama_bench.py [--rounds 4] [--threads 2] [--tol 0.03] [--json out.json]

Never run this while anything else heavy runs on the machine (a build, another benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from llama_bench_build import bench_env, ensure_llama_bench, linked_libs  # noqa: E402

from slmplan.bench.crash import describe_exit  # noqa: E402
from slmplan.testmodels import gemma3_path, smollm2_path  # noqa: E402


def run_llama_bench(exe: Path, model: Path, threads: int, pp: int, tg: int, reps: int, repack: int) -> dict[str, float]:
    cmd = [str(exe), "-m", str(model), "-t", str(threads), "-p", str(pp), "-n", str(tg), "-r", str(reps), "-o", "json",
           "--repack", str(repack)]
    r = subprocess.run(cmd, env=bench_env(), capture_output=True, text=True, check=True)
    out = {}
    for row in json.loads(r.stdout):
        name = f"pp{row['n_prompt']}" if row["n_gen"] == 0 else f"tg{row['n_gen']}"
        out[name] = (row["avg_ts"], row["samples_ts"])
    return out


def choose_repack(exe: Path, model: Path, wanted: str) -> tuple[int, str]:
    """Both sides must run with the same repack setting. 'auto': llama.cpp's default (1), unless
    llama-bench itself dies with it (the AMX path on some Xeon VMs: SIGILL on some, SIGSEGV on others)."""
    if wanted in ("0", "1"):
        return int(wanted), "set with --repack"
    r = subprocess.run([str(exe), "-m", str(model), "-p", "16", "-n", "0", "-r", "1", "--repack", "1", "-o", "json"],
                       env=bench_env(), capture_output=True, text=True)
    code = r.returncode if r.returncode <= 128 else 128 - r.returncode  # a shell reports signal N as 128 + N
    ex = describe_exit(code)
    if ex.native_crash:
        return 0, f"llama-bench --repack 1 {ex.description.removeprefix('it ')} on this CPU"
    return 1, "llama.cpp's default"


def run_slmplan(model: Path, threads: int, pp: int, tg: int, reps: int, repack: int) -> tuple[dict[str, float], list[str]]:
    cmd = [sys.executable, "-m", "slmplan.cli.main", "bench", str(model), "--threads", str(threads), "--pp", str(pp),
           "--tg", str(tg), "--reps", str(reps), "--no-ttft", "--format", "json", "--repack", str(repack)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=True, env=dict(os.environ))
    d = json.loads(r.stdout)
    return {x["test"]: (x["tokens_per_s_mean"], x["samples"]) for x in d["results"]}, d["warnings"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--pp", type=int, default=512)
    ap.add_argument("--tg", type=int, default=128)
    ap.add_argument("--tol", type=float, default=0.03)
    ap.add_argument("--models", default="smollm2-135m,gemma-3-270m")
    ap.add_argument("--json", help="write all samples and ratios here")
    ap.add_argument("--repack", choices=["auto", "0", "1"], default="auto",
                    help="llama.cpp's repacked CPU weights on both sides (auto: 1 unless llama-bench dies with it)")
    ap.add_argument("--control", action="store_true",
                    help="also run llama-bench a second time per round (A/A): the noise floor of the machine")
    a = ap.parse_args()

    exe = ensure_llama_bench(log=lambda m: print(m, file=sys.stderr))
    print(f"llama-bench: {exe}")
    for line in linked_libs(exe):
        print(f"  {line}")
    paths = {"smollm2-135m": smollm2_path, "gemma-3-270m": gemma3_path}
    report: dict = {"threads": a.threads, "reps": a.reps, "rounds": a.rounds, "models": {},
                    "when": time.strftime("%Y-%m-%d %H:%M"), "cpu": _cpu()}
    ok = True
    for mid in a.models.split(","):
        model = paths[mid]()
        repack, why = choose_repack(exe, model, a.repack)
        print(f"{mid}: both sides with --repack {repack} ({why})", flush=True)
        lb_runs, sp_runs, aa_runs, warns = [], [], [], []
        for i in range(a.rounds):
            order = ["lb", "sp"] + (["aa"] if a.control else [])
            if i % 2:
                order.reverse()  # ABBA
            for who in order:
                if who == "lb":
                    lb_runs.append(run_llama_bench(exe, model, a.threads, a.pp, a.tg, a.reps, repack))
                elif who == "aa":
                    aa_runs.append(run_llama_bench(exe, model, a.threads, a.pp, a.tg, a.reps, repack))
                else:
                    res, w = run_slmplan(model, a.threads, a.pp, a.tg, a.reps, repack)
                    sp_runs.append(res)
                    warns += w
            print(f"{mid} round {i + 1}/{a.rounds}: llama-bench {_fmt(lb_runs[-1])} | slmplan {_fmt(sp_runs[-1])}",
                  flush=True)
        tests = {}
        for t in lb_runs[0]:
            ratios = [s[t][0] / lb[t][0] for s, lb in zip(sp_runs, lb_runs)]
            med = statistics.median(ratios)
            best_lb = max(x for run in lb_runs for x in run[t][1])
            best_sp = max(x for run in sp_runs for x in run[t][1])
            tests[t] = {"llama_bench_mean_tps": [round(x[t][0], 2) for x in lb_runs],
                        "slmplan_mean_tps": [round(x[t][0], 2) for x in sp_runs],
                        "ratios": [round(r, 4) for r in ratios], "median_ratio": round(med, 4),
                        "best_sample_ratio": round(best_sp / best_lb, 4),
                        "llama_bench_best_tps": round(best_lb, 2), "slmplan_best_tps": round(best_sp, 2)}
            if aa_runs:
                aa = [c[t][0] / lb[t][0] for c, lb in zip(aa_runs, lb_runs)]
                tests[t]["control_ratios"] = [round(r, 4) for r in aa]
                tests[t]["control_median_ratio"] = round(statistics.median(aa), 4)
            ok &= abs(med - 1) <= a.tol
        report["models"][mid] = {"file": model.name, "tests": tests, "repack": repack, "repack_reason": why, "slmplan_warnings": sorted(set(warns))}
    print()
    print(f"{'model':<14} {'test':<6} {'llama-bench':>12} {'slmplan':>9} {'median ratio':>13} {'best-sample ratio':>18}  per-round ratios")
    for mid, m in report["models"].items():
        for t, v in m["tests"].items():
            print(f"{mid:<14} {t:<6} {statistics.median(v['llama_bench_mean_tps']):>12.2f} "
                  f"{statistics.median(v['slmplan_mean_tps']):>9.2f} {v['median_ratio']:>13.4f} "
                  f"{v['best_sample_ratio']:>18.4f}  {', '.join(f'{r:.3f}' for r in v['ratios'])}")
            if "control_ratios" in v:
                print(f"{'':<14} {'(A/A)':<6} {'llama-bench vs itself':>36} {v['control_median_ratio']:>6.4f} {'':>18}  "
                      f"{', '.join(f'{r:.3f}' for r in v['control_ratios'])}")
        for w in m["slmplan_warnings"]:
            print(f"  warning during {mid}: {w}")
    print(f"\nmachine: {report['cpu']}; threads {a.threads}; {a.rounds} rounds x {a.reps} reps; tolerance +-{a.tol:.0%}: "
          + ("PASS" if ok else "FAIL"))
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1))
    return 0 if ok else 1


def _fmt(d: dict) -> str:
    return ", ".join(f"{k} {v[0]:.2f}" for k, v in d.items())


def _cpu() -> str:
    from slmplan.localdevice import cpu_info

    c = cpu_info()
    return f"{c['model']}, {c['logical_cores']} logical cores"


if __name__ == "__main__":
    sys.exit(main())
