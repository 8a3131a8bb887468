"""The ``replab`` command line: list, train, embed, eval, report, demo, bench.

Bad input (an unknown key, a wrong type, a missing file) ends with one line on stderr and exit
status 2, before any work starts; a failure during training ends with exit status 1.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from replab.config import ConfigError, from_dict, load_yaml, parse_overrides, resolve, validate
from replab.data.base import DataError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Unsupervised representation learning: train, evaluate, compare.",
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()


def _fail(message: str, code: int = 2):
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _default_out(method: str, data: str) -> Path:
    name = re.sub(
        r"[^A-Za-z0-9_.-]+",
        "-",
        data.split(":", 1)[0] + ("-" + Path(data.split(":", 1)[1]).stem if ":" in data else ""),
    )
    return Path("runs") / f"{method}-{name}-{time.strftime('%Y%m%d-%H%M%S')}"


@app.command("list")
def list_cmd():
    """Methods (with their pillar) and data sets, one line each."""
    from replab.registry import DATASETS, METHODS, _load_all

    _load_all()
    table = Table(title="methods", show_lines=False)
    for col in ("name", "pillar", "what it is"):
        table.add_column(col)
    for name, e in sorted(METHODS.items(), key=lambda kv: (kv[1].pillar, kv[0])):
        table.add_row(name, e.pillar, e.summary)
    out.print(table)
    table = Table(title="data sets")
    table.add_column("name")
    table.add_column("what it is")
    for name, e in sorted(DATASETS.items()):
        table.add_row(f"{name}:PATH" if e.takes_argument else name, e.summary)
    out.print(table)


@app.command(context_settings={"allow_extra_args": False})
def train(
    method: str = typer.Argument(..., help="method name (see `replab list`)"),
    overrides: list[str] = typer.Argument(None, help="key=value settings, e.g. beta=4"),
    data: str = typer.Option(None, "--data", "-d", help="data set, e.g. sprites or idx:PATH"),
    steps: int = typer.Option(None, "--steps", help="training steps (train.steps)"),
    batch_size: int = typer.Option(None, "--batch-size", help="global batch (train.batch_size)"),
    out_dir: Path = typer.Option(None, "--out", "-o", help="run directory (default runs/...)"),
    device: str = typer.Option(None, "--device", help="auto, cpu, cuda, mps"),
    seed: int = typer.Option(None, "--seed", help="random seed (train.seed)"),
    seeds: str = typer.Option(
        None, "--seeds", help="train several seeds at once, batched (0-15 or 0,3,7): OUT/seed-S"
    ),
    resume: bool = typer.Option(False, "--resume", help="continue the run in --out"),
    config_file: Path = typer.Option(None, "--config", "-c", help="YAML config file"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
):
    """Train METHOD on a data set; prints the run directory (one per seed with --seeds)."""
    from replab.train.loop import TrainingError
    from replab.train.loop import train as run_training
    from replab.train.seeds import parse_seeds, train_seeds

    try:
        seed_list = None
        if seeds is not None:
            if seed is not None:
                raise ConfigError("--seed and --seeds: give one of them")
            if resume:
                raise ConfigError(
                    "--seeds cannot --resume; resume each seed's run on its own: "
                    "--resume --out OUT/seed-S"
                )
            seed_list = parse_seeds(seeds)
        kv = parse_overrides(overrides or [])
        for key, value in (
            ("train.steps", steps),
            ("train.batch_size", batch_size),
            ("train.device", device),
            ("train.seed", seed),
        ):
            if value is not None:
                kv[key] = value
        if resume:
            if out_dir is None:
                raise ConfigError("--resume needs --out RUN_DIR, the run to continue")
            if not (out_dir / "config.yaml").is_file():
                raise ConfigError(f"cannot resume: {out_dir} is not a run directory")
            cfg = from_dict(load_yaml(out_dir / "config.yaml"))
            if method != cfg.method:
                raise ConfigError(f"{out_dir} is a {cfg.method} run, not {method}")
            if data is not None and data != cfg.data:
                raise ConfigError(f"{out_dir} was trained on {cfg.data}, not {data}")
            for key, value in kv.items():
                if not key.startswith("train."):
                    raise ConfigError(f"{key}: only train.* settings may change on --resume")
                setattr(cfg.train, key.split(".", 1)[1], value)
            validate(cfg.train, "train")
        else:
            file_values = load_yaml(config_file) if config_file else {}
            cfg = resolve(method, data, file_values, kv)
        out_dir = out_dir or _default_out(cfg.method, cfg.data)
        from replab.data import make_dataset

        make_dataset(cfg.data)  # fail on bad data before creating anything
    except (ConfigError, DataError) as e:
        _fail(str(e))
    try:
        if seed_list is not None:
            dirs = train_seeds(cfg, seed_list, out_dir, progress=not quiet, console=err)
        else:
            dirs = [run_training(cfg, out_dir, resume=resume, progress=not quiet, console=err).dir]
    except (ConfigError, DataError) as e:
        _fail(str(e))
    except TrainingError as e:
        _fail(str(e), code=1)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    for d in dirs:
        out.print(str(d), highlight=False, soft_wrap=True)


def _load_run(run_dir: Path):
    from replab.train.run import load

    try:
        return load(run_dir)
    except FileNotFoundError as e:
        _fail(str(e))
    except (ConfigError, DataError) as e:
        _fail(f"{run_dir}: {e}")


@app.command()
def embed(
    run_dir: Path = typer.Argument(..., help="run directory"),
    data: str = typer.Option(..., "--data", "-d", help="data set to embed"),
    out_file: Path = typer.Option(..., "--out", "-o", help="output .npy file"),
    split: str = typer.Option("all", "--split", help="all, train or test"),
):
    """Write the representation of every example of a data set to a .npy file."""
    import io

    import numpy as np

    from replab.data import make_dataset
    from replab.train.io import atomic_write_bytes

    if out_file.suffix != ".npy":
        _fail(f"--out must end in .npy, got {out_file}")
    if split not in ("all", "train", "test"):
        _fail(f"--split must be all, train or test, got {split!r}")
    run = _load_run(run_dir)
    if not hasattr(run.model, "encode"):
        _fail(f"method {run.config.method} has no encoder, so it has no representation to embed")
    try:
        dataset = make_dataset(data)
    except (ValueError, DataError) as e:
        _fail(str(e))
    accepts = getattr(
        run.model, "accepts_shape", lambda shape: shape == tuple(run.model.info.shape)
    )
    if not accepts(tuple(dataset.info.shape)):
        _fail(
            f"{data} has inputs of shape {tuple(dataset.info.shape)}, but the model was "
            f"trained on {tuple(run.model.info.shape)}"
        )
    feats = run.embed(dataset.split(split))
    buf = io.BytesIO()
    np.save(buf, feats)
    atomic_write_bytes(out_file, buf.getvalue())
    err.print(f"{feats.shape[0]} x {feats.shape[1]} features")
    out.print(str(out_file), highlight=False, soft_wrap=True)


def _print_eval(result: dict) -> None:
    table = Table(title=f"{result['method']} on {result['dataset']} ({result['suite']} suite)")
    table.add_column("measure")
    table.add_column("value", justify="right")

    def fmt(v):
        return "n/a" if v is None else f"{v:.3f}"

    base = result.get("baselines", {})
    for frac, r in result.get("linear_probe", {}).items():
        others = ", ".join(
            f"{name.replace('_', ' ')} {fmt(b.get(frac, {}).get('mean'))}"
            for name, b in base.items()
        )
        table.add_row(f"linear probe, {float(frac):.0%} labels", f"{fmt(r['mean'])}  ({others})")
    if "knn" in result:
        table.add_row("kNN accuracy (k=20)", fmt(result["knn"]["accuracy"]))
    if "clustering" in result:
        c = result["clustering"]
        table.add_row("k-means NMI / ARI", f"{fmt(c['nmi'])} / {fmt(c['ari'])}")
    for k, v in result.get("disentanglement", {}).items():
        table.add_row(k, fmt(v))
    sym = result.get("symmetry")
    if sym:
        table.add_row("symmetry locality (mean)", fmt(sym["locality"]["mean"]))
        table.add_row("symmetry equivariance (mean)", fmt(sym["equivariance"]["mean"]))
    table.add_row("seconds", f"{sum(result['seconds'].values()):.1f}")
    out.print(table)


@app.command("eval")
def eval_cmd(
    run_dir: Path = typer.Argument(..., help="run directory"),
    data: str = typer.Option(None, "--data", "-d", help="data set (default: the training one)"),
    suite: str = typer.Option("standard", "--suite", help="quick, standard or full"),
    seed: int = typer.Option(0, "--seed", help="seed of every random choice in the protocol"),
):
    """Evaluate a run's representation; writes RUN/eval.json and prints a table."""
    from replab.eval.protocol import SUITES, EvaluationError, evaluate, write_eval

    if suite not in SUITES:
        _fail(f"--suite: {suite!r} is not valid; choose from: {', '.join(SUITES)}")
    run = _load_run(run_dir)
    try:
        result = evaluate(run, data, suite=suite, seed=seed, log=lambda m: err.print(m))
    except (EvaluationError, DataError) as e:
        _fail(str(e))
    except ValueError as e:  # e.g. an unknown data set name
        _fail(str(e))
    path = write_eval(run.dir, result)
    _print_eval(result)
    out.print(str(path), highlight=False, soft_wrap=True)


