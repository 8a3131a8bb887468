"""The prepared GPU check: every method on the device, then the throughputs the GPU targets name.

A GPU is not always at hand, so this is written to spend the first minutes on one measuring,
not debugging. On CUDA it runs the full check (at most 8 minutes on one GPU); on a CPU the same
code runs a small version (``--small``, implied there), which the tests run, so it keeps working.

1. ``methods``: every registered method, default settings, on the first procedural data set it
   takes, ``--method-steps`` steps on the device (20; small: 2): the losses finite, and a run
   stopped halfway and resumed equal to the straight one (bit for bit; on CUDA under
   ``torch.use_deterministic_algorithms``; on a CPU on one thread, as word2vec's Hogwild
   threads are not exact to resume; the largest difference is reported beside).
2. ``beta_vae``: sprites at batch 64, replab's step beside a plain PyTorch step
   (``bench_train``); target 42,000 images/s on an H200.
3. ``simclr``: the CIFAR ResNet-18 at batch 512 on 32x32 images, source images/s beside a plain
   step (``bench_simclr``); target 30,000.
4. ``seeds``: 16 ``beta_vae`` seeds at once against one (``bench_seeds``); target 8x.
5. ``word2vec``: words/s of the default engine on the device (the batched one on a GPU) on
   tinyshakespeare, beside gensim's on the CPU where gensim is installed; target 3x gensim.
6. ``presets``: the object and scene models at their papers' sizes (``model.preset=paper``)
   and batches: training examples/s, and the hours the paper's steps would take at that rate
   (the README's preset table had only their FLOP). Small: the CPU defaults, batch 4.
7. ``variants``: the speed-ups behind settings (``train.compile``'s modes, channels-last),
   each beside the same run without it, so that their defaults on CUDA can be decided.

Parts not begun within ``--budget`` seconds (450) are reported skipped, so the whole check ends
within 8 minutes even where a part is slower than expected.

Nothing is installed: from a source tree, ``PYTHONPATH=src python3 -m
replab.benchmarks.bench_gpu --json gpu.json`` (or ``replab bench --suite gpu --json F``). A
failing part is reported in its row and the check goes on; the short table is printed last.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

TARGETS = {  # on one H200, from the speed issue
    "beta_vae": ("images/s", 42_000),
    "simclr": ("source images/s", 30_000),
    "seeds": ("x one seed's images/s", 8),
    "word2vec": ("x gensim's CPU words/s", 3),
}


def check_method(method: str, steps: int, root: Path, datasets: dict) -> dict:
    """Train ``method`` straight for ``steps`` steps and again stopped halfway and resumed."""
    from replab.benchmarks.bench_methods import first_accepted
    from replab.methods import configure
    from replab.training.loop import train

    data = first_accepted(method, datasets)
    if data is None:
        return {"ok": False, "note": "takes none of the procedural data sets"}
    half = max(1, steps // 2)
    overrides = {"train.steps": steps, "train.log_every": 1, "train.checkpoint_every": half}
    cfg = configure(method, data, overrides=overrides)
    start = time.perf_counter()
    straight = train(cfg, datasets[data], root / f"{method}-a", progress=False)
    seconds = time.perf_counter() - start
    train(cfg, datasets[data], root / f"{method}-b", stop_after=half, progress=False)
    resumed = train(cfg, datasets[data], root / f"{method}-b", resume=True, progress=False)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    equal = all(torch.equal(a[k], b[k]) for k in a)
    diff = max(
        (float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].numel()),
        default=0.0,
    )
    lines = (root / f"{method}-a" / "metrics.jsonl").read_text().splitlines()
    losses = [json.loads(line)["loss"] for line in lines]
    finite = bool(np.all(np.isfinite(losses)))
    return {
        "ok": finite and equal,
        "data": data,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "finite": finite,
        "resume_equal": equal,
        "resume_max_abs_diff": diff,
        "seconds": seconds,
        "samples_per_s": steps * cfg.train.batch_size / seconds,
    }


def word2vec_rate(small: bool, gpu: bool) -> dict:
    """Words/s of replab's default engine on the device, beside gensim's on the CPU."""
    from replab.benchmarks.bench_word2vec import (
        DEFAULT_CORPUS,
        _sentences,
        analogy_file,
        scores,
        train_gensim,
    )
    from replab.data import make_dataset
    from replab.eval.words import load_word_vectors, read_analogies
    from replab.methods import configure
    from replab.training.loop import train

    spec = f"text:{DEFAULT_CORPUS}" if DEFAULT_CORPUS.is_file() else "bilingual_a"
    data = make_dataset(spec)
    sentences, words = _sentences(data)
    chunks = len(sentences)
    # a GPU wants many pairs per step: 1,024 chunks (65,536 words) a batch
    batch = 1024 if gpu else 32
    steps = 4 if small else int(np.ceil(5 * chunks / batch))
    cfg = configure(
        "word2vec",
        spec,
        overrides={"train.steps": steps, "train.batch_size": batch, "train.log_every": steps},
    )
    with tempfile.TemporaryDirectory(prefix="gpu-word2vec-") as tmp:
        start = time.perf_counter()
        train(cfg, data, Path(tmp) / "run", progress=False)
        seconds = time.perf_counter() - start
        quality = {}
        if DEFAULT_CORPUS.is_file():  # the analogy set is tinyshakespeare's
            questions = read_analogies(analogy_file(Path(tmp) / "questions.txt"))
            quality = scores(load_word_vectors(Path(tmp) / "run"), questions)
    corpus_words = steps * batch * words / chunks
    result = {
        "data": spec,
        "batch_chunks": batch,
        "steps": steps,
        "engine": "batched" if gpu else "compiled",
        "words_per_s": corpus_words / seconds,
        # tinyshakespeare's analogies (bench_word2vec: gensim gets about 55 of 342 in 5 epochs)
        "analogy_correct": quality.get("analogy_correct"),
    }
    try:
        import gensim  # noqa: F401
    except ImportError:
        result["gensim"] = "not installed"
        return result
    epochs = 1 if small else 5
    _, g_seconds = train_gensim(sentences, epochs, 0, os.cpu_count() or 1)
    result["gensim_cpu_words_per_s"] = epochs * words / g_seconds
    result["ratio"] = result["words_per_s"] / result["gensim_cpu_words_per_s"]
    return result


def loop_rate(method: str, data: str, batch: int, steps: int, overrides: dict) -> float:
    """Samples/s of the training loop over the warm half of ``steps`` steps."""
    from replab.benchmarks.timing import timed_overrides, warm_rate
    from replab.data import make_dataset
    from replab.methods import configure
    from replab.training.loop import train

    cfg = configure(method, data, overrides=timed_overrides(steps, batch, **overrides))
    with tempfile.TemporaryDirectory(prefix="gpu-rate-") as tmp:
        train(cfg, make_dataset(data), Path(tmp) / "run", progress=False)
        return warm_rate(Path(tmp) / "run")


# method -> (data, the paper's batch, the paper's training steps). MONet: replab's default
# batch and no hours (its paper's batch and steps were not checked).
PRESET_RUNS = {
    "slot_attention": ("tetrominoes", 64, 500_000),
    "monet": ("tetrominoes", 32, None),
    "gqn": ("rooms", 36, 2_000_000),
}


def presets(small: bool) -> dict:
    """Training examples/s of each object and scene model at ``model.preset=paper`` and its
    paper's batch over the warm half of 40 steps (small: CPU defaults, batch 4, 4 steps)."""
    runs = {}
    for method, (data, batch, _) in PRESET_RUNS.items():
        batch = 4 if small else batch
        more = {} if small else {"model.preset": "paper"}
        rate = loop_rate(method, data, batch, 4 if small else 40, more)
        runs[method] = {"batch": batch, "examples_per_s": rate}
    return {"preset": "cpu" if small else "paper", "runs": runs}


