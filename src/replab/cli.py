"""The ``replab`` command line: list, train, embed, eval, report, align, demo, bench,
check-sprites.

Bad input (an unknown key, a wrong type, a missing file) ends with one line on stderr and exit
status 2, before any work starts; a failure during training ends with exit status 1. Each
command builds its data set once, from the spec, and hands the object on.
"""

from __future__ import annotations

import io
import re
import signal
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from replab.config import ConfigError, load_yaml, parse_overrides, validate
from replab.data.base import DataError
from replab.rl import DARLA_DAE_STEPS, DARLA_ENCODER_STEPS, DARLA_ENCODERS, DQN_STEPS

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


def _data(spec: str):
    """The data set ``spec`` names, or a one-line exit 2."""
    from replab.data import make_dataset

    try:
        return make_dataset(spec)
    except ValueError as e:  # DataError included
        _fail(str(e))


@app.command("list")
def list_cmd():
    """Methods (with their pillar and the data they take) and data sets, one line each."""
    import replab.data  # noqa: F401  (registers the data sets)
    import replab.methods  # noqa: F401  (registers the methods)
    from replab.registry import DATASETS, METHODS

    table = Table(title="methods", show_lines=False)
    for col in ("name", "pillar", "trains on", "what it is"):
        table.add_column(col)
    for name, e in sorted(METHODS.items(), key=lambda kv: (kv[1].pillar, kv[0])):
        table.add_row(name, e.pillar, e.obj.accepts.describe(), e.summary)
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
    from replab.methods import configure
    from replab.run import read_config
    from replab.training.loop import TrainingError
    from replab.training.loop import train as run_training
    from replab.training.seeds import parse_seeds, train_seeds

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
            cfg = read_config(out_dir)
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
            cfg = configure(method, data, file_values, kv)
        out_dir = out_dir or _default_out(cfg.method, cfg.data)
        dataset = _data(cfg.data)
    except (ConfigError, DataError) as e:
        _fail(str(e))
    try:
        if seed_list is not None:
            dirs = train_seeds(cfg, dataset, seed_list, out_dir, progress=not quiet, console=err)
        else:
            run = run_training(
                cfg, dataset, out_dir, resume=resume, progress=not quiet, console=err
            )
            dirs = [run.dir]
    except (ConfigError, DataError) as e:
        _fail(str(e))
    except TrainingError as e:
        _fail(str(e), code=1)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    for d in dirs:
        out.print(str(d), highlight=False, soft_wrap=True)


def _load_run(run_dir: Path):
    from replab.run import load

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
    import numpy as np

    from replab.eval.protocol import EvaluationError, check_evaluable
    from replab.files import atomic_write_bytes

    if out_file.suffix != ".npy":
        _fail(f"--out must end in .npy, got {out_file}")
    if split not in ("all", "train", "test"):
        _fail(f"--split must be all, train or test, got {split!r}")
    run = _load_run(run_dir)
    dataset = _data(data)
    try:
        check_evaluable(run, dataset)
    except EvaluationError as e:
        _fail(str(e))
    feats = run.embed(dataset.split(split))
    buf = io.BytesIO()
    np.save(buf, feats)
    atomic_write_bytes(out_file, buf.getvalue())
    err.print(f"{feats.shape[0]} x {feats.shape[1]} features")
    out.print(str(out_file), highlight=False, soft_wrap=True)


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="run directory"),
    out_dir: Path = typer.Option(..., "--out", "-o", help="a new folder for the encoder"),
    fmt: str = typer.Option("torchscript", "--format", help="torchscript or onnx"),
):
    """Write the run's encoder as a file PyTorch (or onnxruntime) loads without replab, with a
    README saying what goes in and what comes out; checked against encode before it is kept."""
    from replab.run.export import ExportError, export_encoder

    run = _load_run(run_dir)
    try:
        path = export_encoder(run, out_dir, fmt)
    except (ConfigError, ExportError) as e:
        _fail(str(e))
    out.print(str(path), highlight=False, soft_wrap=True)


@app.command()
def explore(
    run_dirs: list[Path] = typer.Argument(..., help="one run, or several to see side by side"),
    data: str = typer.Option(None, "--data", "-d", help="data to show (default: the first run's)"),
    examples: int = typer.Option(500, "--examples", min=10, help="test examples on the maps"),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="0: a free port"),
):
    """Look at the runs' representations in the browser: maps of the codes, nearest neighbours,
    latent sliders that decode live. Serves 127.0.0.1 only, to the URL's token; Ctrl-C stops."""
    from replab.report.explorer import Explorer, make_server

    runs = [_load_run(d) for d in run_dirs]
    dataset = _data(data or runs[0].config.data)
    try:
        explorer = Explorer(runs, dataset, n=examples)
        server, url = make_server(explorer, port)
    except ConfigError as e:
        _fail(str(e))
    except OSError as e:  # the port is taken
        _fail(f"--port {port}: {e.strerror or e}")
    # Ctrl-C stops it even when started with SIGINT ignored (nohup, or a parent that ignores it:
    # Python then leaves it ignored, and the server could not be stopped)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    out.print(url, highlight=False, soft_wrap=True)
    err.print("serving on 127.0.0.1 only; Ctrl-C stops it")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        err.print("stopped")


