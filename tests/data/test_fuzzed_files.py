"""Every release-file loader against damaged copies of a valid small file (hypothesis): a file
cut short is always refused with one line naming it; a flipped byte is refused, or read with the
very structure of the original (a byte of pixels flipped in a format without checksums reads as
other pixels: no reader can tell). Never a traceback."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from release_files import (
    write_3dshapes,
    write_cars3d,
    write_dsprites,
    write_smallnorb,
    write_stl10,
)

from replab.data import GroundTruth, make_dataset
from replab.data.base import DataError

FUZZ = settings(
    max_examples=int(os.environ.get("REPLAB_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _structure(data) -> tuple:
    """What a damaged copy must reproduce if it is read at all: size, shape and factor grid."""
    sizes = tuple(data.factor_sizes) if isinstance(data, GroundTruth) else ()
    return len(data), tuple(data.info.shape), sizes


def _read(spec: str) -> tuple[tuple, dict]:
    data = make_dataset(spec)
    return _structure(data), data.get_batch(np.arange(len(data)))


def _same(batch: dict, reference: dict) -> bool:
    return batch.keys() == reference.keys() and all(
        torch.equal(batch[k], reference[k]) for k in batch
    )


def _check(spec, victim, original, mutated, reference, cut: bool, text: bool) -> None:
    """A cut copy is refused or reads exactly as the original did (a cut that only drops a
    trailer, such as a PNG's end chunk, loses nothing); a flipped byte is refused or reads with
    the original's structure, except in a text file, where any flip makes another valid file."""
    victim.write_bytes(mutated)
    try:
        structure, batch = _read(spec)
    except DataError as e:
        assert "\n" not in str(e)
        return
    finally:
        victim.write_bytes(original)
    if cut:
        assert structure == reference[0] and _same(batch, reference[1]), f"cut copy read: {spec}"
    elif not text:
        assert structure == reference[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    write_dsprites(root / "d.npz", sizes=(1, 3, 2, 2, 2, 2))
    write_3dshapes(root / "s.h5", sizes=(2, 2, 1, 1, 2, 2))
    write_smallnorb(root / "norb", sizes=(2, 2, 1, 2, 1))
    write_cars3d(root / "cars", n=1)
    write_cars3d(root / "packed_cars", n=1, compressed=True)
    write_stl10(root / "stl", unlabeled=2, train=2, test=2)
    rng = np.random.default_rng(0)
    np.savez_compressed(
        root / "gt.npz",
        images=rng.integers(0, 256, (4, 6, 6), dtype=np.uint8),
        factors=np.array([[0.5, 1], [0.5, 2], [0.25, 1], [0.25, 2]]),
        factor_names=np.array(["size", "kind"]),
    )
    np.savez(root / "plain.npz", x=rng.integers(0, 256, (3, 5, 5), dtype=np.uint8), y=[0, 1, 1])
    shots = root / "shots"
    shots.mkdir()
    rows = ["file,size"]
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(shots / f"{i}.png")
        rows.append(f"{i}.png,{i}")
    (shots / "factors.csv").write_text("\n".join(rows) + "\n")
    return root


# case: (spec, the file damaged, whether it is text)
CASES = {
    "dsprites": ("dsprites:{root}/d.npz", "d.npz", False),
    "3dshapes": ("3dshapes:{root}/s.h5", "s.h5", False),
    "smallnorb": (
        "smallnorb:{root}/norb",
        "norb/smallnorb-5x46789x9x18x6x2x96x96-training-info.mat",
        False,
    ),
    "cars3d": ("cars3d:{root}/cars", "cars/car_000_mesh.mat", False),
    "cars3d compressed": ("cars3d:{root}/packed_cars", "packed_cars/car_000_mesh.mat", False),
    "stl10": ("stl10:{root}/stl,part=labelled", "stl/train_y.bin", False),
    "npz": ("npz:{root}/plain.npz", "plain.npz", False),
    "gt npz": ("gt:{root}/gt.npz", "gt.npz", False),
    "gt csv": ("gt:{root}/shots", "shots/factors.csv", True),
    "gt png": ("gt:{root}/shots", "shots/1.png", False),
}


@pytest.mark.parametrize("case", CASES)
@FUZZ
@given(data=st.data())
def test_damaged_files_are_refused_or_read_whole(files, case, data, monkeypatch):
    monkeypatch.setenv("REPLAB_CACHE", "off")  # every example reads the file itself
    template, victim_name, text = CASES[case]
    spec = template.format(root=files)
    victim = files / victim_name
    original = victim.read_bytes()
    reference = _read(spec)
    cut = data.draw(st.booleans())
    if cut:
        keep = data.draw(st.integers(0, len(original) - 1))
        mutated = original[:keep]
    else:
        where = data.draw(st.integers(0, len(original) - 1))
        bits = data.draw(st.integers(1, 255))
        mutated = bytearray(original)
        mutated[where] ^= bits
        mutated = bytes(mutated)
    _check(spec, victim, original, mutated, reference, cut, text)