def variants(small: bool) -> dict:
    """The speed-ups behind settings, each against the same run without it: torch.compile,
    CUDA-graph replay (reduce-overhead), channels-last, and sprites rendered on the host
    instead of on the device (the default) for ``beta_vae`` at batch 64;
    torch.compile and channels-last for SimCLR's ResNet-18 at batch 512. Small: channels-last
    for ``beta_vae`` only (compiling takes longer on a CPU than the rest of the check)."""
    from replab.benchmarks.bench_simclr import replab_rate

    if small:
        settings = {"beta_vae": [{}, {"train.memory_format": "channels_last"}]}
    else:
        settings = {
            "beta_vae": [
                {},
                {"train.compile": "default"},
                {"train.compile": "reduce-overhead"},
                {"train.memory_format": "channels_last"},
                {"train.data_device": "host"},
            ],
            "simclr": [
                {},
                {"train.compile": "default"},
                {"train.memory_format": "channels_last"},
            ],
        }
    rates = {}
    for model, tries in settings.items():
        for more in tries:
            label = f"{model} " + (" ".join(f"{k}={v}" for k, v in more.items()) or "as default")
            if model == "beta_vae":
                rates[label] = loop_rate("beta_vae", "sprites", 8 if small else 64,
                                         4 if small else 400, more)  # fmt: skip
            else:
                rates[label] = replab_rate(512, 32, 10, 30, more)
    return {"images_per_s": rates}


