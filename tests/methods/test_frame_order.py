"""frame_order: tuples checked against their definition, temporal pooling by hand, the seams."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from replab.config import ConfigError
from replab.data import make_dataset
from replab.data.base import DataInfo
from replab.data.video import MovingSprites
from replab.eval import protocol
from replab.methods import configure
from replab.methods.frame_order import (
    FrameOrder,
    FrameOrderConfig,
    frame_differences,
    sample_tuples,
    temporal_pool,
)
from replab.run import load
from replab.training.loop import train

CLIPS = DataInfo(shape=(8, 1, 64, 64), kind="video")


def test_tuples_are_in_order_exactly_when_labelled_so():
    x = MovingSprites().get_batch(np.arange(0, 98304, 491))["x"]
    cfg = FrameOrderConfig(negative_fraction=0.75, tuples_per_clip=3, reverse=True)
    tuples, labels = sample_tuples(x, cfg, torch.Generator().manual_seed(0))
    assert tuples.shape == (len(x), 3, 3) and labels.shape == (len(x), 3)
    first, middle, last = tuples.unbind(-1)
    lo, hi = torch.minimum(first, last), torch.maximum(first, last)
    between = (middle > lo) & (middle < hi)
    assert torch.equal(between.long(), labels)  # in order iff the middle frame lies between
    assert (hi - lo >= 2).all()  # b and d always have c between them
    assert abs(labels.float().mean().item() - 0.25) < 0.05
    assert ((first > last) & (labels == 1)).any() and ((first < last) & (labels == 1)).any()
    no_reverse = FrameOrderConfig(reverse=False)
    t2, _ = sample_tuples(x, no_reverse, torch.Generator().manual_seed(0))
    assert (t2[..., 0] < t2[..., 2]).all()


def test_the_kept_window_has_the_most_motion():
    x = MovingSprites().get_batch(np.arange(0, 98304, 983))["x"]
    diff = frame_differences(x)
    one = FrameOrderConfig(candidates=1, tuples_per_clip=8, reverse=False)
    many = FrameOrderConfig(candidates=8, tuples_per_clip=8, reverse=False)

    def motion(tuples):
        rows = torch.arange(len(x))[:, None]
        a = diff[rows, tuples[..., 1], tuples[..., 0]]
        b = diff[rows, tuples[..., 1], tuples[..., 2]]
        return torch.minimum(a, b)

    m1 = motion(sample_tuples(x, one, torch.Generator().manual_seed(0))[0])
    m8 = motion(sample_tuples(x, many, torch.Generator().manual_seed(0))[0])
    assert m8.mean() > m1.mean() and (m8 > 0).float().mean() > (m1 > 0).float().mean() - 1e-9
    # the differences are what they say: mean |frame_i - frame_j|
    assert diff[0, 1, 4].item() == pytest.approx((x[0, 1] - x[0, 4]).abs().mean().item())


def test_temporal_pooling_is_the_mean_and_the_least_squares_slope():
    t = torch.arange(6, dtype=torch.float64)
    feats = torch.stack([3 + 2 * t, -t, torch.full_like(t, 5.0)], 1)[None]  # [1, 6, 3]
    pooled = temporal_pool(feats)
    torch.testing.assert_close(
        pooled, torch.tensor([[8.0, -2.5, 5.0, 2.0, -1.0, 0.0]], dtype=torch.float64)
    )
    rev = temporal_pool(feats.flip(1))
    torch.testing.assert_close(rev[:, :3], pooled[:, :3])
    torch.testing.assert_close(rev[:, 3:], -pooled[:, 3:])
    noisy = torch.randn(4, 7, 2, dtype=torch.float64)
    slope = np.polyfit(np.arange(7), noisy[2, :, 1].numpy(), 1)[0]
    assert temporal_pool(noisy)[2, 3].item() == pytest.approx(slope)


def test_encode_takes_frames_and_clips():
    torch.manual_seed(0)
    m = FrameOrder(FrameOrderConfig(), CLIPS).eval()
    frame = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        f = m.encode(frame)
        still = m.encode(frame[:, None].expand(2, 8, 1, 64, 64))
    assert f.shape == (2, 256) and still.shape == (2, 512)
    torch.testing.assert_close(still[:, :256], f)  # a still clip: its frame, and no motion
    torch.testing.assert_close(still[:, 256:], torch.zeros(2, 256), atol=1e-5, rtol=0)
    assert m.accepts_shape((1, 64, 64)) and m.accepts_shape((8, 1, 64, 64))
    assert m.accepts_shape((3, 1, 64, 64)) and not m.accepts_shape((1, 32, 32))


def test_the_loss_is_the_cross_entropy_of_the_order_labels():
    torch.manual_seed(0)
    m = FrameOrder(FrameOrderConfig(tuples_per_clip=2), CLIPS)
    m.seed = 5
    x = MovingSprites().get_batch(np.array([3, 40000, 90000]))["x"]
    out = m.loss({"x": x}, 7)
    from replab.nn.views import step_generator

    tuples, labels = sample_tuples(x, m.cfg, step_generator(5, 7))
    with torch.no_grad():
        feats = torch.stack([m.backbone(x[i]) for i in range(3)])  # [3, 8, 256]
        rows = [torch.cat([feats[i, j] for j in tuples[i, n]]) for i in range(3) for n in range(2)]
        logits = m.head(torch.stack(rows))
    y = labels.flatten()
    want = -torch.log_softmax(logits, 1)[torch.arange(6), y].mean()
    assert out["loss"].item() == pytest.approx(want.item(), rel=1e-5)
    assert out["in_order_share"].item() == pytest.approx(y.float().mean().item())


def test_refuses_data_it_cannot_use():
    with pytest.raises(ConfigError, match="needs clips"):
        FrameOrder(FrameOrderConfig(), DataInfo(shape=(1, 64, 64)))
    with pytest.raises(ConfigError, match=">= 5 frames"):
        FrameOrder(FrameOrderConfig(), DataInfo(shape=(4, 1, 64, 64), kind="video"))


def test_trains_and_the_protocol_evaluates_frames(tmp_path, monkeypatch):
    cfg = configure(
        "frame_order",
        "moving_sprites",
        overrides={"train.steps": 2, "train.batch_size": 4, "train.log_every": 1},
    )
    run = train(cfg, make_dataset(cfg.data), tmp_path / "run", progress=False)
    logs = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(logs) == 2 and all(math.isfinite(r["loss"]) for r in logs)
    # the seam under test is the shape check: the slow scores are stubbed out
    from replab.eval import disentanglement
    from replab.eval.parts import disentanglement as disentanglement_part

    for name in ("beta_vae_score", "factor_vae_score", "mig", "sap"):
        monkeypatch.setattr(disentanglement, name, lambda *a, **k: 0.0)
    monkeypatch.setattr(
        disentanglement,
        "dci",
        lambda *a, **k: dict.fromkeys(
            ("disentanglement", "completeness", "informativeness_test"), 0.0
        ),
    )
    monkeypatch.setattr(
        disentanglement,
        "modularity_explicitness",
        lambda *a, **k: dict.fromkeys(("modularity", "explicitness_test"), 0.0),
    )
    small = dataclasses.replace(
        protocol.SUITES["quick"], n_train=150, n_test=30, dis_train=150, dis_test=30
    ).only(("linear_probe", "disentanglement", "factor_probes"))
    loaded = load(run.dir)
    frame_data = make_dataset("moving_sprites_frames")
    frames = protocol.evaluate(loaded, frame_data, small, log=lambda m: None).to_json()
    assert frames["representation_dim"] == 256
    assert set(frames["factor_probes"]) == {"shape", "pos_x", "pos_y"}
    with pytest.raises(protocol.EvaluationError, match="shape"):
        protocol.evaluate(loaded, make_dataset("digits"), small, log=lambda m: None)

    # wider than the cap: DCI and SAP (one fit per dimension) are skipped with a note, not run
    def never(*a, **k):
        raise AssertionError("per-dimension metric run on a representation over the cap")

    monkeypatch.setattr(disentanglement, "dci", never)
    monkeypatch.setattr(disentanglement, "sap", never)
    monkeypatch.setattr(disentanglement_part, "DCI_MAX_DIMS", 64)
    wide = protocol.evaluate(loaded, frame_data, small, log=lambda m: None).to_json()
    assert wide["disentanglement"]["sap"] is None
    assert wide["disentanglement"]["dci_disentanglement"] is None
    notes = " ".join(wide["notes"]["disentanglement"])
    assert "SAP skipped" in notes and "DCI skipped" in notes and "256 dimensions" in notes
