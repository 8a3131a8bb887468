"""The report's figures, drawn with matplotlib into inline PNGs: training curves, the data
efficiency of the probe beside its baselines, the symmetry heat map.

Matplotlib is used through ``matplotlib.figure.Figure`` and the Agg canvas directly, never
pyplot, so the report neither needs nor changes the global backend.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from replab.eval.parts.baselines import BaselinesResult
from replab.eval.parts.linear_probe import LinearProbeResult
from replab.eval.parts.probe_curves import ProbeScore, baseline_name, sorted_fractions
from replab.eval.parts.robustness import RobustnessResult
from replab.eval.parts.symmetry import SymmetryResult
from replab.eval.results import number
from replab.report.format import mpl_text
from replab.report.runs import RunView, series

MAX_PLOT_POINTS = 4000  # longer curves are thinned (evenly, keeping the last point)
DPI = 100


def fig_uri(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def file_uri(path: Path) -> str | None:
    """A data URI for an image file, by its content (PNG/JPEG/GIF magic), else None."""
    data = path.read_bytes()
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        mime = "image/png"
    elif data.startswith(b"\xff\xd8\xff"):
        mime = "image/jpeg"
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        mime = "image/gif"
    else:
        return None
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _thin(xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    if len(xs) <= MAX_PLOT_POINTS:
        return xs, ys
    step = math.ceil(len(xs) / MAX_PLOT_POINTS)
    idx = list(range(0, len(xs), step))
    if idx[-1] != len(xs) - 1:
        idx.append(len(xs) - 1)
    return [xs[i] for i in idx], [ys[i] for i in idx]


def _curve_keys(all_keys: Iterable[str]) -> list[str]:
    keys = list(dict.fromkeys(all_keys))
    first = [k for k in ("loss",) if k in keys]
    last = [k for k in ("lr", "samples_per_s") if k in keys]
    middle = sorted(k for k in keys if k not in first and k not in last)
    return first + middle + last


def _figure(
    width: float, height: float, *, left: float, right: float, bottom: float, top: float
) -> Figure:
    """A Figure with fixed margins in inches (matplotlib's layout engines are slow)."""
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height
    )
    return fig


def curves_plot(runs: list[RunView]) -> str | None:
    """Training curves: one panel per logged scalar vs step, one line per run."""
    per_run = [series(r) for r in runs]
    keys = _curve_keys(k for s in per_run for k in s)
    if not keys:
        return None
    ncols = min(3, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    legend_h = 0.35 if len(runs) > 1 else 0.0
    gap_w, gap_h, left, right, bottom, top = 0.75, 0.8, 0.7, 0.15, 0.45, 0.35 + legend_h
    width, height = 3.6 * ncols, 2.0 * nrows + (nrows - 1) * gap_h + bottom + top
    fig = _figure(width, height, left=left, right=right, bottom=bottom, top=top)
    axes_w = (width - left - right - (ncols - 1) * gap_w) / ncols
    fig.subplots_adjust(wspace=gap_w / axes_w, hspace=gap_h / 2.0)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(keys) :]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, keys, strict=False):
        values = []
        for i, (run, s) in enumerate(zip(runs, per_run, strict=True)):
            if key not in s:
                continue
            xs, ys = _thin(*s[key])
            values.extend(y for y in ys if math.isfinite(y))
            ax.plot(xs, ys, color=f"C{i % 10}", lw=1.2, label=mpl_text(run.name))
        finite_pos = [v for v in values if v > 0]
        if values and len(finite_pos) == len(values) and max(values) / min(values) > 100:
            ax.set_yscale("log")
        else:
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 5), useOffset=False)
        ax.set_title(mpl_text(key), fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    if len(runs) > 1:
        handles, labels = [], []
        for ax in axes.flat:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        fig.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, 1.0),
            ncols=min(4, len(labels)),
            fontsize=8,
            frameon=False,
        )
    return fig_uri(fig)


