"""The benchmarks ship in the package, and their document is generated from their results."""

import json

import pytest
from typer.testing import CliRunner

from replab import benchmarks
from replab.cli import app
from replab.eval.results import spread

TRAIN = {
    "benchmark": "train",
    "method": "beta_vae",
    "data": "sprites",
    "batch_size": 64,
    "device": "cpu",
    "threads": 2,
    "replab_samples_per_s": 700.0,
    "plain_pytorch_samples_per_s": 800.0,
    "ratio": 0.875,
    "replab_bf16_samples_per_s": 1400.0,
    "replab_bf16_default_layout_samples_per_s": 1000.0,
}
SEEDS = {
    "benchmark": "seeds",
    "method": "beta_vae",
    "data": "sprites",
    "batch_size": 64,
    "device": "cpu",
    "threads": 2,
    "seeds": 4,
    "one_seed_samples_per_s": 800.0,
    "all_seeds_samples_per_s": 880.0,
    "speedup": 1.1,
}


def test_the_packaged_benchmarks_are_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found = benchmarks.discover()
    assert {"train", "seeds", "methods", "word2vec", "cpc", "simclr", "data"} <= set(found)
    assert all(found.values())  # each says what it measures


def test_the_document_quotes_each_result_as_its_benchmark_reads_it(tmp_path):
    results = tmp_path / "cpu.json"
    machine = {"date": "2026-12-04", "cpu": "Test CPU", "cores": 2, "threads": 2}
    extra = {"other": {"x": 1}}
    results.write_text(
        json.dumps({"machine": machine, "results": {"train": TRAIN, "seeds": SEEDS, **extra}})
    )
    text = benchmarks.document([results])
    assert "## cpu.json" in text and "Test CPU, 2 cores" in text
    assert "| train: beta_vae on sprites, batch 64, cpu | 700 samples/s; bf16 1,400" in text
    assert "plain PyTorch loop 800 (replab 0.88x)" in text
    assert "| seeds: 4 beta_vae seeds at once on sprites, cpu | 880 samples/s in all |" in text
    assert '| other | {"x": 1} |' in text  # a benchmark this package does not know: as it is
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="bad.json: not a `replab bench --json` result file"):
        benchmarks.document([tmp_path / "bad.json"])


def test_bench_doc_through_the_cli(tmp_path):
    results = tmp_path / "r.json"
    results.write_text(json.dumps({"machine": {}, "results": {"seeds": SEEDS}}))
    out = tmp_path / "BENCHMARKS.md"
    ok = CliRunner().invoke(app, ["bench-doc", str(results), "--out", str(out)])
    assert ok.exit_code == 0, ok.stderr
    assert out.read_text().startswith("# replab benchmarks")
    bad = CliRunner().invoke(app, ["bench-doc", str(tmp_path / "nope.json"), "--out", str(out)])
    assert bad.exit_code == 2 and "nope.json" in bad.stderr


def test_peak_memory_tells_held_memory_from_mapped_pages(tmp_path):
    """An array filled in memory counts as held; a memory-mapped file read all over does not
    (its pages are the kernel's cache), though ru_maxrss would count both."""
    import numpy as np

    from replab.benchmarks.bench_loaders import PeakMemory

    path = tmp_path / "big.bin"
    path.write_bytes(bytes(96 * 2**20))
    with PeakMemory() as before:
        pass
    with PeakMemory() as mapped:  # the map stays open until the last sample, at the exit
        pages = np.memmap(path, dtype=np.uint8, mode="r")
        total = int(pages.sum(dtype=np.int64))
    del pages
    with PeakMemory() as held:
        array = np.ones(96 * 2**20, dtype=np.uint8)
        total += int(array.sum())
    assert total == 96 * 2**20
    assert mapped.file_mb - before.file_mb > 80 and mapped.anon_mb - before.anon_mb < 40
    assert held.anon_mb - before.anon_mb > 80


