"""One self-contained HTML report for one or more run directories.

The report embeds everything: plots are inline base64 ``data:`` PNGs, the CSS is inline, there is
no JavaScript and no external URL. A Content-Security-Policy meta tag (``default-src 'none';
img-src data:; style-src 'unsafe-inline'``) makes a browser refuse anything else, so a stray
external reference shows up as a console error instead of a silent fetch.

Every string read from a config or a file goes through Jinja2 with autoescape on. Missing parts
(no eval.json, no metrics, no figures) are left out with a short note; a part that cannot be
drawn from odd data becomes a note too. Only a missing run directory or config.yaml is an error.
The pieces: ``runs`` (reading), ``format`` (values), ``plots`` and ``tables``; this module lays
them out.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from replab.eval.parts.figures import FiguresResult
from replab.eval.parts.robustness import RobustnessResult
from replab.eval.parts.symmetry import SymmetryResult
from replab.files import atomic_write_text
from replab.report.format import flatten, fmt
from replab.report.plots import (
    curves_plot,
    efficiency_plot,
    file_uri,
    robustness_plot,
    symmetry_heatmap,
)
from replab.report.runs import RunView, load_run
from replab.report.tables import (
    darla_table,
    eval_notes,
    eval_tables,
    leaderboard,
    training_summary,
)
from replab.rl import DARLA_RESULT_FILE

__all__ = ["fmt", "load_run", "render_report", "write_report"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")  # files of figures/ that are embedded
MAX_IMAGE_BYTES = 20 * 2**20  # figures larger than this are left out with a note
FIGURE_CAPTIONS = {
    "traversals": "Latent traversals: one row per latent, highest KL (or variance) first; each "
    "column sets that latent to a value in −3…3 around one example's code.",
    "reconstructions": "Top row: inputs. Bottom row: their reconstructions.",
    "samples": "Samples drawn from the model.",
    "slots": "One row per test image: the input, the reconstruction, each pixel coloured by its "
    "slot, then what each slot paints (its image times its mask).",
    "views": "Three rows per test scene: the context views, the true query views, the views "
    "the model predicts at the queries' poses.",
}


def _guard(notes: list[str], what: str, fn: Callable[[], Any]) -> Any:
    """Run one part of the report; odd data in one part becomes a note, not a crash."""
    try:
        return fn()
    except Exception as e:  # a report must not die on one odd file
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        notes.append(f"Could not render {what}: {type(e).__name__}: {msg}"[:300])
        return None


def _figures(run: RunView, notes: list[str]) -> list[dict]:
    figures = run.eval.get(FiguresResult) if run.eval else None
    listed = figures.paths if figures else {}
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
        uri = file_uri(resolved)
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


def _run_section(run: RunView, rid: str) -> dict:
    notes = list(run.notes)
    sec: dict[str, Any] = {
        "id": rid,
        "name": run.name,
        "path": str(run.path),
        "method": run.method,
        "dataset": run.dataset,
        "config": flatten(run.config),
        "training": None,
        "curves": None,
        "tables": [],
        "efficiency": None,
        "heatmap": None,
        "robustness": None,
        "figures": [],
        "notes": notes,
    }
    if run.metrics:
        sec["training"] = _guard(notes, "the training summary", lambda: training_summary(run))
        sec["curves"] = _guard(notes, "the training curves", lambda: curves_plot([run]))
        if sec["curves"] is None and not any(n.startswith("Could not") for n in notes):
            notes.append("metrics.jsonl has no numeric values to plot.")
    if run.eval is not None:
        ev = run.eval
        sec["tables"] = _guard(notes, "the evaluation tables", lambda: eval_tables(ev)) or []
        notes += eval_notes(ev)
        sec["efficiency"] = _guard(
            notes, "the data-efficiency plot", lambda: efficiency_plot([run])
        )
        sym = ev.get(SymmetryResult)
        if sym is not None:
            sec["heatmap"] = _guard(notes, "the symmetry heat map", lambda: symmetry_heatmap(sym))
        rob = ev.get(RobustnessResult)
        if rob is not None:
            sec["robustness"] = _guard(notes, "the robustness plot", lambda: robustness_plot(rob))
    sec["figures"] = _guard(notes, "the figures", lambda: _figures(run, notes)) or []
    if not sec["figures"] and not (run.path / "figures").is_dir():
        notes.append("No figures/ folder.")
    return sec


def _darla_section(folder: Path) -> dict:
    """A ``replab darla`` folder: its darla.json as a table (a one-line ValueError if bad)."""
    path = folder / DARLA_RESULT_FILE
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({type(e).__name__})") from None
    return darla_table(summary, str(folder))


def _unique_names(runs: list[RunView]) -> None:
    names = [r.name for r in runs]
    for r in runs:
        if names.count(r.name) > 1:
            r.name = f"{r.path.resolve().parent.name}/{r.name}"
    names = [r.name for r in runs]
    for i, r in enumerate(runs):
        if names.count(r.name) > 1:
            r.name = f"{r.name} #{i + 1}"


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
    darla = [_darla_section(Path(d)) for d in run_dirs if (Path(d) / DARLA_RESULT_FILE).is_file()]
    runs = [load_run(d) for d in run_dirs if not (Path(d) / DARLA_RESULT_FILE).is_file()]
    _unique_names(runs)
    ids = [f"run-{i}" for i in range(len(runs))]
    comparison = None
    if len(runs) > 1:
        notes: list[str] = []
        comparison = {
            "leaderboard": _guard(notes, "the leaderboard", lambda: leaderboard(runs, ids)),
            "curves": _guard(notes, "the overlaid training curves", lambda: curves_plot(runs)),
            "efficiency": _guard(
                notes, "the overlaid data-efficiency plot", lambda: efficiency_plot(runs)
            ),
            "notes": notes,
        }
    sections = [_run_section(r, rid) for r, rid in zip(runs, ids, strict=True)]
    return _template().render(
        title=title,
        generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        runs=sections,
        comparison=comparison,
        darla=darla,
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
    atomic_write_text(out, html)
    return out
