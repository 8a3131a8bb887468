"""Model figures: traversals ordered by KL, reconstructions, samples, and the grid helper."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from replab.data.base import ArrayDataset
from replab.eval import analysis
from replab.eval.analysis import image_grid, save_model_figures
from replab.methods.capabilities import Decoder, Encoder, LatentKL, Sampler

D, S = 4, 8  # latents, image side


class TinyDecoderModel(torch.nn.Module, Encoder, Decoder, Sampler):
    """Latent j drives image row j only: decode(z)[:, 0, j, :] = sigmoid(z_j); rows >= D are 0.5.

    encode is a fixed linear map (the mean of image row j, through logit) so encode/decode invert.
    """

    def __init__(self, kl=None):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))  # gives the model a device
        self._kl = None if kl is None else torch.as_tensor(kl, dtype=torch.float32)
        self.calls = {"train_flag_seen": None}

    def encode(self, x):
        self.calls["train_flag_seen"] = self.training
        m = x[:, 0, :D, :].mean(dim=2).clamp(1e-3, 1 - 1e-3)
        return torch.log(m / (1 - m))

    def decode(self, z):
        out = torch.full((len(z), 1, S, S), 0.5)
        out[:, 0, :D, :] = torch.sigmoid(z)[:, :, None].expand(len(z), D, S)
        return out

    def reconstruct(self, x):
        return self.decode(self.encode(x))

    def sample(self, n):
        return self.decode(torch.randn(n, D))


class KLModel(TinyDecoderModel, LatentKL):
    def latent_kl(self, x):
        return self._kl


def _data(n=40, c=1):
    x = np.random.default_rng(0).uniform(0.1, 0.9, size=(n, c, S, S)).astype(np.float32)
    return ArrayDataset(x)


def _png(path):
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    img = Image.open(path)
    img.load()
    return np.asarray(img.convert("RGB"))


def test_image_grid_places_each_image():
    n, c, h, w, nrow, pad = 7, 3, 5, 4, 3, 2
    imgs = torch.rand(n, c, h, w)
    grid = image_grid(imgs, nrow=nrow, padding=pad)
    rows = 3  # ceil(7 / 3)
    assert grid.shape == (pad + rows * (h + pad), pad + nrow * (w + pad), 3)
    assert grid.dtype == np.uint8
    for i in range(n):
        r, col = i // nrow, i % nrow
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        expect = np.round(imgs[i].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        np.testing.assert_array_equal(grid[top : top + h, left : left + w], expect)
    # padding and the empty cells of the last row are white
    assert (grid[:pad] == 255).all() and (grid[:, :pad] == 255).all()
    top, left = pad + 2 * (h + pad), pad + 1 * (w + pad)
    assert (grid[top : top + h, left:] == 255).all()


def test_image_grid_grey_goes_to_rgb_and_clamps():
    imgs = torch.tensor([[[[-1.0, 0.5], [2.0, 1.0]]]])  # [1, 1, 2, 2]
    grid = image_grid(imgs, nrow=1, padding=0)
    assert grid.shape == (2, 2, 3)
    np.testing.assert_array_equal(grid[..., 0], [[0, 128], [255, 255]])
    assert (grid[..., 0] == grid[..., 1]).all() and (grid[..., 1] == grid[..., 2]).all()
    with pytest.raises(ValueError, match="C in"):
        image_grid(torch.rand(2, 2, 4, 4), nrow=2)


def test_figures_written_with_expected_sizes(tmp_path):
    model = TinyDecoderModel()
    model.train()
    n = 6
    paths = save_model_figures(model, _data(), tmp_path / "figures", n=n, seed=1)
    assert paths == {
        "traversals": "figures/traversals.png",
        "reconstructions": "figures/reconstructions.png",
        "samples": "figures/samples.png",
    }
    cell = 32 + 2  # 8x8 images enlarged 4x (to >= 32 px) plus 2 px padding
    assert analysis.cell_scale(S) == 4
    grid_w = 2 + n * cell
    rec = _png(tmp_path / paths["reconstructions"])
    assert rec.shape == (2 + 2 * cell, grid_w, 3)
    smp = _png(tmp_path / paths["samples"])
    assert smp.shape == (2 + n * cell, grid_w, 3)
    trav = _png(tmp_path / paths["traversals"])
    assert trav.shape == (analysis.HEADER_HEIGHT + 2 + D * cell, analysis.LABEL_WIDTH + grid_w, 3)
    # ran in eval mode, training flag restored
    assert model.calls["train_flag_seen"] is False and model.training


def test_reconstructions_show_inputs_above_outputs(tmp_path):
    data = _data()
    n = 5
    save_model_figures(TinyDecoderModel(), data, tmp_path, n=n, seed=3, relative_to=tmp_path)
    rec = _png(tmp_path / "reconstructions.png")[..., 0].astype(int)
    inputs = data.get_batch(np.arange(len(data)))["x"][:, 0].numpy()
    top_left = rec[2 : 2 + 32 : 4, 2 : 2 + 32 : 4]  # first input, undo the 4x enlargement
    matches = [np.abs(top_left - np.round(x * 255)).max() <= 1 for x in inputs]
    assert sum(matches) == 1  # one of the data points, shown as is
    out = rec[2 + 34 : 2 + 34 + 32 : 4, 2 : 2 + 32 : 4]  # its reconstruction below it
    i = int(np.argmax(matches))
    expect = TinyDecoderModel().reconstruct(torch.as_tensor(inputs[i])[None, None])[0, 0]
    assert np.abs(out - np.round(expect.numpy() * 255)).max() <= 1


def _changed_image_rows(trav, r, n):
    """Image rows (0..S-1) that differ between the first and last column of traversal row r."""
    cell = 34
    top = analysis.HEADER_HEIGHT + 2 + r * cell
    left0 = analysis.LABEL_WIDTH + 2
    first = trav[top : top + 32 : 4, left0 : left0 + 32 : 4, 0].astype(int)
    last_left = left0 + (n - 1) * cell
    last = trav[top : top + 32 : 4, last_left : last_left + 32 : 4, 0].astype(int)
    return set(np.flatnonzero(np.abs(first - last).max(axis=1) > 10).tolist())


def test_traversal_rows_follow_latent_kl(tmp_path):
    kl = [0.1, 2.0, 0.5, 1.0]  # -> rows z1, z3, z2, z0
    n = 5
    save_model_figures(KLModel(kl), _data(), tmp_path, n=n)
    trav = _png(tmp_path / "traversals.png")
    assert [_changed_image_rows(trav, r, n) for r in range(D)] == [{1}, {3}, {2}, {0}]
    # values -3 .. 3: the first column is dark, the last bright, in the traversed image row
    top, left = analysis.HEADER_HEIGHT + 2 + 4, analysis.LABEL_WIDTH + 2  # row 0 -> latent 1
    assert trav[top, left, 0] == round(255 * float(torch.sigmoid(torch.tensor(-3.0))))
    assert trav[top, left + (n - 1) * 34, 0] == round(255 * float(torch.sigmoid(torch.tensor(3.0))))


def test_traversal_order_by_variance_without_kl():
    # latent j's spread grows with |scale_j|: image row j of the data has that spread
    rng = np.random.default_rng(0)
    spreads = [0.05, 0.3, 0.01, 0.15]
    x = np.full((64, 1, S, S), 0.5, dtype=np.float32)
    for j, s in enumerate(spreads):
        x[:, 0, j, :] = (0.5 + rng.uniform(-s, s, size=64))[:, None]
    order, score, kind = analysis.traversal_order(TinyDecoderModel(), torch.as_tensor(x))
    assert kind == "var"
    assert order.tolist() == [1, 3, 0, 2]
    assert score.shape == (D,)


def test_model_without_decode_is_refused(tmp_path):
    class EncoderOnly(torch.nn.Module, Encoder):
        def encode(self, x):
            return x.flatten(1)

    with pytest.raises(TypeError, match="decode"):
        save_model_figures(EncoderOnly(), _data(), tmp_path)
    assert not any(tmp_path.iterdir())


def test_minimal_model_rgb_no_sample(tmp_path):
    """encode + decode only: reconstructions via decode(encode(x)), no samples figure."""

    class Minimal(torch.nn.Module, Encoder, Decoder):  # no parameters: it runs on the CPU
        def encode(self, x):
            return TinyDecoderModel.encode(TinyDecoderModel(), x)

        def decode(self, z):
            return TinyDecoderModel().decode(z).expand(-1, 3, -1, -1)

    paths = save_model_figures(Minimal(), _data(c=3), tmp_path / "f", n=3)
    assert set(paths) == {"traversals", "reconstructions"}
    assert not (tmp_path / "f" / "samples.png").exists()
    assert _png(tmp_path / "f" / "reconstructions.png").shape == (2 + 2 * 34, 2 + 3 * 34, 3)


def test_global_rng_untouched(tmp_path):
    torch.manual_seed(123)
    expect = torch.rand(3)
    torch.manual_seed(123)
    save_model_figures(TinyDecoderModel(), _data(), tmp_path / "f", n=3, seed=7)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expect.numpy())
