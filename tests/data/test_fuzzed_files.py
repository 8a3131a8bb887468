"""Every file loader against damaged copies of a valid small file (hypothesis), read with the
cache off or through a fresh cache: a copy cut short is refused with one line naming the file, or
reads exactly as the original (a cut that drops only a trailer loses nothing); a flipped byte is
refused, or read with the original's very structure (a flipped pixel in a format without
checksums reads as another pixel: no reader can tell). Never a traceback, never a crash."""

from __future__ import annotations

import os
import shutil
import uuid

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from release_files import (
    write_3dshapes,
    write_cars3d,
    write_celeba,
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
    write_3dshapes(root / "gz.h5", sizes=(2, 2, 1, 1, 2, 2), compressed=True)
    write_smallnorb(root / "norb", sizes=(2, 2, 1, 2, 1))
    write_smallnorb(root / "norb_gz", sizes=(2, 2, 1, 2, 1), gzipped=True)
    write_cars3d(root / "cars", n=1)
    write_cars3d(root / "packed_cars", n=1, compressed=True)
    write_stl10(root / "stl", unlabeled=2, train=2, test=2)
    write_celeba(root / "celeba", n=3)
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
    "3dshapes gzip": ("3dshapes:{root}/gz.h5", "gz.h5", False),
    "smallnorb": (
        "smallnorb:{root}/norb",
        "norb/smallnorb-5x46789x9x18x6x2x96x96-training-info.mat",
        False,
    ),
    "smallnorb gzip": (
        "smallnorb:{root}/norb_gz",
        "norb_gz/smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat.gz",
        False,
    ),
    "cars3d": ("cars3d:{root}/cars", "cars/car_000_mesh.mat", False),
    "cars3d compressed": ("cars3d:{root}/packed_cars", "packed_cars/car_000_mesh.mat", False),
    "stl10": ("stl10:{root}/stl,part=labelled", "stl/train_y.bin", False),
    "celeba jpg": ("celeba:{root}/celeba", "celeba/img_align_celeba/000002.jpg", False),
    "celeba attributes": ("celeba:{root}/celeba", "celeba/list_attr_celeba.txt", True),
    "npz": ("npz:{root}/plain.npz", "plain.npz", False),
    "gt npz": ("gt:{root}/gt.npz", "gt.npz", False),
    "gt csv": ("gt:{root}/shots", "shots/factors.csv", True),
    "gt png": ("gt:{root}/shots", "shots/1.png", False),
}


@pytest.mark.parametrize("case", CASES)
@FUZZ
@given(data=st.data())
def test_damaged_files_are_refused_or_read_whole(files, case, data, monkeypatch, tmp_path):
    template, victim_name, text = CASES[case]
    spec = template.format(root=files)
    victim = files / victim_name
    original = victim.read_bytes()
    monkeypatch.setenv("REPLAB_CACHE", "off")
    reference = _read(spec)
    # the damaged copy is read itself: with no cache, or a cache of its own (the conversion path)
    cache = tmp_path / f"cache-{uuid.uuid4().hex}"
    monkeypatch.setenv("REPLAB_CACHE", str(cache) if data.draw(st.booleans()) else "off")
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
    try:
        _check(spec, victim, original, mutated, reference, cut, text)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
