"""The report's charts as inline SVG strings (matplotlib, Agg; text kept as text, no timestamps)."""

from __future__ import annotations

import io

from slmplan.schema.report import Report

GIB = 1 << 30
COLORS = {"weights": "#4C72B0", "kv": "#DD8452", "compute": "#55A868", "overhead": "#8172B3",
          "budget": "#C44E52", "pred": "#9DB4D8", "meas": "#2F4B7C"}


def _plt():
    try:
        import matplotlib
    except ImportError:
        from slmplan.errors import MissingExtraError

        raise MissingExtraError("matplotlib", "report", "Charts in the HTML report") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "slmplan", "font.size": 9,
                         "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _svg(fig, plt) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": "slmplan"})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: inline in HTML


def memory_breakdown(r: Report) -> str | None:
    cands = r.candidates[:10]
    if not cands:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(cands) + 1.2))
    labels = [f"{c.model} {c.quant}" for c in cands][::-1]
    parts = [("weights", "weights"), ("KV cache", "kv_cache"), ("compute", "compute"), ("overhead", "overhead")]
    left = [0.0] * len(cands)
    for (name, attr), color in zip(parts, ("weights", "kv", "compute", "overhead")):
        vals = [(getattr(c, attr).value or 0) / GIB for c in cands][::-1]
        ax.barh(labels, vals, left=left, color=COLORS[color], label=name)
        left = [a + b for a, b in zip(left, vals)]
    if cands[0].budget.value is not None:
        budget = cands[0].budget.value / GIB
        ax.axvline(budget, color=COLORS["budget"], linestyle="--", linewidth=1.5, label=f"budget {budget:.2f} GiB")
    ax.set_xlabel("GiB (predicted)")
    ax.set_title("Memory breakdown against the device's budget")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return _svg(fig, plt)


def speed_vs_memory(r: Report) -> str | None:
    # unknown speed or memory: no point rather than a point at 0
    pts = [c for c in r.candidates if c.decode_tokens_per_s.value and c.total.value is not None]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    by_model: dict[str, list] = {}
    for c in pts:
        by_model.setdefault(c.model, []).append(c)
    for model, cs in by_model.items():
        cs.sort(key=lambda c: c.total.value)
        xs = [c.total.value / GIB for c in cs]
        ys = [c.decode_tokens_per_s.value for c in cs]
        lo = [y - (c.decode_tokens_per_s_low.value or y) for c, y in zip(cs, ys)]
        hi = [(c.decode_tokens_per_s_high.value or y) - y for c, y in zip(cs, ys)]
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=model)
        for c, x, y in zip(cs, xs, ys):
            ax.annotate(c.quant, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if pts[0].budget.value is not None:
        ax.axvline(pts[0].budget.value / GIB, color=COLORS["budget"], linestyle="--", linewidth=1.5, label="budget")
    ax.set_xlabel("predicted total memory (GiB)")
    ax.set_ylabel("decode tokens/s (predicted, low-high)")
    ax.set_title("Speed against memory across quants")
    ax.legend(fontsize=7, frameon=False)
    return _svg(fig, plt)


def predicted_vs_measured(r: Report) -> str | None:
    rows = [m for m in r.measured if m.measured_tokens_per_s.value]
    meas = [m.measured_tokens_per_s.value or 0.0 for m in rows][::-1]  # filtered above: never 0 here
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.3))
    labels = [f"{m.model} {m.test}" for m in rows][::-1]
    # unknown prediction: no bar (height 0) and no ratio, not a ratio against 0
    pred = [m.predicted_tokens_per_s.value or 0.0 for m in rows][::-1]
    y = range(len(rows))
    ax.barh([i + 0.2 for i in y], pred, height=0.4, color=COLORS["pred"], label="predicted")
    ax.barh([i - 0.2 for i in y], meas, height=0.4, color=COLORS["meas"], label="measured")
    ax.set_yticks(list(y), labels)
    for i, (mv, pv) in enumerate(zip(meas, pred)):
        if pv:
            ax.annotate(f"x{mv / pv:.2f}", (max(mv, pv), i), textcoords="offset points", xytext=(4, -3), fontsize=7)
    ax.set_xlabel("tokens/s")
    ax.set_title("Predicted vs measured (ratio = measured / predicted)")
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    return _svg(fig, plt)


def kv_growth(r: Report) -> str | None:
    k = r.kv_growth
    if not k or not k.points:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    xs = [p.ctx for p in k.points]
    ax.plot(xs, [p.kv_cache_bytes / GIB for p in k.points], marker="o", color=COLORS["kv"], label="KV cache")
    ax.plot(xs, [p.total_bytes / GIB for p in k.points], marker="o", color=COLORS["weights"], label="total")
    ax.axhline(k.budget_bytes / GIB, color=COLORS["budget"], linestyle="--", linewidth=1.5, label="budget")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("GiB (predicted)")
    ax.set_title(f"Context length effect: {k.model} {k.quant}")
    ax.legend(fontsize=8, frameon=False)
    return _svg(fig, plt)


def all_charts(r: Report) -> dict[str, str]:
    out = {}
    for name, fn in (("memory", memory_breakdown), ("speed", speed_vs_memory), ("measured", predicted_vs_measured),
                     ("kv", kv_growth)):
        svg = fn(r)
        if svg:
            out[name] = svg
    return out
