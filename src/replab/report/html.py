"""One self-contained HTML report for one or more run directories.

A run directory holds ``config.yaml`` (required), and optionally ``metrics.jsonl`` (one JSON object
per log step), ``eval.json`` (the evaluation protocol's results) and ``figures/`` (PNGs). The report
embeds everything: plots are drawn with matplotlib into PNGs and inlined as base64 ``data:`` URIs,
the CSS is inline, there is no JavaScript and no external URL. A Content-Security-Policy meta tag
(``default-src 'none'; img-src data:; style-src 'unsafe-inline'``) makes a browser refuse anything
else, so a stray external reference shows up as a console error instead of a silent fetch.

Every string read from a config or a file goes through Jinja2 with autoescape on. Missing parts
(no eval.json, no metrics, no figures) are left out with a short note; a part that cannot be
drawn from odd data becomes a note too. Only a missing run directory or config.yaml is an error.

Matplotlib is used through ``matplotlib.figure.Figure`` and the Agg canvas directly, never
pyplot, so the report neither needs nor changes the global backend.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import io
import json
import math
import numbers
import os
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["write_report", "load_run", "Run", "fmt"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")  # files of figures/ that are embedded
MAX_IMAGE_BYTES = 20 * 2**20  # figures larger than this are left out with a note
MAX_PLOT_POINTS = 4000  # longer curves are thinned (evenly, keeping the last point)
DPI = 100

DISENTANGLEMENT_NAMES = {
    "beta_vae": "β-VAE score",
    "factor_vae": "FactorVAE score",
    "mig": "MIG",
    "dci_disentanglement": "DCI disentanglement",
    "dci_completeness": "DCI completeness",
    "dci_informativeness": "DCI informativeness",
    "sap": "SAP",
    "modularity": "Modularity",
    "explicitness": "Explicitness",
}
BASELINE_NAMES = {"pixels": "pixels", "random_encoder": "random encoder"}
FIGURE_CAPTIONS = {
    "traversals": "Latent traversals: one row per latent, highest KL (or variance) first; each "
    "column sets that latent to a value in −3…3 around one example's code.",
    "reconstructions": "Top row: inputs. Bottom row: their reconstructions.",
    "samples": "Samples drawn from the model.",
}
KNOWN_EVAL_KEYS = {
    "method",
    "dataset",
    "representation_dim",
    "suite",
    "linear_probe",
    "baselines",
    "knn",
    "clustering",
    "disentanglement",
    "factor_probes",
    "symmetry",
    "seconds",
    "figures",
}


# --------------------------------------------------------------------------- values and formatting


def _num(v: Any) -> float:
    """``v`` as a float; NaN for None, bools, strings and anything else not a number."""
    if isinstance(v, bool) or v is None:
        return math.nan
    if isinstance(v, numbers.Real):
        return float(v)
    return math.nan


def fmt(v: Any, digits: int = 3) -> str:
    """Numbers to ``digits`` decimals, ints as is, None/NaN as "n/a", anything else as text."""
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        v = float(v)
        if math.isnan(v):
            return "n/a"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        return f"{v:.{digits}f}"
    if isinstance(v, str) and v.strip().lower() in ("nan", "none", "null"):
        return "n/a"
    return str(v)


def _config_value(v: Any) -> str:
    """A config value as written: no rounding (a learning rate of 1e-4 must not read 0.000)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else repr(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_config_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return json.dumps(v, default=str)
    return str(v)


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, str]]:
    if not isinstance(d, dict):
        return [(prefix or "value", _config_value(d))]
    out: list[tuple[str, str]] = []
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.extend(_flatten(v, key))
        else:
            out.append((key, _config_value(v)))
    return out


def _as_dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _fraction_label(key: str) -> str:
    f = _num(_parse_float(key))
    if math.isnan(f):
        return str(key)
    pct = f * 100
    return f"{pct:g}%"


def _parse_float(s: Any) -> float:
    try:
        return float(s)
    except (TypeError, ValueError):
        return math.nan


def _sorted_fractions(keys: Iterable[str]) -> list[str]:
    keys = list(dict.fromkeys(keys))
    return sorted(keys, key=lambda k: (math.isnan(_parse_float(k)), _parse_float(k), str(k)))


