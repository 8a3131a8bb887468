"""The prepared GPU check, in the small version a CPU runs: every part runs and reports."""

import pytest

from replab.benchmarks import bench_gpu, discover


@pytest.fixture(scope="module")
def small_check():
    return bench_gpu.main(["--only", "beta_vae,word2vec"])


def test_the_small_check_runs_every_part(small_check):
    r = small_check
    assert r["small"] and r["device"] == "cpu"
    for part in ("methods", "beta_vae", "simclr", "seeds", "word2vec", "presets", "variants"):
        assert "error" not in r[part], r[part].get("trace")
    checked = r["methods"]["checked"]
    assert set(checked) == {"beta_vae", "word2vec"}
    for name, c in checked.items():
        assert c["ok"] and c["resume_equal"] and c["resume_max_abs_diff"] == 0.0, name
    assert r["beta_vae"]["replab_samples_per_s"] > 0 and r["seeds"]["seeds"] == 2
    assert r["word2vec"]["engine"] == "compiled" and r["word2vec"]["words_per_s"] > 0
    runs = r["presets"]["runs"]
    assert set(runs) == {"slot_attention", "monet", "gqn"} and r["presets"]["preset"] == "cpu"
    assert all(run["batch"] == 4 and run["examples_per_s"] > 0 for run in runs.values())
    rows = bench_gpu.summary_rows(r)
    assert rows[0][1] == "2 finite and resumed equal" and rows[0][2] == ""
    assert all("(small version)" in setting for setting, _, _ in rows)
    assert "gpu" in discover()


def test_a_failing_method_is_its_row_and_the_check_goes_on(monkeypatch):
    real = bench_gpu.check_method

    def flaky(method, *args):
        if method == "vae":
            raise RuntimeError("CUDA error: an illegal memory access")
        return real(method, *args)

    monkeypatch.setattr(bench_gpu, "check_method", flaky)
    r = bench_gpu.main(
        ["--only", "vae,beta_vae", "--skip", "beta_vae,simclr,seeds,word2vec,presets,variants"]
    )
    assert r["methods"]["checked"]["vae"] == {
        "ok": False, "error": "RuntimeError: CUDA error: an illegal memory access"
    }  # fmt: skip
    assert r["methods"]["checked"]["beta_vae"]["ok"]
    assert bench_gpu.summary_rows(r)[0][1:] == ("1 finite and resumed equal", "failed: vae")


def test_parts_not_begun_within_the_budget_are_reported_skipped():
    r = bench_gpu.main(["--budget", "0", "--skip", "variants"])
    for part in ("methods", "beta_vae", "simclr", "seeds", "word2vec", "presets"):
        assert r[part]["error"] == "skipped: the check's time budget was spent"
    assert "variants" not in r


def test_on_a_gpu_the_rows_stand_beside_the_targets():
    r = {
        "device": "NVIDIA H200", "small": False,
        "methods": {"steps": 20, "checked": {"vae": {"ok": True}}},
        "beta_vae": {"replab_samples_per_s": 45_000.0, "plain_pytorch_samples_per_s": 13_000.0},
        "seeds": {"speedup": 9.5},
        "word2vec": {"words_per_s": 2.4e6, "ratio": 3.1},
        "presets": {"preset": "paper", "runs": {
            "slot_attention": {"batch": 64, "examples_per_s": 3200.0},
            "monet": {"batch": 32, "examples_per_s": 900.0}}},
        "variants": {"images_per_s": {"beta_vae as default": 20_000.0,
                                      "beta_vae train.compile=reduce-overhead": 50_000.0}},
    }  # fmt: skip
    rows = {setting: (shown, beside) for setting, shown, beside in bench_gpu.summary_rows(r)}
    assert rows["gpu check, beta_vae, NVIDIA H200"] == (
        "45,000 images/s",
        "plain PyTorch 13,000 images/s; target 42,000 images/s",
    )
    assert rows["gpu check, seeds, NVIDIA H200"] == ("9.50x", "target 8 x one seed's images/s")
    assert rows["gpu check, word2vec, NVIDIA H200"][0] == "3.10x"
    # 500,000 steps of 64 examples at 3,200 examples/s: 10,000 s
    assert rows["gpu check, slot_attention model.preset=paper, batch 64, NVIDIA H200"] == (
        "3,200.0 examples/s",
        "the paper's 500,000 steps: 2.8 h",
    )
    assert rows["gpu check, monet model.preset=paper, batch 32, NVIDIA H200"] == (
        "900.0 examples/s",
        "",
    )
    assert rows["gpu check, beta_vae train.compile=reduce-overhead, NVIDIA H200"] == (
        "50,000 images/s",
        "2.50x the default",
    )
