"""Every file loader against damaged copies of a valid small file (hypothesis), read with the
cache off or through a fresh cache: a copy cut short is refused with one line naming the file, or
reads exactly as the original (a cut that drops only a trailer loses nothing); a flipped byte is
refused, or read with the original's very structure (a flipped pixel in a format without
checksums reads as another pixel: no reader can tell). Never a traceback, never a crash."""

from __future__ import annotations

import os
import pickle
import shutil
import uuid
import wave

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loader_helpers import idx_bytes, images
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


def _check(spec, victim, original, mutated, reference, how: str, text) -> None:
    """A cut copy is refused or reads exactly as the original did (a cut that only drops a
    trailer, such as a PNG's end chunk, loses nothing); a flipped byte is refused or reads with
    the original's structure, except in a text file, where any flip makes another valid file;
    random bytes in place of a binary file are refused."""
    victim.write_bytes(mutated)
    try:
        structure, batch = _read(spec)
    except DataError as e:
        assert "\n" not in str(e)
        return
    finally:
        victim.write_bytes(original)
    if text == "free" and how != "flip":
        return  # a corpus cut short, or other bytes, is another corpus: nothing promises more
    if how == "noise":
        assert text, f"random bytes read as data: {spec}"
        return
    if how == "cut":
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
    (root / "train-images-idx3-ubyte").write_bytes(idx_bytes(images(3)))
    (root / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.array([0, 2, 1], np.uint8)))
    cifar = root / "cifar-10-batches-py"
    cifar.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:  # the release's pickles (read by replab's restricted unpickler)
        rows = rng.integers(0, 256, (1, 3072), dtype=np.uint8)
        batch = {b"batch_label": name.encode(), b"data": rows, b"labels": [int(len(name) % 10)]}
        (cifar / name).write_bytes(pickle.dumps(batch, protocol=2))
    (cifar / "batches.meta").write_bytes(
        pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]}, protocol=2)
    )
    folder = root / "pictures"
    for label in ("cat", "dog"):
        (folder / label).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)).save(
            folder / label / "a.png"
        )
    sounds = root / "sounds"
    sounds.mkdir()
    for digit in (0, 1):
        samples = np.round(8000 * np.sin(np.arange(400) * (0.1 + digit))).astype("<i2")
        with wave.open(str(sounds / f"{digit}_ann_0.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(samples.tobytes())
    (root / "corpus.txt").write_text(" ".join(f"w{i % 5}" for i in range(200)))
    return root


# case: (spec, the file damaged, whether it is text: True, or "free" for running text, whose
# every cut is another valid corpus)
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
    "idx images": ("idx:{root}/train-images-idx3-ubyte", "train-images-idx3-ubyte", False),
    "idx labels": ("idx:{root}/train-images-idx3-ubyte", "train-labels-idx1-ubyte", False),
    "cifar": ("cifar:{root}/cifar-10-batches-py", "cifar-10-batches-py/data_batch_1", False),
    "image folder": ("folder:{root}/pictures", "pictures/dog/a.png", False),
    "wav": ("wav:{root}/sounds,pattern={{digit}}_{{speaker}}_{{index}}.wav", "sounds/1_ann_0.wav",
            False),
    "text": ("text:{root}/corpus.txt,seq_len=8,min_count=1", "corpus.txt", "free"),
}  # fmt: skip


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
    how = data.draw(st.sampled_from(["cut", "flip", "noise"]))
    if how == "cut":
        keep = data.draw(st.integers(0, len(original) - 1))
        mutated = original[:keep]
    elif how == "noise":  # another file's bytes entirely: a binary reader must refuse them
        mutated = data.draw(st.binary(min_size=0, max_size=2 * len(original)))
    else:
        where = data.draw(st.integers(0, len(original) - 1))
        bits = data.draw(st.integers(1, 255))
        mutated = bytearray(original)
        mutated[where] ^= bits
        mutated = bytes(mutated)
    try:
        _check(spec, victim, original, mutated, reference, how, text)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