def _mean_std(entry: Any) -> tuple[float, float]:
    if isinstance(entry, dict):
        return _num(entry.get("mean")), _num(entry.get("std"))
    return _num(entry), math.nan


def _pm(entry: Any) -> str:
    m, s = _mean_std(entry)
    if math.isnan(m):
        return "n/a"
    return f"{m:.3f} ± {s:.3f}" if not math.isnan(s) else f"{m:.3f}"


def _mpl(s: Any) -> str:
    """Text for matplotlib: ``$`` would start mathtext (and can fail to parse)."""
    return str(s).replace("$", r"\$")


# --------------------------------------------------------------------------- reading a run


@dataclass
class Run:
    path: Path
    name: str
    config: dict
    metrics: list[dict] = field(default_factory=list)
    eval: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def method(self) -> str:
        e = self.eval or {}
        return fmt(e.get("method") if e.get("method") is not None else self.config.get("method"))

    @property
    def dataset(self) -> str:
        e = self.eval or {}
        v = e.get("dataset") if e.get("dataset") is not None else self.config.get("data")
        if isinstance(v, dict):
            v = v.get("name", _config_value(v))
        return fmt(v)


def load_run(run_dir: str | Path) -> Run:
    """Read a run directory. Raises ValueError (one line) if it or its config.yaml is missing."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ValueError(f"run directory not found: {path}")
    cfg_path = path / "config.yaml"
    if not cfg_path.is_file():
        raise ValueError(f"not a run directory (no config.yaml): {path}")
    try:
        config = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"unreadable config.yaml in {path}: {first}") from None
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValueError(f"config.yaml in {path} is not a mapping")
    run = Run(path=path, name=path.resolve().name or str(path), config=config)

    mpath = path / "metrics.jsonl"
    if mpath.is_file():
        bad = 0
        with open(mpath, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    bad += 1
                    continue
                if isinstance(rec, dict):
                    run.metrics.append(rec)
                else:
                    bad += 1
        if bad:
            run.notes.append(f"metrics.jsonl: skipped {bad} unreadable line(s).")
    else:
        run.notes.append("No metrics.jsonl: no training curves.")

    epath = path / "eval.json"
    if epath.is_file():
        try:
            ev = json.loads(epath.read_text(encoding="utf-8", errors="replace"))
        except json.JSONDecodeError as e:
            run.notes.append(f"eval.json is not valid JSON ({e.msg}, line {e.lineno}).")
        else:
            if isinstance(ev, dict):
                run.eval = ev
            else:
                run.notes.append("eval.json is not a JSON object.")
    else:
        run.notes.append("No eval.json yet: no evaluation results.")
    return run


# --------------------------------------------------------------------------- images


def _fig_uri(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _file_uri(path: Path) -> str | None:
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


def _series(run: Run) -> dict[str, tuple[list[float], list[float]]]:
    """Per logged scalar: (steps, values). Non-numeric values are skipped."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for i, rec in enumerate(run.metrics):
        step = _num(rec.get("step"))
        step = float(i) if math.isnan(step) else step
        for k, v in rec.items():
            if k == "step" or isinstance(v, bool) or not isinstance(v, numbers.Real):
                continue
            xs, ys = out.setdefault(str(k), ([], []))
            xs.append(step)
            ys.append(float(v))
    return out


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


def _curves_plot(runs: list[Run]) -> str | None:
    """Training curves: one panel per logged scalar vs step, one line per run."""
    series = [_series(r) for r in runs]
    keys = _curve_keys(k for s in series for k in s)
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
        for i, (run, s) in enumerate(zip(runs, series, strict=True)):
            if key not in s:
                continue
            xs, ys = _thin(*s[key])
            values.extend(y for y in ys if math.isfinite(y))
            ax.plot(xs, ys, color=f"C{i % 10}", lw=1.2, label=_mpl(run.name))
        finite_pos = [v for v in values if v > 0]
        if values and len(finite_pos) == len(values) and max(values) / min(values) > 100:
            ax.set_yscale("log")
        else:
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 5), useOffset=False)
        ax.set_title(_mpl(key), fontsize=10)
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
    return _fig_uri(fig)