def test_the_loaders_rows_read_memory_and_times():
    from replab.benchmarks.bench_loaders import summary_rows

    run = {"load_s": 0.05, "first_batch_s": 0.01, "images_per_s": 1000.0,
           "peak_anon_mb": 300.0, "peak_file_mb": 900.0}  # fmt: skip
    result = {
        "import_only_anon_mb": 150.0,
        "loaders": {
            "mpi3d": {
                "examples": 1_036_800,
                "file_gb": 12.74,
                "cache_gb": 0.0,
                "first": {**run, "load_s": 2.5},
                "later": run,
            },  # fmt: skip
        },
        "check_sprites": {"seconds": 61.0, "images": 737_280, "identical_pixels": 1.0},
    }
    (loader, ours, beside), check = summary_rows(result)
    assert loader == "loader: mpi3d (1,036,800 examples, 12.74 GB of files, cache 0.00 GB)"
    assert ours == "first load 2.5 s, later 50.0 ms; 1,000 images/s in batches of 64"
    assert beside.startswith("peak memory held 300 MB first, 300 MB later (importing replab: 150")
    assert check[1:] == ("61 s", "identical pixels 100.0000% (file drawn by replab)")


def test_the_joint_embedding_comparison_reads_probes_beside_baselines():
    from replab.benchmarks import bench_joint

    r = bench_joint.main(["--methods", "simclr,vicreg", "--steps", "2", "--batch-size", "16",
                          "--seeds", "2", "--suite", "quick"])  # fmt: skip
    digits = r["results"]["digits"]
    assert set(digits) == {"simclr", "vicreg"}
    for m in digits.values():
        assert len(m["probe_0.01"]["runs"]) == 2 and 0 <= m["probe_0.1"]["mean"] <= 1
        assert set(m["baselines"]) == {"pixels", "random_encoder"}
    rows = bench_joint.summary_rows(r)
    assert rows[0][0] == "joint: simclr on digits, 2 steps, batch 16, published settings, 2 seeds"
    assert rows[0][2].startswith("pixels ")


def test_the_lecture_claims_read_each_split_and_the_attack_area_beside_baselines():
    from replab.benchmarks import bench_lecture

    pairs = (("representation", 0.5, 0.25), ("pixels_pca256", 0.4, -0.1))
    gen = {enc: {"composition": spread([c]), "extrapolation": spread([e])}
           for enc, c, e in pairs}  # fmt: skip
    r = {"data": "sprites", "steps": 10, "batch_size": 8, "suite": "quick", "seeds": 1,
         "results": {"vae": {"generalisation": gen, "pgd_area": {
             "representation": spread([0.3]), "pixels_pca256": spread([0.1])}}}}  # fmt: skip
    [(setting, ours, beside)] = bench_lecture.summary_rows(r)
    assert setting == "lecture: vae on sprites, 10 steps, batch 8, quick suite, 1 seeds"
    assert ours == ("composition R² 0.500 +- 0.000; extrapolation R² 0.250 +- 0.000; "
                    "PGD area 0.300 +- 0.000")  # fmt: skip
    assert beside == "pixels_pca256: composition 0.400, extrapolation -0.100, PGD area 0.100"


@pytest.mark.slow  # two runs through two evaluation parts: about a minute
def test_the_lecture_claims_average_each_figure_over_seeds():
    from replab.benchmarks import bench_lecture

    r = bench_lecture.main(["--methods", "vae", "--steps", "2", "--seeds", "2",
                            "--suite", "quick"])  # fmt: skip
    m = r["results"]["vae"]
    area = m["pgd_area"]["representation"]
    assert len(area["runs"]) == 2 and area["mean"] == pytest.approx(sum(area["runs"]) / 2)
    assert set(m["generalisation"]) == set(m["pgd_area"]) == set(m["pgd"])
    assert len(m["pgd"]["representation"]) == len(m["epsilons"])


def test_the_darla_benchmark_reads_returns_and_every_ratio():
    from replab.benchmarks import bench_darla

    enc = {"source": spread([2.0, 4.0]), "target": spread([1.0, 1.0]),
           "ratio": {"mean": None, "runs": [0.5, None]},
           "seconds": spread([10.0, 20.0])}  # fmt: skip
    r = {"seeds": 2, "encoder_steps": 5, "dqn_steps": 100, "random_policy": -0.1,
         "encoders": {"vae": enc}}  # fmt: skip
    [(setting, ours, beside)] = bench_darla.summary_rows(r)
    assert setting == "darla: DQN on vae, 2 seeds, encoders 5 steps, DQN 100 steps"
    # sd of 2 and 4: sqrt(2)
    assert ours == "source 3.00 +- 1.41, target 1.00 +- 0.00, ratios 0.50, -; 15 s a seed"
    assert beside == "random policy -0.10"
