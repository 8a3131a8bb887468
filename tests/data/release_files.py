"""Small files in the exact layouts of the benchmark releases (keys, dtypes, header magic, byte
order, factor order), written by hand so that the loaders are checked against the formats as
their authors distribute them, not against replab's own writer."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

RNG = np.random.default_rng(0)

# 3dshapes' factor values (DeepMind's release): hues in steps of 0.1, 8 scales, 4 shapes,
# 15 orientations from -30 to 30 degrees
SHAPES3D_VALUES = [
    np.linspace(0.0, 0.9, 10),
    np.linspace(0.0, 0.9, 10),
    np.linspace(0.0, 0.9, 10),
    np.linspace(0.75, 1.25, 8),
    np.arange(4.0),
    np.linspace(-30.0, 30.0, 15),
]


def grid(sizes) -> np.ndarray:
    """Every combination of factor indices [prod, F], row-major (the last fastest)."""
    return np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)


def write_dsprites(path: Path, sizes=(1, 3, 2, 3, 2, 2), compressed: bool = True) -> np.ndarray:
    """A dSprites npz in the release's layout (a smaller grid); returns its ``imgs``."""
    classes = grid(sizes).astype(np.int64)
    imgs = (RNG.random((len(classes), 64, 64)) > 0.7).astype(np.uint8)
    values = classes.astype(np.float64) / np.maximum(np.asarray(sizes) - 1, 1)
    metadata = np.array({"latents_sizes": np.asarray(sizes)}, dtype=object)  # a pickle, as released
    save = np.savez_compressed if compressed else np.savez
    save(path, imgs=imgs, latents_classes=classes, latents_values=values, metadata=metadata)
    return imgs


def write_3dshapes(
    path: Path, sizes=(2, 2, 2, 2, 2, 3), shuffle: bool = False, compressed: bool = False
) -> np.ndarray:
    """3dshapes.h5 in the release's layout (images, labels of factor values), the images stored
    contiguous or in gzip-compressed chunks; returns images in grid order."""
    import h5py

    index = grid(sizes)
    labels = np.stack([SHAPES3D_VALUES[j][index[:, j]] for j in range(6)], axis=1)
    images = RNG.integers(0, 256, (len(index), 64, 64, 3), dtype=np.uint8)
    order = RNG.permutation(len(index)) if shuffle else np.arange(len(index))
    with h5py.File(path, "w") as f:
        packing = {"chunks": (2, 64, 64, 3), "compression": "gzip"} if compressed else {}
        f.create_dataset("images", data=images[order], **packing)
        f.create_dataset("labels", data=labels[order])
    return images


def write_mpi3d(path: Path, n: int) -> np.ndarray:
    images = RNG.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    np.savez(path, images=images)  # stored, uncompressed: as released
    return images


NORB_TRAIN = "smallnorb-5x46789x9x18x6x2x96x96-training-{}.mat"
NORB_TEST = "smallnorb-5x01235x9x18x6x2x96x96-testing-{}.mat"


def norb_matrix(array: np.ndarray) -> bytes:
    """The NYU binary matrix format: int32 magic, int32 ndim, max(3, ndim) int32 sizes (unused
    ones 1), then the data, little-endian."""
    magic = 0x1E3D4C55 if array.dtype == np.uint8 else 0x1E3D4C54
    dims = list(array.shape) + [1] * (3 - array.ndim)
    header = struct.pack(f"<ii{len(dims)}i", magic, array.ndim, *dims)
    return header + array.astype("<i4" if magic == 0x1E3D4C54 else np.uint8).tobytes()


def write_smallnorb(folder: Path, sizes=(2, 2, 2, 3, 2), gzipped: bool = False) -> dict:
    """The six smallNORB files for a smaller grid (category, instance, elevation, azimuth/2,
    lighting); instance 0 in the testing files, the rest in the training ones, rows shuffled;
    gzipped as downloaded (``.mat.gz``) or not. Returns {factor tuple: first camera's image}."""
    import gzip

    folder.mkdir(parents=True, exist_ok=True)
    points = grid(sizes)
    images = {}
    for template, keep in ((NORB_TRAIN, points[:, 1] > 0), (NORB_TEST, points[:, 1] == 0)):
        part = points[keep][RNG.permutation(int(keep.sum()))]
        dat = RNG.integers(0, 256, (len(part), 2, 96, 96), dtype=np.uint8)
        info = np.stack([part[:, 1], part[:, 2], 2 * part[:, 3], part[:, 4]], axis=1)
        matrices = {"dat": dat, "cat": part[:, 0].astype(np.int32), "info": info.astype(np.int32)}
        for kind, matrix in matrices.items():
            path = folder / template.format(kind)
            if gzipped:
                path.with_name(path.name + ".gz").write_bytes(gzip.compress(norb_matrix(matrix)))
            else:
                path.write_bytes(norb_matrix(matrix))
        for p, d in zip(part, dat, strict=True):
            images[tuple(int(v) for v in p)] = d[0]
    return images


def write_cars3d(folder: Path, n: int = 2, compressed: bool = False) -> list[np.ndarray]:
    """``car_*_mesh.mat`` files holding ``im`` (128, 128, 3, 24, 4) uint8, written by scipy;
    returns their arrays."""
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    meshes = []
    for i in range(n):
        im = RNG.integers(0, 256, (128, 128, 3, 24, 4), dtype=np.uint8)
        savemat(folder / f"car_{i:03d}_mesh.mat", {"im": im}, do_compression=compressed)
        meshes.append(im)
    return meshes


CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes "
    "No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling "
    "Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young"
).split()


def write_celeba(folder: Path, n: int = 6) -> np.ndarray:
    """img_align_celeba/*.jpg (178 x 218), list_attr_celeba.txt and list_eval_partition.txt;
    returns the attribute values [n, 40] in {-1, 1}."""
    from PIL import Image

    images = folder / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    values = RNG.choice([-1, 1], size=(n, 40))
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for name in names:
        pixels = RNG.integers(0, 256, (218, 178, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / name, quality=95)
    lines = [str(n), " ".join(CELEBA_ATTRIBUTES)]
    lines += [
        f"{name} " + " ".join(f"{v:2d}" for v in row)
        for name, row in zip(names, values, strict=True)
    ]
    (folder / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    parts = [f"{name} {0 if i < n - 2 else 2}" for i, name in enumerate(names)]
    (folder / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")
    return values


def write_stl10(folder: Path, unlabeled=5, train=4, test=3) -> dict:
    """The binary release: images column-major, one channel after the other; labels 1..10."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, n in (("unlabeled", unlabeled), ("train", train), ("test", test)):
        images = RNG.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)  # [n, C, H, W]
        (folder / f"{name}_X.bin").write_bytes(images.transpose(0, 1, 3, 2).tobytes())
        out[name] = images
        if name != "unlabeled":
            labels = RNG.integers(1, 11, n, dtype=np.uint8)
            (folder / f"{name}_y.bin").write_bytes(labels.tobytes())
            out[f"{name}_y"] = labels
    return out