def _part(name: str, fn, results: dict, log, deadline: float) -> None:
    """Run one part, unless the time budget is spent; an exception becomes its row's error
    and the check goes on."""
    start = time.perf_counter()
    if start > deadline:
        results[name] = {"error": "skipped: the check's time budget was spent"}
        log(f"{name}: skipped (time budget)")
        return
    try:
        results[name] = fn()
    except Exception as e:  # noqa: BLE001 - a check reports every failure and carries on
        results[name] = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
    results[name]["part_seconds"] = time.perf_counter() - start
    log(f"{name}: {results[name]['part_seconds']:.1f} s")


def summary_rows(r: dict) -> list[tuple[str, str, str]]:
    """(part, measured, beside) rows: the table printed last and quoted in BENCHMARKS.md."""
    where = r["device"] + (" (small version)" if r["small"] else "")
    rows = []
    methods = r.get("methods", {})
    if "error" in methods:
        rows.append((f"gpu check, methods, {where}", methods["error"], ""))
    else:
        failed = [m for m, v in methods.get("checked", {}).items() if not v["ok"]]
        n = len(methods.get("checked", {}))
        rows.append((
            f"gpu check, {n} methods x {methods.get('steps')} steps, {where}",
            f"{n - len(failed)} finite and resumed equal",
            ("failed: " + ", ".join(failed)) if failed else "",
        ))  # fmt: skip

    def measured(name: str, figure: str, plain: str | None, unit: str) -> None:
        part = r.get(name, {})
        if "error" in part:
            rows.append((f"gpu check, {name}, {where}", part["error"], ""))
            return
        if figure not in part:
            return
        value = part[figure]
        what, target = TARGETS[name]
        beside = [] if r["small"] else [f"target {target:,} {what}"]
        if plain and plain in part:
            beside.insert(0, f"plain PyTorch {part[plain]:,.0f} {unit}")
        shown = f"{value:,.2f}x" if what.startswith("x") else f"{value:,.0f} {unit}"
        rows.append((f"gpu check, {name}, {where}", shown, "; ".join(beside)))

    measured("beta_vae", "replab_samples_per_s", "plain_pytorch_samples_per_s", "images/s")
    measured("simclr", "replab_images_per_s", "plain_images_per_s", "images/s")
    measured("seeds", "speedup", None, "")
    w = r.get("word2vec", {})
    if "ratio" in w:
        measured("word2vec", "ratio", None, "")
    elif "words_per_s" in w:
        rows.append((f"gpu check, word2vec, {where}", f"{w['words_per_s']:,.0f} words/s", ""))
    elif "error" in w:
        rows.append((f"gpu check, word2vec, {where}", w["error"], ""))
    pre = r.get("presets", {})
    if "error" in pre:
        rows.append((f"gpu check, presets, {where}", pre["error"], ""))
    for method, run in pre.get("runs", {}).items():
        steps, rate = PRESET_RUNS[method][2], run["examples_per_s"]
        hours = ""
        if not r["small"] and steps is not None:
            hours = f"the paper's {steps:,} steps: {steps * run['batch'] / rate / 3600:,.1f} h"
        setting = (f"gpu check, {method} model.preset={pre['preset']}, batch {run['batch']}, "
                   f"{where}")  # fmt: skip
        rows.append((setting, f"{rate:,.1f} examples/s", hours))
    v = r.get("variants", {})
    if "error" in v:
        rows.append((f"gpu check, variants, {where}", v["error"], ""))
    rates = v.get("images_per_s", {})
    for label, rate in rates.items():
        base = rates.get(label.split(" ")[0] + " as default")
        ratio = f"{rate / base:.2f}x the default" if base and base != rate else ""
        rows.append((f"gpu check, {label}, {where}", f"{rate:,.0f} images/s", ratio))
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="the CPU version (implied without CUDA)")
    p.add_argument("--method-steps", type=int, default=None, help="20 on CUDA; small: 2")
    p.add_argument("--only", default="", help="comma-separated methods for part 1 (all)")
    p.add_argument("--skip", default="", help="comma-separated parts to leave out")
    p.add_argument(
        "--budget", type=float, default=450, help="seconds; parts not begun by then are skipped"
    )
    args = p.parse_args(argv)
    deadline = time.perf_counter() + args.budget

    gpu = torch.cuda.is_available()
    small = args.small or not gpu
    if gpu:  # resumed runs compare bit for bit only with deterministic kernels
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    from replab.benchmarks import bench_seeds, bench_simclr, bench_train
    from replab.methods import method_names

    device = torch.cuda.get_device_name() if gpu else "cpu"
    result: dict = {"benchmark": "gpu", "device": device, "small": small,
                    "torch": torch.__version__}  # fmt: skip
    skip = set(filter(None, args.skip.split(",")))

    def log(message: str) -> None:
        print(message, flush=True)

    def methods() -> dict:
        steps = args.method_steps or (2 if small else 20)
        names = [m for m in method_names() if not args.only or m in args.only.split(",")]
        checked, datasets = {}, {}
        torch.use_deterministic_algorithms(True, warn_only=True)
        threads = torch.get_num_threads()
        if not gpu:  # word2vec's compiled engine resumes exactly on one thread only
            torch.set_num_threads(1)
        try:
            with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
                for name in names:
                    try:
                        checked[name] = check_method(name, steps, Path(tmp), datasets)
                    except Exception as e:  # noqa: BLE001 - one method's failure is its row
                        checked[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
                    log(f"  {name}: {'ok' if checked[name]['ok'] else checked[name]}")
        finally:
            torch.use_deterministic_algorithms(False)
            torch.set_num_threads(threads)
        return {"steps": steps, "checked": checked}

    parts = {
        "methods": methods,
        "beta_vae": lambda: bench_train.main(
            ["--steps", "8", "--rounds", "1", "--batch-size", "8"] if small
            else ["--steps", "300", "--rounds", "2"]
        ),
        "simclr": lambda: bench_simclr.main(
            ["--batch-size", "8", "--steps", "1", "--warmup", "0"] if small
            else ["--batch-size", "512", "--steps", "40", "--warmup", "10"]
        ),
        "seeds": lambda: bench_seeds.main(
            ["--seeds", "2", "--steps", "4", "--rounds", "1", "--batch-size", "8"] if small
            else ["--seeds", "16", "--steps", "100", "--rounds", "2"]
        ),
        "word2vec": lambda: word2vec_rate(small, gpu),
        "presets": lambda: presets(small),
        "variants": lambda: variants(small),
    }  # fmt: skip
    for name, fn in parts.items():
        if name not in skip:
            _part(name, fn, result, log, deadline)
    log("\n" + "\n".join(" | ".join(row) for row in summary_rows(result)))
    return result


if __name__ == "__main__":
    import sys

    from replab.benchmarks import machine

    argv = sys.argv[1:]
    json_path = None
    if "--json" in argv:  # as ``replab bench --suite gpu --json F`` writes it
        at = argv.index("--json")
        json_path, argv = Path(argv[at + 1]), argv[:at] + argv[at + 2 :]
    out = main(argv)
    if json_path is not None:
        record = {"machine": machine(), "results": {"gpu": out}}
        json_path.write_text(json.dumps(record, indent=2, default=str))