def efficiency_plot(runs: list[RunView]) -> str | None:
    """Probe accuracy vs label fraction (log x), error bars = std; baselines dashed.

    One solid line per run; each baseline once per data set (the first run's), dashed.
    """
    multi = len(runs) > 1
    lines = []  # (points, style)
    for i, run in enumerate(runs):
        probe = run.eval.get(LinearProbeResult) if run.eval else None
        pts = _probe_points(probe.curve) if probe else []
        if pts:
            label = run.name if multi else "representation"
            style = dict(marker="o", ms=5, capsize=3, lw=1.8, color=f"C{i % 10}", label=label)
            lines.append((pts, style))
    datasets: list[str] = []
    seen: set[tuple[str, str]] = set()
    for run in runs:
        baselines = run.eval.get(BaselinesResult) if run.eval else None
        for j, (bname, curve) in enumerate((baselines.curves if baselines else {}).items()):
            pts = _probe_points(curve)
            if not pts or (run.dataset, bname) in seen:
                continue
            seen.add((run.dataset, bname))
            if run.dataset not in datasets:
                datasets.append(run.dataset)
            label = baseline_name(bname)
            if multi:
                label += f" ({run.dataset})"
            style = dict(
                ls="--",
                marker="sD^v"[datasets.index(run.dataset) % 4],
                ms=4,
                capsize=2,
                lw=1.2,
                color=("0.5", "0.15", "0.7", "0.3")[j % 4],
                label=label,
            )
            lines.append((pts, style))
    if not lines:
        return None
    legend_w = min(3.0, 0.55 + 0.07 * max(len(style["label"]) for _, style in lines))
    fig = _figure(5.0 + legend_w, 3.6, left=0.75, right=legend_w, bottom=0.6, top=0.2)
    ax = fig.subplots()
    fractions: set[float] = set()
    for pts, style in lines:
        xs, ms, ss = zip(*pts, strict=True)
        fractions.update(xs)
        yerr = [0.0 if math.isnan(s) else s for s in ss]
        ax.errorbar(xs, ms, yerr=yerr, **{**style, "label": mpl_text(style["label"])})
    ax.set_xscale("log")
    ticks = sorted(fractions)
    if len(ticks) <= 8:
        ax.set_xticks(ticks, [f"{100 * f:g}%" for f in ticks])
        ax.minorticks_off()
    ax.set_xlabel("fraction of labels used by the probe")
    ax.set_ylabel("probe accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig_uri(fig)


def _probe_points(curve: dict[str, ProbeScore]) -> list[tuple[float, float, float]]:
    pts = []
    for k in sorted_fractions(curve):
        f = number(k)
        if f > 0 and math.isfinite(f) and math.isfinite(curve[k].mean):
            pts.append((f, curve[k].mean, curve[k].std))
    return pts


def robustness_plot(rob: RobustnessResult) -> str | None:
    """Accuracy against the attack's epsilon: PGD solid, FGSM dotted, one colour per
    classifier (the representation's probe, the raw-pixel probe, the random encoder's)."""
    if not rob.accuracy or not rob.epsilons:
        return None
    fig = _figure(7.2, 3.4, left=0.75, right=2.2, bottom=0.6, top=0.2)
    ax = fig.subplots()
    for i, (name, curves) in enumerate(rob.accuracy.items()):
        for attack, ls in (("pgd", "-"), ("fgsm", ":")):
            if attack in curves:
                ax.plot(rob.epsilons, curves[attack], ls=ls, marker="o", ms=3, color=f"C{i}",
                        label=mpl_text(f"{name}, {attack.upper()}"))  # fmt: skip
    ax.set_xlabel("epsilon (1/255, L-infinity)")
    ax.set_ylabel("accuracy under attack")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig_uri(fig)


def symmetry_heatmap(sym: SymmetryResult) -> str | None:
    """The response of each latent to each factor, as a heat map."""
    resp = sym.response
    if not resp:
        return None
    width = max(len(r) for r in resp)
    if width == 0:
        return None
    grid = [list(r) + [math.nan] * (width - len(r)) for r in resp]
    factors = sym.factors
    if len(factors) != len(grid):
        factors = [f"factor {i}" for i in range(len(grid))]
    left = min(2.5, 0.35 + 0.075 * max(len(str(f)) for f in factors))
    fig = _figure(
        min(12.0, left + 1.6 + 0.45 * width),
        1.0 + 0.45 * len(grid),
        left=left,
        right=0.3,
        bottom=0.55,
        top=0.35,
    )
    ax = fig.subplots()
    im = ax.imshow(grid, cmap="viridis", aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.9)
    ax.set_yticks(range(len(grid)), [mpl_text(f) for f in factors], fontsize=8)
    step = 1 if width <= 32 else math.ceil(width / 32)
    ax.set_xticks(range(0, width, step), [f"z{j}" for j in range(0, width, step)], fontsize=8)
    ax.set_xlabel("latent")
    ax.set_title("response of each latent to each factor", fontsize=10)
    if width <= 16 and len(grid) <= 12:
        finite = [v for r in grid for v in r if math.isfinite(v)]
        mid = (min(finite) + max(finite)) / 2 if finite else 0.0
        for i, r in enumerate(grid):
            for j, v in enumerate(r):
                if math.isfinite(v):
                    ax.text(
                        j,
                        i,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="black" if v > mid else "white",
                    )
    return fig_uri(fig)
