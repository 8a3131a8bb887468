"""The benchmark release files, each read from a small file in its exact original layout:
observations(factors) is the image stored at that combination, splits are the release's own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from release_files import (
    write_3dshapes,
    write_cars3d,
    write_celeba,
    write_dsprites,
    write_mpi3d,
    write_smallnorb,
    write_stl10,
)

from replab.data import GroundTruth, make_dataset
from replab.data import mpi3d as mpi3d_module
from replab.data.base import DataError


@pytest.mark.parametrize("compressed", [True, False], ids=["compressed", "stored"])
def test_dsprites_file_serves_the_stored_image_of_each_factor_combination(tmp_path, compressed):
    imgs = write_dsprites(tmp_path / "d.npz", compressed=compressed)
    data = make_dataset(f"dsprites:{tmp_path / 'd.npz'}")
    assert isinstance(data, GroundTruth) and data.factor_sizes == [3, 2, 3, 2, 2]
    assert data.factor_names == ["shape", "scale", "orientation", "pos_x", "pos_y"]
    factors = np.array([[0, 0, 0, 0, 0], [2, 1, 2, 1, 1], [1, 0, 2, 1, 0]])
    rows = np.ravel_multi_index(tuple(factors.T), [3, 2, 3, 2, 2])  # colour is the size-1 axis
    x = data.observations(factors)
    assert x.shape == (3, 1, 64, 64) and x.dtype == torch.float32
    assert np.array_equal(x[:, 0].numpy(), imgs[rows].astype(np.float32))  # {0, 1}, unscaled
    batch = data.get_batch(np.array([5]))
    assert np.array_equal(batch["x"][0, 0].numpy(), imgs[5]) and batch["y"].item() == 0


def test_dsprites_variants_colour_the_real_sprites(tmp_path):
    imgs = write_dsprites(tmp_path / "d.npz")
    spec = f"dsprites:{tmp_path / 'd.npz'}"
    f = np.array([[2, 1, 2, 1, 1]])
    row = np.ravel_multi_index(tuple(f.T), [3, 2, 3, 2, 2])[0]
    sprite = imgs[row].astype(bool)
    colour = make_dataset(spec + ",variant=color").observations(f)[0].numpy()
    assert colour.shape == (3, 64, 64) and (colour[:, ~sprite] == 0).all()
    assert ((colour[:, sprite] >= 0.5) & (colour[:, sprite] <= 1)).all()
    noisy = make_dataset(spec + ",variant=noisy").observations(f)[0].numpy()
    assert (noisy[:, sprite] == 1).all() and noisy[:, ~sprite].std() > 0.2
    painting = tmp_path / "scream.png"
    Image.fromarray(np.full((300, 400, 3), 200, np.uint8)).save(painting)
    scream = make_dataset(spec + f",variant=scream,scream={painting}").observations(f)[0].numpy()
    background = scream[:, ~sprite][:, 0]
    assert np.allclose(scream[:, sprite], 1 - background[:, None], atol=1e-6)  # inverted
    with pytest.raises(DataError, match="variant=scream needs the painting"):
        make_dataset(spec + ",variant=scream")


def test_dsprites_file_errors_name_the_file(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, imgs=np.zeros((4, 64, 64), np.uint8))
    with pytest.raises(DataError, match="d.npz: has no 'latents_classes' array"):
        make_dataset(f"dsprites:{path}")
    classes = np.zeros((4, 6), np.int64)
    np.savez(path, imgs=np.zeros((4, 64, 64), np.uint8), latents_classes=classes)
    with pytest.raises(DataError, match="not a full grid"):
        make_dataset(f"dsprites:{path}")
    bad = write_dsprites(tmp_path / "b.npz")
    np.savez(tmp_path / "b.npz", imgs=bad.astype(np.float32), latents_classes=_grid_classes())
    with pytest.raises(DataError, match="'imgs' is float32"):
        make_dataset(f"dsprites:{tmp_path / 'b.npz'}")


def _grid_classes():
    from release_files import grid

    return grid((1, 3, 2, 3, 2, 2)).astype(np.int64)


@pytest.mark.parametrize(
    ("shuffle", "compressed", "cache"),
    [(False, False, "on"), (True, False, "on"), (True, True, "on"), (True, True, "off")],
    ids=["contiguous", "rows shuffled", "gzip chunks, cached", "gzip chunks, cache off"],
)
def test_3dshapes_values_become_indices_and_images_are_read_lazily(
    tmp_path, monkeypatch, shuffle, compressed, cache
):
    import h5py

    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache") if cache == "on" else "off")
    path = tmp_path / "3dshapes.h5"
    images = write_3dshapes(path, shuffle=shuffle, compressed=compressed)
    data = make_dataset(f"3dshapes:{path}")
    assert data.factor_sizes == [2, 2, 2, 2, 2, 3] and data.factor_names[-1] == "orientation"
    factors = np.array([[1, 0, 1, 1, 0, 2], [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    rows = np.ravel_multi_index(tuple(factors.T), data.factor_sizes)
    x = data.observations(factors[::-1])  # any order
    expected = images[rows[::-1]].transpose(0, 3, 1, 2).astype(np.float32) / 255
    assert np.allclose(x.numpy(), expected)  # index k of a factor is its k-th smallest value
    # contiguous: mapped where the images lie; compressed: one decoded copy in the cache, or
    # (cache off) the HDF5 dataset itself
    stored = data.images
    if not compressed:
        assert isinstance(stored, np.memmap) and Path(stored.filename) == path.resolve()
    elif cache == "on":
        assert isinstance(stored, np.memmap) and len(list((tmp_path / "cache").rglob("*.npy"))) == 1
    else:
        assert isinstance(stored, h5py.Dataset)


def test_mpi3d_sizes_follow_from_the_image_count(tmp_path, monkeypatch):
    images = write_mpi3d(tmp_path / "mpi3d_toy.npz", 2 * 2 * 1 * 1 * 1 * 2 * 3)
    with pytest.raises(DataError, match="holds 24 images; MPI3D files hold 1,036,800 or 460,800"):
        make_dataset(f"mpi3d:{tmp_path / 'mpi3d_toy.npz'}")
    # a reduced grid through the same path: the table of known counts gets one more entry
    monkeypatch.setitem(mpi3d_module.SIZES_BY_COUNT, 24, [2, 2, 1, 1, 1, 2, 3])
    data = make_dataset(f"mpi3d:{tmp_path / 'mpi3d_toy.npz'}")
    assert isinstance(data.images, np.memmap)  # mapped where it lies in the file
    f = np.array([[1, 0, 0, 0, 0, 1, 2]])
    row = np.ravel_multi_index(tuple(f.T), [2, 2, 1, 1, 1, 2, 3])[0]
    assert np.allclose(data.observations(f)[0].numpy(), images[row].transpose(2, 0, 1) / 255)


@pytest.mark.parametrize(
    ("gzipped", "cache"),
    [(False, "on"), (True, "on"), (True, "off")],
    ids=["unpacked", "as downloaded (.mat.gz)", ".mat.gz, cache off"],
)
def test_smallnorb_binary_files_in_any_row_order_with_the_release_split(
    tmp_path, monkeypatch, gzipped, cache
):
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache") if cache == "on" else "off")
    images = write_smallnorb(tmp_path / "norb", gzipped=gzipped)
    data = make_dataset(f"smallnorb:{tmp_path / 'norb'}")
    assert data.factor_names == ["category", "instance", "elevation", "azimuth", "lighting"]
    assert data.factor_sizes == [2, 2, 2, 3, 2] and data.info.shape == (1, 64, 64)
    point = (1, 1, 0, 2, 1)
    x = data.observations(np.array([point]))[0, 0].numpy()
    resized = Image.fromarray(images[point]).resize((64, 64), Image.LANCZOS)
    assert np.allclose(x, np.asarray(resized) / 255.0)
    test = data.split("test")
    assert len(test) == 48 // 2 and (data.factors_of(test.indices)[:, 1] == 0).all()
    unpacked = list((tmp_path / "cache").rglob("*-smallnorb-*.mat"))
    assert len(unpacked) == (6 if gzipped and cache == "on" else 0)


def test_cars3d_meshes_are_shrunk_once_and_cached(tmp_path):
    meshes = write_cars3d(tmp_path / "cars")
    data = make_dataset(f"cars3d:{tmp_path / 'cars'}")
    assert data.factor_sizes == [4, 24, 2] and data.info.shape == (3, 64, 64)
    el, az, obj = 3, 17, 1
    x = data.observations(np.array([[el, az, obj]]))[0].numpy()
    pic = Image.fromarray(np.ascontiguousarray(meshes[obj][:, :, :, az, el]))
    pic.thumbnail((64, 64), Image.LANCZOS)
    assert np.allclose(x, np.asarray(pic).transpose(2, 0, 1) / 255.0)
    again = make_dataset(f"cars3d:{tmp_path / 'cars'}")
    assert isinstance(again.images, np.memmap)  # the second time: the cached copy, mapped


def test_celeba_attribute_labels_and_partition(tmp_path):
    values = write_celeba(tmp_path / "celeba")
    data = make_dataset(f"celeba:{tmp_path / 'celeba'},label=Eyeglasses")
    assert len(data) == 6 and data.info.shape == (3, 64, 64)
    batch = data.get_batch(np.arange(6))
    j = data.attributes.index("Eyeglasses")
    assert batch["y"].tolist() == (values[:, j] > 0).astype(int).tolist()
    assert data.split("test").indices.tolist() == [4, 5]
    with pytest.raises(DataError, match="label='Wings' is not an attribute"):
        make_dataset(f"celeba:{tmp_path / 'celeba'},label=Wings")


def test_stl10_unlabeled_for_training_labelled_for_probes(tmp_path):
    arrays = write_stl10(tmp_path / "stl")
    unlabeled = make_dataset(f"stl10:{tmp_path / 'stl'}")
    assert len(unlabeled) == 5 and not unlabeled.has_labels
    x = unlabeled.get_batch(np.array([3]))["x"][0].numpy()
    assert np.allclose(x, arrays["unlabeled"][3] / 255.0)  # rows and columns the right way
    labelled = make_dataset(f"stl10:{tmp_path / 'stl'},part=labelled")
    assert labelled.info.shape == unlabeled.info.shape and labelled.info.num_classes == 10
    test = labelled.split("test")
    batch = test.get_batch(np.arange(3))
    assert batch["y"].tolist() == (arrays["test_y"].astype(int) - 1).tolist()
    assert np.allclose(batch["x"].numpy(), arrays["test"] / 255.0)
