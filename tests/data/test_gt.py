"""A user's own ground truth (gt:), and every ground-truth file through train and eval."""

import json
import math

import numpy as np
import pytest
from PIL import Image
from release_files import grid, write_3dshapes, write_dsprites
from typer.testing import CliRunner

from replab.cli import app
from replab.data import GroundTruth, make_dataset
from replab.data.base import DataError

RNG = np.random.default_rng(1)


def test_an_npz_grid_of_values_in_any_order(tmp_path):
    sizes = (2, 3)
    points = grid(sizes)
    order = RNG.permutation(len(points))
    size_values, kind_values = np.array([0.5, 0.25]), np.array([7, 3, 5])
    values = np.stack([size_values[points[:, 0]], kind_values[points[:, 1]]], 1)[order]
    images = RNG.integers(0, 256, (6, 8, 8), dtype=np.uint8)[order]
    np.savez(
        tmp_path / "mine.npz",
        images=images,
        factors=values,
        factor_names=np.array(["size", "kind"]),
        categorical=np.array(["kind"]),
    )
    data = make_dataset(f"gt:{tmp_path / 'mine.npz'}")
    assert isinstance(data, GroundTruth) and data.full_grid
    assert data.factor_names == ["size", "kind"] and data.factor_sizes == [2, 3]
    assert data.label_factor == "kind" and data.info.shape == (1, 8, 8)
    # index k of a factor is its k-th smallest value: size 0.25 is 0, kind 5 is 1
    row = int(np.flatnonzero((values[:, 0] == 0.25) & (values[:, 1] == 5))[0])
    x = data.observations(np.array([[0, 1]]))[0, 0].numpy()
    assert np.allclose(x, images[row] / 255.0)


def test_points_that_are_not_a_full_grid(tmp_path):
    images = RNG.random((5, 3, 4, 4)).astype(np.float32)
    factors = np.array([[0, 0], [0, 1], [1, 1], [2, 0], [2, 1]])  # (1, 0) missing
    np.savez(tmp_path / "p.npz", images=images, factors=factors)
    data = make_dataset(f"gt:{tmp_path / 'p.npz'},label=factor_1")
    assert not data.full_grid and len(data) == 5 and data.factor_sizes == [3, 2]
    drawn = data.sample_factors(50, np.random.default_rng(0))
    assert {tuple(f) for f in drawn} <= {tuple(f) for f in factors}
    assert np.allclose(data.observations(factors[[4, 0]]).numpy(), images[[4, 0]])
    with pytest.raises(ValueError, match="not among the data's points"):
        data.observations(np.array([[1, 0]]))