def _efficiency_plot(runs: list[Run]) -> str | None:
    """Probe accuracy vs label fraction (log x), error bars = std; baselines dashed.

    One solid line per run; each baseline once per data set (the first run's), dashed.
    """
    multi = len(runs) > 1
    lines = []  # (xs, ms, ss, style)
    for i, run in enumerate(runs):
        pts = _probe_points(_as_dict((run.eval or {}).get("linear_probe")))
        if pts:
            label = run.name if multi else "representation"
            style = dict(marker="o", ms=5, capsize=3, lw=1.8, color=f"C{i % 10}", label=label)
            lines.append((pts, style))
    datasets: list[str] = []
    seen: set[tuple[str, str]] = set()
    for run in runs:
        for j, (bname, bvals) in enumerate(_as_dict((run.eval or {}).get("baselines")).items()):
            pts = _probe_points(_as_dict(bvals))
            if not pts or (run.dataset, str(bname)) in seen:
                continue
            seen.add((run.dataset, str(bname)))
            if run.dataset not in datasets:
                datasets.append(run.dataset)
            label = BASELINE_NAMES.get(str(bname), str(bname))
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
        ax.errorbar(xs, ms, yerr=yerr, **{**style, "label": _mpl(style["label"])})
    ax.set_xscale("log")
    ticks = sorted(fractions)
    if len(ticks) <= 8:
        ax.set_xticks(ticks, [f"{100 * f:g}%" for f in ticks])
        ax.minorticks_off()
    ax.set_xlabel("fraction of labels used by the probe")
    ax.set_ylabel("probe accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return _fig_uri(fig)


def _probe_points(probe: dict) -> list[tuple[float, float, float]]:
    pts = []
    for k in _sorted_fractions(probe):
        f = _parse_float(k)
        m, s = _mean_std(probe[k])
        if f > 0 and math.isfinite(f) and math.isfinite(m):
            pts.append((f, m, s))
    return pts


def _heatmap(sym: dict) -> str | None:
    resp = sym.get("response")
    if not isinstance(resp, list) or not resp or not all(isinstance(r, list) for r in resp):
        return None
    width = max(len(r) for r in resp)
    if width == 0:
        return None
    grid = [[_num(v) for v in r] + [math.nan] * (width - len(r)) for r in resp]
    factors = sym.get("factors")
    if not isinstance(factors, list) or len(factors) != len(grid):
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
    ax.set_yticks(range(len(grid)), [_mpl(f) for f in factors], fontsize=8)
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
    return _fig_uri(fig)


# --------------------------------------------------------------------------- tables


_NUMERIC = re.compile(r"^[-−+]?(\d[\d,]*\.?\d*|\.\d+|∞)(e[-+]?\d+)?( ± \S+)?%?$|^n/a$")


def _table(title: str, columns: list[str], rows: list[list[Any]], note: str = "") -> dict:
    """A table for the template. Cells are strings or dicts {"text", "bold", "href"}.

    Cells that read as numbers (or "n/a") are right-aligned, and so is a column's header when
    all its cells are.
    """
    cells = []
    for r in rows:
        out = []
        for c in r:
            cell = {"text": "", "bold": False, "href": None}
            cell.update(c if isinstance(c, dict) else {"text": str(c)})
            cell["num"] = bool(_NUMERIC.match(cell["text"])) and not cell["href"]
            out.append(cell)
        cells.append(out)
    num_cols = [
        bool(cells) and all(len(r) > k and r[k]["num"] for r in cells) for k in range(len(columns))
    ]
    return {"title": title, "columns": columns, "num_cols": num_cols, "rows": cells, "note": note}


def _eval_tables(ev: dict) -> list[dict]:
    tables: list[dict] = []

    summary = []
    for key, label in (
        ("method", "method"),
        ("dataset", "data"),
        ("suite", "suite"),
        ("representation_dim", "representation dim"),
    ):
        if key in ev:
            summary.append([label, fmt(ev[key])])
    knn = ev.get("knn")
    if knn is not None:
        for k, v in (_as_dict(knn) or {"accuracy": knn}).items():
            summary.append([f"kNN {k}", fmt(v)])
    for k, v in _as_dict(ev.get("clustering")).items():
        summary.append([f"clustering {str(k).upper() if len(str(k)) <= 3 else k}", fmt(v)])
    for k in ev:
        if k not in KNOWN_EVAL_KEYS and not isinstance(ev[k], dict | list):
            summary.append([str(k), fmt(ev[k])])
    if summary:
        tables.append(_table("Summary", ["", "value"], summary))

    probe = _as_dict(ev.get("linear_probe"))
    baselines = {k: _as_dict(v) for k, v in _as_dict(ev.get("baselines")).items()}
    fracs = _sorted_fractions([*probe, *(f for b in baselines.values() for f in b)])
    if fracs:
        cols = ["label fraction", "representation"]
        cols += [BASELINE_NAMES.get(str(b), str(b)) for b in baselines]
        rows = []
        for f in fracs:
            row = [_fraction_label(f), _pm(probe.get(f))]
            row += [_pm(b.get(f)) for b in baselines.values()]
            rows.append(row)
        tables.append(_table("Linear probe (accuracy, mean ± std over seeds)", cols, rows))

    dis = _as_dict(ev.get("disentanglement"))
    if dis:
        rows = [[DISENTANGLEMENT_NAMES.get(str(k), str(k)), fmt(v)] for k, v in dis.items()]
        tables.append(_table("Disentanglement", ["metric", "score"], rows))

    fp = _as_dict(ev.get("factor_probes"))
    if fp:
        rows = []
        for name, entry in fp.items():
            e = _as_dict(entry)
            if e:
                rows.append([str(name), fmt(e.get("kind")), fmt(e.get("score"))])
            else:
                rows.append([str(name), "", fmt(entry)])
        tables.append(_table("Factor probes", ["factor", "kind", "score"], rows))

    sym = _as_dict(ev.get("symmetry"))
    loc, eqv = _as_dict(sym.get("locality")), _as_dict(sym.get("equivariance"))
    if loc or eqv:
        names = [k for k in dict.fromkeys([*loc, *eqv]) if k != "mean"]
        rows = [[str(n), fmt(loc.get(n)), fmt(eqv.get(n))] for n in names]
        if "mean" in loc or "mean" in eqv:
            rows.append(
                [
                    {"text": "mean", "bold": True},
                    {"text": fmt(loc.get("mean")), "bold": True},
                    {"text": fmt(eqv.get("mean")), "bold": True},
                ]
            )
        tables.append(_table("Symmetry", ["factor", "locality", "equivariance"], rows))

    secs = _as_dict(ev.get("seconds"))
    if secs:
        rows = [[str(k), fmt(v)] for k, v in secs.items()]
        total = sum(_num(v) for v in secs.values() if math.isfinite(_num(v)))
        rows.append([{"text": "total", "bold": True}, {"text": fmt(total), "bold": True}])
        tables.append(_table("Time per part (seconds)", ["part", "seconds"], rows))

    for k, v in ev.items():  # results this report does not know yet: shown as they are
        if k in KNOWN_EVAL_KEYS or not isinstance(v, dict | list):
            continue
        rows = [
            [key, fmt(val) if not isinstance(val, str) else val] for key, val in _flatten_results(v)
        ]
        if rows:
            tables.append(_table(str(k), ["", "value"], rows))
    return tables


def _flatten_results(v: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(v, dict):
        out = []
        for k, x in v.items():
            out.extend(_flatten_results(x, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(v, list):
        if all(not isinstance(x, dict | list) for x in v):
            return [(prefix or "value", ", ".join(fmt(x) for x in v))]
        out = []
        for i, x in enumerate(v):
            out.extend(_flatten_results(x, f"{prefix}[{i}]"))
        return out
    return [(prefix or "value", v)]


LEADERBOARD_EXTRA: list[tuple[str, Callable[[dict], Any]]] = [
    ("kNN", lambda e: _as_dict(e.get("knn")).get("accuracy", e.get("knn"))),
    ("NMI", lambda e: _as_dict(e.get("clustering")).get("nmi")),
    ("ARI", lambda e: _as_dict(e.get("clustering")).get("ari")),
    ("β-VAE", lambda e: _as_dict(e.get("disentanglement")).get("beta_vae")),
    ("FactorVAE", lambda e: _as_dict(e.get("disentanglement")).get("factor_vae")),
    ("MIG", lambda e: _as_dict(e.get("disentanglement")).get("mig")),
    ("DCI-D", lambda e: _as_dict(e.get("disentanglement")).get("dci_disentanglement")),
    ("SAP", lambda e: _as_dict(e.get("disentanglement")).get("sap")),
    ("Modularity", lambda e: _as_dict(e.get("disentanglement")).get("modularity")),
    ("Locality", lambda e: _as_dict(_as_dict(e.get("symmetry")).get("locality")).get("mean")),
    (
        "Equivariance",
        lambda e: _as_dict(_as_dict(e.get("symmetry")).get("equivariance")).get("mean"),
    ),
]


def _probe_mean(ev: dict, fraction: str) -> float:
    return _mean_std(_as_dict(ev.get("linear_probe")).get(fraction))[0]


def _leaderboard(runs: list[Run], ids: list[str]) -> dict:
    """One row per run; the best finite value of each column among runs on the same data is bold."""
    fracs = _sorted_fractions(f for r in runs for f in _as_dict((r.eval or {}).get("linear_probe")))
    getters: list[tuple[str, Callable[[dict], Any]]] = [
        (f"probe {_fraction_label(f)}", functools.partial(_probe_mean, fraction=f)) for f in fracs
    ]
    getters += LEADERBOARD_EXTRA
    values = [[_num(g(r.eval or {})) for _, g in getters] for r in runs]
    keep = [j for j in range(len(getters)) if any(math.isfinite(v[j]) for v in values)]
    # per (data set, column): the finite values of the runs on that data
    groups: dict[tuple[str, int], list[float]] = {}
    for r, vals in zip(runs, values, strict=True):
        for j in keep:
            if math.isfinite(vals[j]):
                groups.setdefault((r.dataset, j), []).append(vals[j])
    rows = []
    for r, vals, rid in zip(runs, values, ids, strict=True):
        row: list[Any] = [{"text": r.name, "href": f"#{rid}", "bold": False}, r.method, r.dataset]
        for j in keep:
            v = vals[j]
            g = groups.get((r.dataset, j), [])
            is_best = math.isfinite(v) and v == max(g) and min(g) < max(g)  # no bold for ties
            row.append({"text": fmt(v), "bold": is_best})
        rows.append(row)
    cols = ["run", "method", "data"] + [getters[j][0] for j in keep]
    return _table(
        "Leaderboard",
        cols,
        rows,
        note="Bold: the best value of a column among the runs on the same data (higher is better).",
    )


# --------------------------------------------------------------------------- sections


def _guard(notes: list[str], what: str, fn: Callable[[], Any]) -> Any:
    """Run one part of the report; odd data in one part becomes a note, not a crash."""
    try:
        return fn()
    except Exception as e:  # a report must not die on one odd file
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        notes.append(f"Could not render {what}: {type(e).__name__}: {msg}"[:300])
        return None


def _figures(run: Run, notes: list[str]) -> list[dict]:
    listed = _as_dict((run.eval or {}).get("figures"))
    root = run.path.resolve()
    figs: list[dict] = []
    seen: set[Path] = set()

    def add(name: str, path: Path) -> None:
        try:
            resolved = path.resolve()
            resolved.relative_to(root)
        except (ValueError, OSError):
            notes.append(f"Figure {name}: {path} is outside the run directory; left out.")
            return
        if resolved in seen:
            return
        seen.add(resolved)
        if not resolved.is_file():
            notes.append(f"Figure {name}: {path.relative_to(run.path)} is missing.")
            return
        if resolved.stat().st_size > MAX_IMAGE_BYTES:
            notes.append(f"Figure {name}: larger than {MAX_IMAGE_BYTES >> 20} MiB; left out.")
            return
        uri = _file_uri(resolved)
        if uri is None:
            notes.append(f"Figure {name}: not a PNG, JPEG or GIF image; left out.")
            return
        figs.append({"name": name, "uri": uri, "caption": FIGURE_CAPTIONS.get(name, "")})

    for name, rel in listed.items():
        if isinstance(rel, str) and rel:
            add(str(name), run.path / rel)
    fdir = run.path / "figures"
    if fdir.is_dir():
        for p in sorted(fdir.iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                add(p.stem, p)
    return figs


def _training_summary(run: Run) -> list[list[str]]:
    s = _series(run)
    rows = [["log steps", str(len(run.metrics))]]
    steps = [_num(r.get("step")) for r in run.metrics]
    steps = [x for x in steps if math.isfinite(x)]
    if steps:
        rows.append(["last step", fmt(int(max(steps)))])
    if "loss" in s:
        rows.append(["final loss", fmt(s["loss"][1][-1])])
    if "samples_per_s" in s:
        v = sorted(x for x in s["samples_per_s"][1] if math.isfinite(x))
        if v:
            rows.append(["median samples/s", f"{v[len(v) // 2]:.1f}"])
    return rows


def _run_section(run: Run, rid: str) -> dict:
    notes = list(run.notes)
    sec: dict[str, Any] = {
        "id": rid,
        "name": run.name,
        "path": str(run.path),
        "method": run.method,
        "dataset": run.dataset,
        "config": _flatten(run.config),
        "training": None,
        "curves": None,
        "tables": [],
        "efficiency": None,
        "heatmap": None,
        "figures": [],
        "notes": notes,
    }
    if run.metrics:
        sec["training"] = _guard(notes, "the training summary", lambda: _training_summary(run))
        sec["curves"] = _guard(notes, "the training curves", lambda: _curves_plot([run]))
        if sec["curves"] is None and not any(n.startswith("Could not") for n in notes):
            notes.append("metrics.jsonl has no numeric values to plot.")
    if run.eval is not None:
        ev = run.eval
        sec["tables"] = _guard(notes, "the evaluation tables", lambda: _eval_tables(ev)) or []
        sec["efficiency"] = _guard(
            notes, "the data-efficiency plot", lambda: _efficiency_plot([run])
        )
        sec["heatmap"] = _guard(
            notes, "the symmetry heat map", lambda: _heatmap(_as_dict(ev.get("symmetry")))
        )
    sec["figures"] = _guard(notes, "the figures", lambda: _figures(run, notes)) or []
    if not sec["figures"] and not (run.path / "figures").is_dir():
        notes.append("No figures/ folder.")
    return sec


def _unique_names(runs: list[Run]) -> None:
    names = [r.name for r in runs]
    for r in runs:
        if names.count(r.name) > 1:
            r.name = f"{r.path.resolve().parent.name}/{r.name}"
    names = [r.name for r in runs]
    for i, r in enumerate(runs):
        if names.count(r.name) > 1:
            r.name = f"{r.name} #{i + 1}"


# --------------------------------------------------------------------------- writing


def _template() -> jinja2.Template:
    text = resources.files("replab.report").joinpath("template.html").read_text(encoding="utf-8")
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    return env.from_string(text)


def render_report(run_dirs: list[str | Path], *, title: str = "replab report") -> str:
    """The report's HTML as a string (see :func:`write_report`)."""
    if not run_dirs:
        raise ValueError("no run directories given")
    runs = [load_run(d) for d in run_dirs]
    _unique_names(runs)
    ids = [f"run-{i}" for i in range(len(runs))]
    comparison = None
    if len(runs) > 1:
        notes: list[str] = []
        comparison = {
            "leaderboard": _guard(notes, "the leaderboard", lambda: _leaderboard(runs, ids)),
            "curves": _guard(notes, "the overlaid training curves", lambda: _curves_plot(runs)),
            "efficiency": _guard(
                notes, "the overlaid data-efficiency plot", lambda: _efficiency_plot(runs)
            ),
            "notes": notes,
        }
    sections = [_run_section(r, rid) for r, rid in zip(runs, ids, strict=True)]
    return _template().render(
        title=title,
        generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        runs=sections,
        comparison=comparison,
    )


def write_report(run_dirs: list[Path], out: Path, *, title: str = "replab report") -> Path:
    """Write one self-contained HTML report of ``run_dirs`` to ``out``, atomically; returns it.

    Per run: the config, training curves, evaluation tables, the data-efficiency plot, the symmetry
    heat map and the run's figures. With several runs a comparison comes first: a leaderboard (one
    row per run) and the curves and data-efficiency plots overlaid. Raises ValueError naming the
    directory when one does not exist or has no config.yaml.
    """
    html = render_report(list(run_dirs), title=title)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(html)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
