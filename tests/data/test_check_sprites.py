"""replab check-sprites: replab's renderer against the dSprites release, pixel by pixel."""

import json

import numpy as np
from release_files import write_dsprites
from typer.testing import CliRunner

from replab.cli import app
from replab.data.dsprites import RELEASE_SIZES, check_renderer
from replab.data.sprites import render_np

SIZES = RELEASE_SIZES[1:]
HEART = 2


class RenderedRelease:
    """A stand-in for the release's 737,280 images (3 GB): rendered on demand by replab, with
    one known defect, pixel (0, 0) lit in every heart at posX 0."""

    shape = (int(np.prod(SIZES)), 64, 64)
    ndim = 3
    dtype = np.dtype(np.uint8)

    def __getitem__(self, rows):
        factors = np.stack(np.unravel_index(np.asarray(rows), SIZES), axis=1)
        images = render_np(factors)[:, 0].astype(np.uint8)
        marked = (factors[:, 0] == HEART) & (factors[:, 3] == 0)
        images[marked, 0, 0] ^= 1
        return images


def test_the_check_finds_a_known_defect_and_its_factor_values():
    result = check_renderer(RenderedRelease(), SIZES, sample=3000, seed=4, chunk=512)
    index = np.sort(np.random.default_rng(4).choice(int(np.prod(SIZES)), 3000, replace=False))
    factors = np.stack(np.unravel_index(index, SIZES), axis=1)
    marked = (factors[:, 0] == HEART) & (factors[:, 3] == 0)  # the corner is never lit by a sprite
    assert result["images"] == 3000
    assert result["identical_images"] == 1.0 - marked.mean()
    assert result["identical_pixels"] == 1.0 - marked.sum() / (3000 * 64 * 64)
    shape = result["by_factor"]["shape"]
    assert shape["worst_value"] == HEART
    assert shape["images_differing"] == marked[factors[:, 0] == HEART].mean()
    assert result["by_factor"]["pos_x"]["worst_value"] == 0


def test_the_command_refuses_a_file_that_is_not_the_full_grid(tmp_path):
    path = tmp_path / "small.npz"
    write_dsprites(path, sizes=(1, 3, 2, 2, 2, 2))
    result = CliRunner().invoke(app, ["check-sprites", str(path), "--sample", "10"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "a full dSprites grid is [3, 6, 40, 32, 32], the file's is [3, 2, 2, 2, 2]" in message
    missing = CliRunner().invoke(app, ["check-sprites", str(tmp_path / "none.npz")])
    assert missing.exit_code == 2 and "none.npz: no such file or directory" in missing.output


def test_the_command_writes_its_json(tmp_path, monkeypatch):
    """The command end to end on the stand-in (read_release replaced: a 3 GB file is the
    benchmark's job, benchmarks/bench_loaders.py)."""
    from replab.data import dsprites

    monkeypatch.setattr(dsprites, "read_release", lambda path: (RenderedRelease(), SIZES))
    out = tmp_path / "check.json"
    result = CliRunner().invoke(
        app, ["check-sprites", "release.npz", "--sample", "500", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert saved["images"] == 500 and 0.9 < saved["identical_images"] <= 1.0
    assert "identical pixels" in result.output
