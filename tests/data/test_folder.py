"""Image folders (folder:), one sub-folder per class."""

from __future__ import annotations

import numpy as np
from loader_helpers import RNG, all_of, bad, served, stored, write

from replab.data import make_dataset
from replab.data.folder import folder


def save_png(path, arr, mode=None):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path) if mode else Image.fromarray(arr).save(path)
    return arr


def test_folder_rgb_and_grey_mixed(tmp_path):
    rgb = [RNG.integers(0, 256, (3, 4, 3), dtype=np.uint8) for _ in range(3)]
    grey = RNG.integers(0, 256, (3, 4), dtype=np.uint8)
    save_png(tmp_path / "zebra" / "b.png", rgb[0])
    save_png(tmp_path / "zebra" / "a.png", rgb[1])
    save_png(tmp_path / "ant" / "x.png", rgb[2])
    save_png(tmp_path / "ant" / "y.png", grey)
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "README").write_text("top-level files are ignored")
    ds = make_dataset(f"folder:{tmp_path}")
    assert ds.class_names == ["ant", "zebra"]
    assert ds.info.shape == (3, 3, 4) and ds.info.num_classes == 2
    # Order: classes sorted, files sorted within a class; grey -> three equal channels.
    expected = np.stack([rgb[2], np.repeat(grey[..., None], 3, axis=2), rgb[1], rgb[0]])
    np.testing.assert_array_equal(stored(ds), expected.transpose(0, 3, 1, 2))
    served(ds, expected.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(all_of(ds)[1], [0, 0, 1, 1])


def test_folder_all_grey_is_one_channel(tmp_path):
    a = save_png(tmp_path / "0" / "a.png", RNG.integers(0, 256, (5, 2), dtype=np.uint8))
    b = save_png(tmp_path / "1" / "b.png", RNG.integers(0, 256, (5, 2), dtype=np.uint8))
    ds = folder(str(tmp_path))
    assert ds.info.shape == (1, 5, 2)
    np.testing.assert_array_equal(stored(ds)[:, 0], np.stack([a, b]))
    np.testing.assert_array_equal(all_of(ds)[1], [0, 1])


def test_folder_errors(tmp_path):
    bad(folder, tmp_path / "none", "none", "no such file")
    f = write(tmp_path / "file.png", b"x")
    bad(folder, f, "file.png", "is a file, expected a folder")
    root = tmp_path / "root"
    root.mkdir()
    bad(folder, root, "root", "no class sub-folders")
    save_png(root / "loose.png", np.zeros((2, 2), np.uint8))
    bad(folder, root, "no class sub-folders", "holds 1 images directly")
    (root / "cat").mkdir()
    (root / "cat" / "readme.txt").write_text("x")
    bad(folder, root, "cat", "class folder holds no images")
    save_png(root / "cat" / "1.png", np.zeros((4, 6, 3), np.uint8))
    save_png(root / "dog" / "1.png", np.zeros((4, 6, 3), np.uint8))
    save_png(root / "dog" / "2.png", np.zeros((5, 6, 3), np.uint8))
    msg = bad(folder, root, "dog/2.png", "6x5", "6x4", "cat/1.png", "same size")
    assert msg.startswith(str(root / "dog" / "2.png"))
    (root / "dog" / "2.png").write_bytes(b"garbage, not a png")
    bad(folder, root, "dog/2.png", "unreadable image")
    png = (root / "dog" / "1.png").read_bytes()
    (root / "dog" / "2.png").write_bytes(png[: len(png) // 2])
    bad(folder, root, "dog/2.png", "unreadable image")
    (root / "dog" / "2.png").write_bytes(b"")
    bad(folder, root, "dog/2.png", "unreadable image")
    save_png(root / "dog" / "2.png", np.zeros((4, 6), np.uint16) + 1000)
    bad(folder, root, "dog/2.png", "mode I;16", "not supported")