def _print_eval(result) -> None:
    """The result's tables, as the report shows them, on the terminal."""
    from replab.eval.parts.baselines import BaselinesResult
    from replab.eval.parts.linear_probe import LinearProbeResult
    from replab.eval.parts.probe_curves import ProbeScore, probe_table
    from replab.report.format import fmt, pm

    def text(v) -> str:
        return pm(v.mean, v.std) if isinstance(v, ProbeScore) else fmt(v)

    title = f"{result.method} on {result.dataset} ({result.suite} suite)"
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in result.summary().items():
        table.add_row(name, text(value))
    table.add_row("seconds", f"{sum(result.seconds.values()):.1f}")
    out.print(table)
    probe, base = result.get(LinearProbeResult), result.get(BaselinesResult)
    tables = [probe_table(probe.curve if probe else None, base.curves if base else None)]
    tables += [t for part in result.parts.values() for t in part.tables()]
    for t in tables:
        if t is None:
            continue
        rich = Table(title=t.title)
        for col in t.columns:
            rich.add_column(col)
        for row in t.rows:
            rich.add_row(*(text(c) for c in row))
        out.print(rich)


@app.command("eval")
def eval_cmd(
    run_dir: Path = typer.Argument(..., help="run directory"),
    data: str = typer.Option(None, "--data", "-d", help="data set (default: the training one)"),
    suite: str = typer.Option("standard", "--suite", help="quick, standard or full"),
    only: str = typer.Option(None, "--only", help="run only these parts (comma-separated)"),
    seed: int = typer.Option(0, "--seed", help="seed of every random choice in the protocol"),
    epsilons: str = typer.Option(
        None, "--epsilons", help="robustness: attack sizes in 1/255, e.g. 0,1,2,4,8,16"
    ),
    transfer_data: str = typer.Option(
        None, "--transfer-data", help="transfer: the shifted rendering (default: the data's own)"
    ),
    extrapolation_share: float = typer.Option(
        None, "--extrapolation-share", help="generalisation: top share of each factor held out"
    ),
):
    """Evaluate a run's representation; writes RUN/eval.json (and figures) and prints tables."""
    from replab.eval.protocol import EvaluationError, evaluate, suite_named, write_eval
    from replab.eval.robustness import parse_epsilons

    try:
        chosen = suite_named(suite)
    except EvaluationError as e:
        _fail(f"--suite: {e}")
    if only:
        chosen = chosen.only(tuple(p.strip() for p in only.split(",") if p.strip()))
    options = {}
    if epsilons is not None:
        try:
            options["epsilons"] = parse_epsilons(epsilons)
        except ValueError as e:
            _fail(f"--epsilons: {e}")
    if transfer_data is not None:
        options["transfer_data"] = transfer_data
    if extrapolation_share is not None:
        options["extrapolation_share"] = extrapolation_share
    chosen = chosen.with_options(**options)
    run = _load_run(run_dir)
    dataset = _data(data or run.config.data)
    try:
        result = evaluate(run, dataset, chosen, seed=seed, log=lambda m: err.print(m))
    except (EvaluationError, DataError) as e:
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
    from replab.eval.protocol import EvaluationError, evaluate, suite_named, write_eval
    from replab.methods import configure
    from replab.report.html import write_report
    from replab.training.loop import TrainingError
    from replab.training.loop import train as run_training

    try:
        chosen = suite_named(suite)
        cfg = configure("beta_vae", "sprites", overrides={"train.steps": steps})
    except (ConfigError, EvaluationError) as e:
        _fail(str(e))
    dataset = _data(cfg.data)
    out_dir = out_dir or Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    err.print(f"training beta_vae on sprites for {steps} steps into {out_dir}")
    try:
        run = run_training(cfg, dataset, out_dir, console=err)
    except (ConfigError, DataError) as e:
        _fail(str(e))
    except TrainingError as e:
        _fail(str(e), code=1)
    err.print(f"evaluating ({suite} suite)")
    result = evaluate(run, dataset, chosen, log=lambda m: err.print(m))
    write_eval(run.dir, result)
    _print_eval(result)
    path = write_report([run.dir], run.dir / "report.html")
    out.print(str(path), highlight=False, soft_wrap=True)


