"""The report's tables: a run's evaluation (its parts' own tables, the probe beside its
baselines, a summary, time per part), its training summary, and the leaderboard of several runs."""

from __future__ import annotations

import math
import re
from typing import Any

from replab.eval.parts.baselines import BaselinesResult
from replab.eval.parts.linear_probe import LinearProbeResult
from replab.eval.parts.probe_curves import ProbeScore, baseline_name, probe_table, sorted_fractions
from replab.eval.results import EvalResult, Table, number
from replab.report.format import fmt, pm
from replab.report.runs import RunView, series

__all__ = ["baseline_name", "eval_tables", "leaderboard", "sorted_fractions", "training_summary"]

_NUMERIC = re.compile(r"^[-−+]?(\d[\d,]*\.?\d*|\.\d+|∞)(e[-+]?\d+)?( ± \S+)?%?$|^n/a$")


def cell_text(v: Any) -> str:
    """A table cell as the report writes it."""
    if isinstance(v, ProbeScore):
        return pm(v.mean, v.std)
    return fmt(v)


def html_table(title: str, columns: list[str], rows: list[list[Any]], note: str = "") -> dict:
    """A table for the template. Cells are values or dicts {"text", "bold", "href"}.

    Cells that read as numbers (or "n/a") are right-aligned, and so is a column's header when
    all its cells are.
    """
    cells = []
    for r in rows:
        out = []
        for c in r:
            cell = {"text": "", "bold": False, "href": None}
            cell.update(c if isinstance(c, dict) else {"text": cell_text(c)})
            cell["num"] = bool(_NUMERIC.match(cell["text"])) and not cell["href"]
            out.append(cell)
        cells.append(out)
    num_cols = [
        bool(cells) and all(len(r) > k and r[k]["num"] for r in cells) for k in range(len(columns))
    ]
    return {"title": title, "columns": columns, "num_cols": num_cols, "rows": cells, "note": note}


def from_table(t: Table) -> dict:
    rows = [list(r) for r in t.rows]
    if t.bold_last and rows:
        rows[-1] = [{"text": cell_text(c), "bold": True} for c in rows[-1]]
    return html_table(t.title, t.columns, rows)


def eval_tables(ev: EvalResult) -> list[dict]:
    tables: list[dict] = []
    summary = [["method", ev.method], ["data", ev.dataset], ["suite", ev.suite]]
    summary = [row for row in summary if row[1]]
    if ev.representation_dim is not None:
        summary.append(["representation dim", ev.representation_dim])
    summary += [[k, v] for k, v in ev.summary().items()]
    summary += [[k, v] for k, v in ev.other.items() if not isinstance(v, dict | list)]
    if summary:
        tables.append(html_table("Summary", ["", "value"], summary))

    probe = ev.get(LinearProbeResult)
    baselines = ev.get(BaselinesResult)
    t = probe_table(probe.curve if probe else None, baselines.curves if baselines else None)
    if t is not None:
        tables.append(from_table(t))
    for part in ev.parts.values():
        tables += [from_table(t) for t in part.tables()]

    if ev.seconds:
        rows = [[k, v] for k, v in ev.seconds.items()]
        total = sum(v for v in ev.seconds.values() if math.isfinite(v))
        rows.append([{"text": "total", "bold": True}, {"text": fmt(total), "bold": True}])
        tables.append(html_table("Time per part (seconds)", ["part", "seconds"], rows))

    for k, v in ev.other.items():  # results this report does not know: shown as they are
        if isinstance(v, dict | list):
            rows = [[key, val] for key, val in _flatten_results(v)]
            if rows:
                tables.append(html_table(str(k), ["", "value"], rows))
    return tables


def eval_notes(ev: EvalResult) -> list[str]:
    """The warnings each part raised, as notes."""
    return [f"{part}: {note}" for part, notes in ev.notes.items() for note in notes]


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


def leaderboard(runs: list[RunView], ids: list[str]) -> dict:
    """One row per run; the best finite value of each column among runs on the same data is bold."""
    boards = [r.eval.leaderboard() if r.eval else {} for r in runs]
    columns = list(dict.fromkeys(k for b in boards for k in b))
    values = [[number(b.get(c)) for c in columns] for b in boards]
    keep = [j for j in range(len(columns)) if any(math.isfinite(v[j]) for v in values)]
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
    return html_table(
        "Leaderboard",
        ["run", "method", "data"] + [columns[j] for j in keep],
        rows,
        note="Bold: the best value of a column among the runs on the same data (higher is better).",
    )


def training_summary(run: RunView) -> list[list[str]]:
    s = series(run)
    rows = [["log steps", str(len(run.metrics))]]
    steps = [number(r.get("step")) for r in run.metrics]
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


def darla_table(summary: Any, where: str) -> dict:
    """DARLA's comparison (``replab darla``'s darla.json): per encoder the mean source and
    target returns over seeds, their spread, and the target/source ratio; ValueError when the
    file does not hold one."""
    if not isinstance(summary, dict) or not isinstance(summary.get("encoders"), dict):
        raise ValueError(f"{where} does not hold a DARLA comparison (no 'encoders')")
    rows = []
    for name, r in summary["encoders"].items():
        cells = [name]
        for key in ("source", "target", "ratio"):
            entry = r.get(key, {}) if isinstance(r, dict) else {}
            cells += [number(entry.get("mean")), number(entry.get("sd"))]
        rows.append(cells)
    get = summary.get
    note = (f"{get('seeds', '?')} seeds; encoders trained {get('encoder_steps', '?')} steps, "
            f"DQNs {get('dqn_steps', '?')} environment steps; a random policy returns "
            f"{fmt(number(get('random_policy')))}")  # fmt: skip
    columns = ["encoder", "source return", "sd", "target return", "sd", "target / source", "sd"]
    return html_table(f"DARLA: zero-shot transfer ({where})", columns, rows, note=note)