def test_a_folder_of_images_with_a_csv_of_factors(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    rows = ["file,colour,size"]
    pixels = {}
    for i, (colour, size) in enumerate([("red", 1), ("blue", 1), ("red", 2), ("blue", 2)]):
        pixels[(colour, size)] = RNG.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        Image.fromarray(pixels[(colour, size)]).save(folder / f"{i}.png")
        rows.append(f"{i}.png,{colour},{size}")
    (folder / "factors.csv").write_text("\n".join(rows) + "\n")
    data = make_dataset(f"gt:{folder},categorical=colour")
    assert data.full_grid and data.factor_sizes == [2, 2] and data.info.shape == (3, 6, 6)
    assert data.circular_factors == ()
    assert make_dataset(f"gt:{folder},categorical=colour,circular=size").circular_factors == (
        "size",
    )
    for wrong in ("colour", "angle"):  # categorical, or not a factor at all
        with pytest.raises(DataError, match=rf"circular names \['{wrong}'\] are not ordinal"):
            make_dataset(f"gt:{folder},categorical=colour,circular={wrong}")
    x = data.observations(np.array([[1, 1]]))[0].numpy()  # colour 'red' (b < r), size 2
    assert np.allclose(x, pixels[("red", 2)].transpose(2, 0, 1) / 255.0)


@pytest.mark.parametrize(
    "content, message",
    [
        ({"images": np.zeros((3, 4, 4), np.uint8)}, "has no 'factors' array"),
        ({"images": np.zeros((3, 4, 4), np.uint8), "factors": np.zeros((2, 1))}, "expected [3, F]"),
        (
            {
                "images": np.zeros((2, 4, 4), np.uint8),
                "factors": np.array([[0], [1]]),
                "factor_names": np.array(["a", "b"]),
            },
            "2 factor names for 1 factor columns",
        ),
    ],
)
def test_bad_npz_files_are_one_line_errors(tmp_path, content, message):
    np.savez(tmp_path / "bad.npz", **content)
    with pytest.raises(DataError) as e:
        make_dataset(f"gt:{tmp_path / 'bad.npz'}")
    assert message in str(e.value) and "bad.npz" in str(e.value) and "\n" not in str(e.value)


def _train_and_eval(tmp_path, spec):
    runner = CliRunner()
    run = tmp_path / "run"
    few = ["--steps", "4", "--batch-size", "8", "-q", "train.log_every=2"]
    result = runner.invoke(app, ["train", "beta_vae", "--data", spec, "--out", str(run), *few])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(app, ["eval", str(run), "--suite", "quick"])
    assert result.exit_code == 0, result.stderr
    return json.loads((run / "eval.json").read_text())


def test_release_files_train_and_get_every_disentanglement_metric(tmp_path):
    write_dsprites(tmp_path / "d.npz")
    write_3dshapes(tmp_path / "s.h5")
    for spec in (f"dsprites:{tmp_path / 'd.npz'}", f"3dshapes:{tmp_path / 's.h5'}"):
        ev = _train_and_eval(tmp_path / spec.split(":")[0], spec)
        scores = ev["disentanglement"]
        assert len(scores) == 9 and scores["mig"] is not None and scores["beta_vae"] is not None
        # a metric may be undefined on a 4-step model (FactorVAE's prunes near-constant
        # latents): then a note says why, as for any data
        notes = " ".join(ev.get("notes", {}).get("disentanglement", []))
        for name, value in scores.items():
            assert value is not None or "undefined" in notes, (name, notes)
        assert "symmetry" in ev and "factor_probes" in ev


def test_points_skip_the_metrics_that_need_a_full_grid_and_run_the_others(tmp_path):
    points = grid((3, 4))[:-2]  # two combinations missing
    images = RNG.integers(0, 256, (len(points), 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "p.npz", images=images, factors=points)
    ev = _train_and_eval(tmp_path, f"gt:{tmp_path / 'p.npz'}")
    scores = ev["disentanglement"]
    assert scores["beta_vae"] is None and scores["factor_vae"] is None
    assert all(math.isfinite(scores[k]) for k in ("mig", "dci_disentanglement", "modularity"))
    assert "symmetry" not in ev and "factor_probes" in ev
    assert any("not a full grid" in n for n in ev["notes"]["disentanglement"])


def test_bad_files_stop_train_with_one_line_exit_2_and_nothing_written(tmp_path):
    """A truncated file, an MPI3D file of an unknown size, a pickle where an array belongs."""
    write_dsprites(tmp_path / "d.npz", compressed=False)
    whole = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    np.savez(tmp_path / "mpi3d_toy.npz", images=np.zeros((10, 64, 64, 3), np.uint8))
    np.savez(
        tmp_path / "pickled.npz",
        images=np.zeros((2, 4, 4), np.uint8),
        factors=np.array([{"a": 1}, {"a": 2}], dtype=object),
    )
    cases = {
        f"dsprites:{tmp_path / 'cut.npz'}": "cut.npz",
        f"mpi3d:{tmp_path / 'mpi3d_toy.npz'}": "holds 10 images; MPI3D files hold 1,036,800",
        f"gt:{tmp_path / 'pickled.npz'}": "pickled.npz",
    }
    for spec, message in cases.items():
        run = tmp_path / "run"
        result = CliRunner().invoke(app, ["train", "beta_vae", "--data", spec, "--out", str(run)])
        assert result.exit_code == 2, (spec, result.output)
        text = result.stderr.strip()
        assert "\n" not in text and message in " ".join(text.split()), (spec, text)
        assert not run.exists()