@app.command()
def report(
    run_dirs: list[Path] = typer.Argument(..., help="one run, or several to compare"),
    out_file: Path = typer.Option(
        None, "--out", "-o", help="HTML file (default RUN/report.html; ./report.html for several)"
    ),
):
    """One self-contained HTML report; several runs make a comparison."""
    from replab.report.html import write_report

    target = out_file or (
        run_dirs[0] / "report.html" if len(run_dirs) == 1 else Path("report.html")
    )
    try:
        path = write_report(list(run_dirs), target)
    except ValueError as e:
        _fail(str(e))
    out.print(str(path), highlight=False, soft_wrap=True)


@app.command()
def demo(
    out_dir: Path = typer.Option(None, "--out", "-o", help="run directory (default runs/demo-...)"),
    steps: int = typer.Option(2000, "--steps", help="training steps"),
    suite: str = typer.Option("quick", "--suite", help="evaluation suite"),
):
    """The embedded default end to end: beta-VAE on sprites, evaluated, reported."""
    from replab.eval.protocol import SUITES, evaluate, write_eval
    from replab.report.html import write_report
    from replab.train.loop import TrainingError
    from replab.train.loop import train as run_training

    if suite not in SUITES:
        _fail(f"--suite: {suite!r} is not valid; choose from: {', '.join(SUITES)}")
    try:
        cfg = resolve("beta_vae", "sprites", overrides={"train.steps": steps})
    except ConfigError as e:
        _fail(str(e))
    out_dir = out_dir or Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    err.print(f"training beta_vae on sprites for {steps} steps into {out_dir}")
    try:
        run = run_training(cfg, out_dir, console=err)
    except TrainingError as e:
        _fail(str(e), code=1)
    err.print(f"evaluating ({suite} suite)")
    result = evaluate(run, suite=suite, log=lambda m: err.print(m))
    write_eval(run.dir, result)
    _print_eval(result)
    path = write_report([run.dir], run.dir / "report.html")
    out.print(str(path), highlight=False, soft_wrap=True)