@app.command()
def bench(
    suite: str = typer.Option(None, "--suite", help="one benchmark (see --list)"),
    json_out: Path = typer.Option(None, "--json", help="write the results to this JSON file"),
    folder: Path = typer.Option(
        None, "--dir", help="run the bench_*.py files of this folder instead of replab's own"
    ),
    list_only: bool = typer.Option(False, "--list", help="name the benchmarks and stop"),
):
    """Run the throughput and quality benchmarks (slow; not part of the tests)."""
    from replab import benchmarks
    from replab.files import atomic_write_json

    try:
        found = benchmarks.discover(folder)
    except ValueError as e:
        _fail(str(e))
    if list_only:
        for name, doc in found.items():
            out.print(f"{name:10s} {doc}", highlight=False)
        return
    if suite is not None and suite not in found:
        _fail(f"--suite: {suite!r} is not valid; choose from: {', '.join(found)}")
    results = benchmarks.run([suite] if suite else list(found), folder, log=err.print)
    if json_out:
        atomic_write_json(json_out, results)


@app.command("bench-doc")
def bench_doc(
    json_files: list[Path] = typer.Argument(..., help="results written by `replab bench --json`"),
    out_file: Path = typer.Option(Path("BENCHMARKS.md"), "--out", "-o", help="Markdown file"),
):
    """Write the benchmark document (Markdown) from benchmark results."""
    from replab import benchmarks
    from replab.files import atomic_write_text

    try:
        text = benchmarks.document(json_files)
    except ValueError as e:
        _fail(str(e))
    atomic_write_text(out_file, text)
    out.print(str(out_file), highlight=False, soft_wrap=True)


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
    from replab.files import atomic_write_json

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


@app.command()
def darla(
    out_dir: Path = typer.Option(Path("darla"), "--out", "-o", help="folder for runs, darla.json"),
    seeds: int = typer.Option(3, "--seeds", min=1),
    encoder_steps: int = typer.Option(
        DARLA_ENCODER_STEPS, "--encoder-steps", min=1, help="steps per encoder"
    ),
    dae_steps: int = typer.Option(
        DARLA_DAE_STEPS, "--dae-steps", min=0, help="darla: of which the DAE's"
    ),
    dqn_steps: int = typer.Option(
        DQN_STEPS, "--dqn-steps", min=100, help="environment steps per DQN"
    ),
    episodes: int = typer.Option(30, "--episodes", min=1, help="test episodes per domain"),
    encoders: str = typer.Option(",".join(DARLA_ENCODERS), "--encoders", help="comma-separated"),
):
    """DARLA: DQNs on frozen representations, trained in one domain, tested zero-shot in another."""
    from replab.darla import ENCODERS, RESULT_FILE, run_darla
    from replab.rl.dqn import DQNConfig

    chosen = tuple(e.strip() for e in encoders.split(",") if e.strip())
    bad = [e for e in chosen if e not in ENCODERS]
    if bad or not chosen:
        _fail(f"--encoders: unknown {bad[0] if bad else '(none given)'!r}; choose from "
              f"{', '.join(ENCODERS)}")  # fmt: skip
    if dae_steps >= encoder_steps and "darla" in chosen:
        _fail(f"--dae-steps ({dae_steps}) must be below --encoder-steps ({encoder_steps})")
    summary = run_darla(
        out_dir, seeds=seeds, encoder_steps=encoder_steps, dae_steps=dae_steps,
        dqn=DQNConfig(steps=dqn_steps), episodes=episodes, encoders=chosen,
        log=lambda m: err.print(m, highlight=False),
    )  # fmt: skip
    for name, r in summary["encoders"].items():
        line = (f"{name}: source {r['source']['mean']:.2f}, target {r['target']['mean']:.2f}, "
                    f"ratio {r['ratio']['mean']:.2f}")  # fmt: skip
        out.print(line, highlight=False)
    out.print(str(out_dir / RESULT_FILE), highlight=False)


@app.command("check-sprites")
def check_sprites(
    path: Path = typer.Argument(..., help="the dSprites release file (dsprites_ndarray_*.npz)"),
    sample: int = typer.Option(
        0, "--sample", min=0, help="compare this many grid points drawn at random (0: all)"
    ),
    json_out: Path = typer.Option(None, "--json", help="also write the result to this file"),
):
    """Compare replab's procedural sprites with the dSprites release, pixel by pixel: the share of
    identical pixels and images, and per factor the value whose images differ most often."""
    from replab.data import dsprites
    from replab.files import atomic_write_json

    try:
        imgs, sizes = dsprites.read_release(path)
        result = dsprites.check_renderer(
            imgs, sizes, sample=sample or None, log=lambda line: err.print(line, highlight=False)
        )
    except DataError as e:
        _fail(str(e))
    table = Table(title=f"replab sprites vs {path.name}: {result['images']:,} images")
    for col in ("factor", "worst value", "its images differing"):
        table.add_column(col, justify="left" if col == "factor" else "right")
    for name, worst in result["by_factor"].items():
        table.add_row(name, str(worst["worst_value"]), f"{worst['images_differing']:.2%}")
    out.print(table)
    out.print(
        f"identical pixels {result['identical_pixels']:.4%}, "
        f"identical images {result['identical_images']:.2%}"
    )
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
