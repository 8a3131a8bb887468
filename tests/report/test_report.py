"""The HTML report: contents, self-containedness, escaping, missing parts, and a real browser."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from replab.report.html import fmt, write_report

EVIL = "<script>alert(1)</script>"


# --------------------------------------------------------------------------- fake run directories


def _eval(method="beta_vae", dataset="sprites", shift=0.0):
    def ms(m, s=0.01):
        return {"mean": m, "std": s}

    return {
        "method": method,
        "dataset": dataset,
        "representation_dim": 10,
        "suite": "standard",
        "linear_probe": {
            "0.01": ms(0.61 + shift),
            "0.1": ms(0.74 + shift),
            "1.0": ms(0.8125 + shift),
        },
        "baselines": {
            "pixels": {"0.01": ms(0.31), "0.1": ms(0.42), "1.0": ms(0.5)},
            "random_encoder": {"0.01": ms(0.21), "0.1": ms(0.25), "1.0": ms(0.3)},
        },
        "knn": {"accuracy": 0.7777 + shift},
        "clustering": {"nmi": 0.4321 + shift, "ari": 0.3},
        "disentanglement": {
            "beta_vae": 0.9,
            "factor_vae": None,
            "mig": 0.2468 + shift,
            "dci_disentanglement": 0.5,
            "dci_completeness": 0.45,
            "dci_informativeness": 0.8,
            "sap": 0.05,
            "modularity": 0.91,
            "explicitness": 0.88,
        },
        "factor_probes": {
            "shape": {"kind": "accuracy", "score": 0.95},
            "scale": {"kind": "r2", "score": 0.6543},
        },
        "symmetry": {
            "factors": ["shape", "scale", "posx"],
            "response": [[0.9, 0.1, 0.0, 0.2], [0.1, 0.8, 0.1, 0.0], [0.0, 0.05, 0.7, 0.3]],
            "locality": {"shape": 0.7, "scale": 0.66, "posx": 0.5, "mean": 0.62},
            "equivariance": {"shape": 0.4, "scale": 0.3, "posx": 0.2, "mean": 0.3},
        },
        "robustness": {
            "epsilons": [0, 4, 16],
            "examples": 100,
            "accuracy": {
                "representation": {"fgsm": [0.9, 0.6, 0.3], "pgd": [0.9, 0.5, 0.1]},
                "pixels": {"fgsm": [0.8, 0.2, 0.0], "pgd": [0.8, 0.1, 0.0]},
            },
            "blackbox": {"representation": {"eps": 16, "pgd": 0.1, "random_sign": 0.7}},
        },
        "generalisation": {
            "factors": ["shape", "scale"],
            "kinds": ["accuracy", "r2"],
            "points": 3000,
            "scores": {"representation": {"extrapolation": {"linear": [0.9, 0.4321]}}},
        },
        "transfer": {
            "source": "sprites",
            "target": "inverted_sprites",
            "accuracy": {"representation": {"in_domain": 0.9, "shifted": 0.6}},
        },
        "seconds": {"linear_probe": 12.5, "knn": 1.25},
        "figures": {"traversals": "figures/traversals.png"},
    }


def _png(path: Path, color=(200, 30, 30), size=(24, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def make_run(
    root: Path, name: str, *, config=None, eval_=True, figures=True, shift=0.0, extra=None
):
    run = root / name
    run.mkdir(parents=True)
    cfg = config or {
        "method": "beta_vae",
        "data": "sprites",
        "train": {"lr": 0.0001, "steps": 200, "batch_size": 64},
        "model": {"beta": 4.0, "latent_dim": 10},
    }
    cfg.update(extra or {})
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    with open(run / "metrics.jsonl", "w") as f:
        for step in range(0, 200, 10):
            rec = {
                "step": step,
                "loss": 100.0 * math.exp(-step / 50) + 5 + shift,
                "lr": 1e-4,
                "samples_per_s": 900.0 + step,
                "recon": 80.0 * math.exp(-step / 50) + 4,
                "kl": 3.0 + step / 100,
            }
            f.write(json.dumps(rec) + "\n")
    if eval_:
        (run / "eval.json").write_text(json.dumps(_eval(shift=shift), indent=1))
    if figures:
        _png(run / "figures" / "traversals.png")
    return run


# --------------------------------------------------------------------------- reading the HTML


class _Tables(HTMLParser):
    """Every table as {"caption": str, "rows": [[cell text]]} (header rows included)."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell, self._in_caption = [], None, False
        self.srcs, self.hrefs = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "src" in a:
            self.srcs.append(a["src"])
        if "href" in a:
            self.hrefs.append(a["href"])
        if tag == "table":
            self.tables.append({"caption": "", "rows": [], "class": a.get("class") or ""})
        elif tag == "caption":
            self._in_caption = True
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "caption":
            self._in_caption = False
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1]["rows"][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._in_caption:
            self.tables[-1]["caption"] += data
        elif self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> _Tables:
    p = _Tables()
    p.feed(html)
    p.close()
    return p


def table(p: _Tables, caption_start: str, nth: int = 0) -> list[list[str]]:
    found = [t for t in p.tables if t["caption"].startswith(caption_start)]
    assert len(found) > nth, f"no table {caption_start!r}: {[t['caption'] for t in p.tables]}"
    return found[nth]["rows"]


def assert_self_contained(html: str, p: _Tables):
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower()
    assert "url(" not in html  # no CSS fetches
    assert p.srcs and all(s.startswith("data:image/") for s in p.srcs)
    assert all(h.startswith("#") for h in p.hrefs)
    assert "default-src 'none'; img-src data:" in html  # the CSP that forbids anything else


@pytest.fixture(scope="module")
def two_run_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    a = make_run(root, "vae_a")
    # an injected string too: if it were not escaped, the browser test would see the CSP refuse it
    b = make_run(root, "vae_b", shift=0.05, extra={"notes": EVIL})
    out = write_report([a, b], root / "out" / "report.html")
    return out


# --------------------------------------------------------------------------- tests


def test_single_run_has_all_parts(tmp_path):
    run = make_run(tmp_path, "run1")
    out = write_report([run], tmp_path / "report.html")
    assert out == tmp_path / "report.html"
    html = out.read_text()
    p = parse(html)
    assert_self_contained(html, p)

    probe = table(p, "Linear probe")
    assert probe[0] == ["label fraction", "representation", "pixels", "random encoder"]
    assert probe[1:] == [
        ["1%", "0.610 ± 0.010", "0.310 ± 0.010", "0.210 ± 0.010"],
        ["10%", "0.740 ± 0.010", "0.420 ± 0.010", "0.250 ± 0.010"],
        ["100%", "0.812 ± 0.010", "0.500 ± 0.010", "0.300 ± 0.010"],
    ]
    summary = dict(map(tuple, table(p, "Summary")[1:]))
    assert summary["kNN accuracy"] == "0.778"
    assert summary["clustering NMI"] == "0.432"
    assert summary["representation dim"] == "10"
    dis = dict(map(tuple, table(p, "Disentanglement")[1:]))
    assert dis["MIG"] == "0.247" and dis["FactorVAE score"] == "n/a"
    assert dis["DCI disentanglement"] == "0.500"
    fp = table(p, "Factor probes")[1:]
    assert ["scale", "r2", "0.654"] in fp
    sym = table(p, "Symmetry")[1:]
    assert sym[0] == ["shape", "0.700", "0.400"] and sym[-1] == ["mean", "0.620", "0.300"]
    secs = dict(map(tuple, table(p, "Time per part")[1:]))
    assert secs == {"linear_probe": "12.500", "knn": "1.250", "total": "13.750"}

    config = next(t for t in p.tables if t["class"] == "config")["rows"]
    assert ["train.lr", "0.0001"] in config and ["model.beta", "4.0"] in config
    assert ["method", "beta_vae"] in config

    rob = table(p, "Adversarial robustness")
    assert rob[0] == ["classifier", "attack", "0/255", "4/255", "16/255", "area"]
    # area: mean accuracy over [0, 16]: (0.9 + 0.5) / 2 * 4/16 + (0.5 + 0.1) / 2 * 12/16
    assert ["representation", "pgd", "0.900", "0.500", "0.100", "0.400"] in rob[1:]
    assert ["representation", "16/255", "0.100", "0.700"] in table(p, "Gradient-masking")[1:]
    gen = table(p, "Generalisation")
    assert gen[1] == ["representation", "extrapolation", "linear", "0.900", "0.432"]
    assert ["representation", "0.900", "0.600", "0.300"] in table(p, "Transfer")[1:]

    # curves, data efficiency, symmetry heat map, robustness curves, the traversal PNG
    assert len(p.srcs) == 5
    assert sum(s.startswith("data:image/png;base64,") for s in p.srcs) == 5
    assert "Data efficiency" in html and "Symmetry response" in html
    assert "Adversarial robustness</b>" in html
    assert "Could not render" not in html
    assert "leaderboard" not in html.lower()  # one run: no comparison


def test_injected_strings_are_escaped(tmp_path):
    name = "r&d \"quoted\" 'run'"
    cfg = {"method": EVIL, "data": "sprites", "train": {"note": EVIL}, "model": {}}
    run = make_run(tmp_path, name, config=cfg)
    ev = json.loads((run / "eval.json").read_text())
    ev["method"] = '<img src=x onerror="alert(2)">'
    ev["symmetry"]["locality"]["<b>bold</b>"] = 0.1
    ev["figures"]["<i>fig</i>"] = "figures/traversals.png"
    ev["extra_result"] = EVIL
    (run / "eval.json").write_text(json.dumps(ev))
    other = make_run(tmp_path, "other", eval_=False, figures=False)  # a second run: leaderboard
    (other / "metrics.jsonl").unlink()
    html = write_report([run, other], tmp_path / "r.html").read_text()
    assert EVIL not in html and "<b>bold</b>" not in html and "<i>fig</i>" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "r&amp;d &#34;quoted&#34; &#39;run&#39;" in html
    assert 'r&d "quoted"' not in html
    p = parse(html)
    assert_self_contained(html, p)
    config = next(t for t in p.tables if t["class"] == "config")["rows"]
    assert ["train.note", EVIL] in config  # the parsed text is the original string


def test_missing_eval_and_figures(tmp_path):
    run = make_run(tmp_path, "fresh", eval_=False, figures=False)
    html = write_report([run], tmp_path / "r.html").read_text()
    p = parse(html)
    assert "No eval.json yet" in html and "No figures/ folder" in html
    assert not any(t["caption"].startswith("Linear probe") for t in p.tables)
    assert len(p.srcs) == 1  # the training curves only
    # metrics missing too: still a report with the config
    (run / "metrics.jsonl").unlink()
    html = write_report([run], tmp_path / "r.html").read_text()
    assert "No metrics.jsonl" in html and "<img" not in html and "train.lr" in html


def test_nan_null_and_malformed_parts(tmp_path):
    run = make_run(tmp_path, "odd")
    ev = {
        "method": "beta_vae",
        "dataset": "sprites",
        "linear_probe": {"0.1": {"mean": float("nan"), "std": None}, "1.0": {"mean": 0.5}},
        "baselines": ["not", "a", "dict"],
        "knn": {"accuracy": None},
        "clustering": "broken",
        "disentanglement": {"mig": float("nan"), "sap": "NaN"},
        "symmetry": {"factors": ["a"], "response": [[1.0, None], [0.5]], "locality": {"a": None}},
        "seconds": {"knn": None},
        "figures": {"traversals": "figures/missing.png", "escape": "../../etc/passwd"},
    }
    (run / "eval.json").write_text(json.dumps(ev))  # json writes NaN, Python reads it back
    with open(run / "metrics.jsonl", "a") as f:
        f.write("{not json\n[1, 2]\n")
    (run / "figures" / "notes.png").write_text("not an image")
    html = write_report([run], tmp_path / "r.html").read_text()
    p = parse(html)
    assert table(p, "Linear probe")[1:] == [["10%", "n/a"], ["100%", "0.500"]]
    dis = dict(map(tuple, table(p, "Disentanglement")[1:]))
    assert dis == {"MIG": "n/a", "SAP": "n/a"}
    assert "skipped 2 unreadable line(s)" in html
    assert "figures/missing.png is missing" in html
    assert "outside the run directory" in html
    assert "not a PNG, JPEG or GIF" in html
    assert "root:" not in html


def test_two_runs_leaderboard_and_overlays(two_run_report):
    html = two_run_report.read_text()
    p = parse(html)
    assert_self_contained(html, p)
    assert EVIL not in html
    board = table(p, "Leaderboard")
    header, rows = board[0], board[1:]
    assert len(rows) == 2
    assert header[:6] == ["run", "method", "data", "probe 1%", "probe 10%", "probe 100%"]
    col = {h: i for i, h in enumerate(header)}
    assert [r[0] for r in rows] == ["vae_a", "vae_b"]
    assert rows[0][col["kNN"]] == "0.778" and rows[1][col["kNN"]] == "0.828"
    assert rows[1][col["MIG"]] == "0.297" and rows[0][col["NMI"]] == "0.432"
    assert "FactorVAE" not in col  # all n/a: the column is dropped
    # the better run's values are bold
    assert "<strong>0.828</strong>" in html and "<strong>0.778</strong>" not in html
    # comparison: overlaid curves and data efficiency; each run: curves, efficiency, heat map,
    # robustness curves, traversal figure
    assert len(p.srcs) == 2 + 2 * 5
    assert html.index('id="comparison"') < html.index('id="run-0"') < html.index('id="run-1"')


def test_bad_run_dirs_are_refused(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ValueError, match="nope") as e:
        write_report([missing], tmp_path / "r.html")
    assert "\n" not in str(e.value)
    empty = tmp_path / "empty_run"
    empty.mkdir()
    good = make_run(tmp_path, "good")
    (tmp_path / "r.html").write_text("previous")
    with pytest.raises(ValueError, match="config.yaml.*empty_run") as e:
        write_report([good, empty], tmp_path / "r.html")
    assert "\n" not in str(e.value)
    assert (tmp_path / "r.html").read_text() == "previous"  # untouched
    with pytest.raises(ValueError):
        write_report([], tmp_path / "r.html")


def test_write_is_atomic_and_replaces(tmp_path):
    run = make_run(tmp_path, "run", eval_=False, figures=False)
    out = tmp_path / "site" / "report.html"
    out.parent.mkdir()
    out.write_text("old")
    write_report([run], out)
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert sorted(x.name for x in out.parent.iterdir()) == ["report.html"]  # no temp left
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_fmt():
    assert fmt(None) == "n/a" and fmt(float("nan")) == "n/a" and fmt(np.float64("nan")) == "n/a"
    assert fmt(0.12345) == "0.123" and fmt(3) == "3" and fmt("x") == "x"
    assert fmt(True) == "true" and fmt(float("inf")) == "∞"


# --------------------------------------------------------------------------- a real browser

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
# Page console messages (console.*, uncaught errors, CSP violations) that Chromium logs to stderr
# with --enable-logging=stderr, e.g. `[..:INFO:CONSOLE:3] "Uncaught ..."` (older: CONSOLE(3)).
CONSOLE_LINE = re.compile(r":CONSOLE[:(]\d*\)?\]")


def chromium_screenshot(page: Path, png: Path, profile: Path, size=(1280, 2400)):
    """Load ``page`` headless, save a screenshot; returns the page's console lines."""
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-default-apps",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        f"--window-size={size[0]},{size[1]}",
        f"--screenshot={png}",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert png.is_file(), f"chromium wrote no screenshot (rc {proc.returncode}):\n{proc.stderr}"
    return [line for line in proc.stderr.splitlines() if CONSOLE_LINE.search(line)]


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian: apt-get install chromium)")
@pytest.mark.timeout(120)
def test_report_renders_in_headless_chromium(two_run_report, tmp_path):
    # Positive control: the same check must see a console error and a blocked external image,
    # so a Chromium whose log format changed cannot pass the real check vacuously.
    bad = tmp_path / "bad.html"
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    bad.write_text(
        f'<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="{csp}">'
        '</head><body><img src="https://example.invalid/x.png">'
        '<script>console.error("boom")</script></body></html>'
    )
    control = chromium_screenshot(bad, tmp_path / "bad.png", tmp_path / "profile0")
    assert len(control) >= 2, "the console check is blind: Chromium's log format changed?"

    shot = tmp_path / "report.png"
    console = chromium_screenshot(two_run_report, shot, tmp_path / "profile1")
    assert console == [], "the report logged to the console:\n" + "\n".join(console)
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape == (2400, 1280)
    assert img.std() > 10  # drawn, not a blank page
    if os.environ.get("REPLAB_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["REPLAB_KEEP_SCREENSHOT"])


def test_a_darla_folder_shows_its_returns_beside_the_runs(tmp_path):
    folder = tmp_path / "darla"
    folder.mkdir()
    enc = {"source": {"mean": 2.0, "sd": 0.5}, "target": {"mean": 1.0, "sd": 0.25},
           "ratio": {"mean": 0.5, "sd": None}}  # fmt: skip
    summary = {"seeds": 3, "encoder_steps": 500, "dqn_steps": 4000, "random_policy": 0.0,
               "encoders": {"darla": enc}}  # fmt: skip
    (folder / "darla.json").write_text(json.dumps(summary))
    run = make_run(tmp_path, "vae_a")
    out = write_report([folder, run], tmp_path / "r.html")
    p = parse(out.read_text())
    rows = table(p, "DARLA: zero-shot transfer")
    assert rows[1] == ["darla", "2.000", "0.500", "1.000", "0.250", "0.500", "n/a"]
    (folder / "darla.json").write_text('{"encoders": 3}')
    with pytest.raises(ValueError, match="does not hold a DARLA comparison"):
        write_report([folder], tmp_path / "bad.html")
    assert not (tmp_path / "bad.html").exists()