@app.command()
def bench(
    suite: str = typer.Option(None, "--suite", help="one benchmark (file bench_NAME.py)"),
    json_out: Path = typer.Option(None, "--json", help="write all results to this JSON file"),
    folder: Path = typer.Option(Path("benchmarks"), "--dir", help="the benchmarks folder"),
):
    """Run the throughput and quality benchmarks in benchmarks/ (slow; not part of the tests)."""
    import importlib.util
    import json

    from replab.train.io import atomic_write_json

    files = sorted(folder.glob("bench_*.py"))
    if not files:
        _fail(f"no bench_*.py files in {folder} (run from the repository root or pass --dir)")
    names = {f.stem.removeprefix("bench_"): f for f in files}
    if suite is not None and suite not in names:
        _fail(f"--suite: {suite!r} is not valid; choose from: {', '.join(names)}")
    results = {}
    for name, path in names.items():
        if suite is not None and name != suite:
            continue
        err.print(f"[bold]benchmark {name}[/]")
        spec = importlib.util.spec_from_file_location(f"replab_bench_{name}", path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(folder))  # the benchmarks share helpers (benchmarks/_timed.py)
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(folder))
        results[name] = module.main([])
    if json_out:
        atomic_write_json(json_out, json.loads(json.dumps(results, default=str)))


@app.command()
def align(
    run_a: Path = typer.Argument(..., help="run of the source language"),
    run_b: Path = typer.Argument(..., help="run of the target language"),
    dict_file: Path = typer.Option(
        ..., "--dict", help="seed pairs, MUSE format: one 'source target' pair a line"
    ),
    test_file: Path = typer.Option(None, "--test", help="test pairs (default: the seed pairs)"),
    refine: int = typer.Option(
        0, "--refine", min=0, help="rounds of Procrustes refinement on mutual CSLS neighbours"
    ),
    json_out: Path = typer.Option(None, "--json", help="also write the result to this file"),
):
    """Translate words between two runs' spaces: orthogonal Procrustes on the seed pairs, then
    precision@1/@5 by nearest neighbour and by CSLS (k=10), in both directions."""
    from replab.eval import words
    from replab.train.io import atomic_write_json

    try:
        seeds = words.read_dictionary(dict_file)
        test = words.read_dictionary(test_file) if test_file is not None else None
        spaces = []
        for run_dir in (run_a, run_b):
            try:
                spaces.append(words.load_word_vectors(run_dir))
            except FileNotFoundError as e:
                raise DataError(str(e)) from None
        result = words.align(spaces[0], spaces[1], seeds, test, refine=refine)
    except (ConfigError, DataError) as e:
        _fail(str(e))
    except ValueError as e:  # too few usable pairs, spaces of different dimension
        _fail(str(e))
    table = Table(
        title=f"{run_a.name} -> {run_b.name}: {result['seed_pairs']} seed pairs, "
        f"{result['test_pairs']} {'seed' if result['test_is_seed'] else 'test'} pairs"
        + (f", {refine} refinement rounds" if refine else "")
    )
    for col in ("retrieval", "direction", "P@1", "P@5", "chance P@1"):
        table.add_column(col, justify="left" if col in ("retrieval", "direction") else "right")
    for method in ("nn", "csls"):
        for direction, label in (("source_to_target", "a -> b"), ("target_to_source", "b -> a")):
            r = result[method][direction]
            chance = result["chance_p@1"][direction]
            table.add_row(method, label, f"{r['p@1']:.3f}", f"{r['p@5']:.3f}", f"{chance:.4f}")
    out.print(table)
    missing = result["seed_pairs_missing"] + result["test_pairs_missing"]
    if missing:
        err.print(f"{missing} pair(s) skipped: a word not in the vocabulary")
    if json_out is not None:
        atomic_write_json(json_out, result)


def main():
    try:
        app()
    except ConfigError as e:  # raised outside a command's own handling
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
