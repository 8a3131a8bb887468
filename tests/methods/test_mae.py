"""MAE: patches, positions, the masked share, and a loss that scores only masked patches."""

import math

import pytest
import torch

from replab.data.base import DataInfo
from replab.methods import configure
from replab.methods.mae import MAE, MAEConfig, masked_patch_loss, patchify, sincos_positions


def test_patchify_cuts_row_major_patches():
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    p = patchify(x, 2)
    assert p.shape == (1, 4, 8)
    # patch 1 (top right): rows 0-1, columns 2-3, pixels (row, column, channel)
    expected = [x[0, c, r, q].item() for r in (0, 1) for q in (2, 3) for c in (0, 1)]
    assert p[0, 1].tolist() == expected


def test_sincos_positions_by_formula():
    pos = sincos_positions(3, 8)
    row, col = 1, 2
    index = row * 3 + col
    omega = [1.0, 1.0 / 100.0]  # 1 / 10000^(k / 2), k = 0, 1
    expected = [math.sin(row * w) for w in omega] + [math.cos(row * w) for w in omega]
    expected += [math.sin(col * w) for w in omega] + [math.cos(col * w) for w in omega]
    assert pos[index].tolist() == pytest.approx(expected, abs=1e-6)


def test_the_loss_scores_only_masked_patches_with_normalised_targets():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 5, 4, generator=g), torch.randn(2, 5, 4, generator=g)
    masked = torch.tensor([[True, False, True, False, False], [False, True, True, True, False]])
    t = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    per_patch = ((pred - t) ** 2).mean(-1)
    expected = per_patch[masked].mean()
    assert masked_patch_loss(pred, target, masked).item() == pytest.approx(expected.item())
    changed = pred.clone()
    changed[~masked] += 100.0  # anything on the visible patches
    assert masked_patch_loss(changed, target, masked).item() == pytest.approx(expected.item())


def test_each_step_masks_the_stated_share_as_a_function_of_seed_and_step():
    model = MAE(MAEConfig(), DataInfo(shape=(1, 16, 16)))  # patch 2: 64 patches, 16 kept
    keep, masked = model.random_masking(3, step=5, device="cpu")
    assert keep.shape == (3, 16) and masked.sum(1).tolist() == [48, 48, 48]
    assert not masked.gather(1, keep).any()
    again, _ = model.random_masking(3, step=5, device="cpu")
    assert torch.equal(keep, again)
    other, _ = model.random_masking(3, step=6, device="cpu")
    assert not torch.equal(keep, other)
    logs = model({"x": torch.rand(3, 1, 16, 16)}, 5)
    assert logs["masked_share"].item() == 0.75 and torch.isfinite(logs["loss"])


def test_refuses_images_its_patches_do_not_tile():
    from replab.config import ConfigError

    with pytest.raises(ConfigError, match="multiple of its patch side 3"):
        MAE(MAEConfig(patch=3), DataInfo(shape=(1, 8, 8)))


def test_resumes_bit_for_bit(resume_is_exact):
    few = {"train.steps": 4, "train.batch_size": 8, "train.checkpoint_every": 2, "depth": 2,
           "dim": 32, "heads": 2, "decoder_dim": 16, "decoder_heads": 2}  # fmt: skip
    resume_is_exact(configure("mae", "digits", overrides=few), stop=2)
