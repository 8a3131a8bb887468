"""CPC (audio and images): geometry, causality, the loss against a direct computation, training."""

import dataclasses
import json
import math
import wave

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from replab.cli import app
from replab.config import ConfigError
from replab.data import make_dataset
from replab.data.base import DataInfo
from replab.data.tones import Tones
from replab.eval import protocol
from replab.methods import configure
from replab.methods.cpc import (
    CPC,
    NEGATIVES,
    CPCConfig,
    CPCImage,
    CPCImageConfig,
    conv_output_length,
    patch_grid,
)
from replab.nn.losses import draw_negatives
from replab.nn.views import step_generator
from replab.run import load
from replab.training.loop import train

AUDIO = DataInfo(shape=(1, 3840), kind="audio")
TINY = {"channels": 16, "context_dim": 12, "prediction_steps": 3, "num_negatives": 5}


def tiny_cpc(**kw) -> CPC:
    torch.manual_seed(0)
    return CPC(CPCConfig(**{**TINY, **kw}), AUDIO)


def test_encoder_is_the_papers_and_downsamples_160_times():
    assert conv_output_length(20480) == 128  # the paper's 20,480-sample windows
    assert conv_output_length(160 * 37) == 37
    m = CPC(CPCConfig(channels=256), AUDIO)
    convs = [c for c in m.encoder.net if isinstance(c, torch.nn.Conv1d)]
    assert [c.kernel_size[0] for c in convs] == [10, 8, 4, 4, 4]
    assert [c.stride[0] for c in convs] == [5, 4, 2, 2, 2]
    assert all(c.out_channels == 256 for c in convs)
    assert m.context.hidden_size == 256 and len(m.predictors) == 12
    x = torch.randn(2, 1, 3840)
    assert m.frame_latents(x).shape == (2, 24, 256)
    assert m.frame_features(x).shape == (2, 24, 256)
    assert m.encode(x).shape == (2, 256)
    torch.testing.assert_close(m.encode(x), m.frame_features(x).mean(1))


def test_context_at_t_never_sees_the_future():
    m = tiny_cpc()
    x = torch.randn(1, 1, 3840)
    y = x.clone()
    y[..., 160 * 12 :] = torch.randn(1, 1, 3840 - 160 * 12)  # change everything from frame 12 on
    with torch.no_grad():
        cx, cy = m.frame_features(x), m.frame_features(y)
    # frame t's receptive field ends before sample 160 (t + 1) + 155: frames < 11 are untouched
    torch.testing.assert_close(cx[:, :11], cy[:, :11])
    assert not torch.allclose(cx[:, 12:], cy[:, 12:])


@pytest.mark.parametrize("negatives", list(NEGATIVES))
def test_loss_equals_a_direct_computation_of_infonce_over_steps(negatives):
    m = tiny_cpc(negatives=negatives)
    m.seed = 3
    x = Tones().get_batch(np.array([5, 700, 1400]))["x"]
    with torch.no_grad():
        got = m.loss({"x": x}, step=11)
        z = m.frame_latents(x)
        c = m.frame_features(x)
        weights = [w.weight.clone() for w in m.predictors]
    b, t, _ = z.shape
    g = step_generator(3, 11)
    total, correct1 = 0.0, 0
    for k in range(1, 4):
        w = weights[k - 1]
        pos = torch.tensor([bi * t + ti + k for bi in range(b) for ti in range(t - k)])
        neg = draw_negatives(pos, b * t, t, 5, NEGATIVES[negatives], g)
        losses = []
        for row, (bi, ti) in enumerate((bi, ti) for bi in range(b) for ti in range(t - k)):
            pred = w @ c[bi, ti]
            s_pos = float(pred @ z[bi, ti + k])
            s_neg = [float(pred @ z.reshape(b * t, -1)[j]) for j in neg[row]]
            losses.append(-s_pos + math.log(math.exp(s_pos) + sum(math.exp(s) for s in s_neg)))
            if k == 1:
                correct1 += s_pos > max(s_neg)
        total += sum(losses) / len(losses)
    assert got["loss"].item() == pytest.approx(total / 3, rel=1e-4)
    assert got["accuracy_step1"].item() == pytest.approx(correct1 / (b * (t - 1)))


def test_a_few_steps_on_one_batch_lower_the_loss():
    m = tiny_cpc(channels=32, num_negatives=20)
    x = Tones().get_batch(np.arange(0, 2880, 720))["x"]
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    first = None
    for step in range(30):
        out = m.loss({"x": x}, step)
        first = out["loss"].item() if first is None else first
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert first == pytest.approx(math.log(21), abs=0.1)  # chance: 1 positive in 21
    assert out["loss"].item() < first - 0.3


def test_crops_are_windows_of_the_input():
    m = tiny_cpc(crop=2400)
    x = torch.arange(3840, dtype=torch.float32).expand(4, 1, 3840)
    win = m._crop(x, torch.Generator().manual_seed(0))
    assert win.shape == (4, 1, 2400)
    assert torch.all(win[..., 1:] - win[..., :-1] == 1)  # contiguous
    assert win[:, 0, 0].unique().numel() > 1  # at random places


def test_bad_configurations_give_config_errors():
    with pytest.raises(ConfigError, match="too few to predict model.prediction_steps=12"):
        CPC(CPCConfig(), DataInfo(shape=(1, 1600), kind="audio"))
    with pytest.raises(ConfigError, match="cpc needs audio"):
        CPC(CPCConfig(), DataInfo(shape=(1, 64, 64)))
    with pytest.raises(ConfigError, match="model.crop"):
        CPC(CPCConfig(crop=5000), AUDIO)
    with pytest.raises(ConfigError, match="does not tile"):
        CPCImage(CPCImageConfig(grid=6), DataInfo(shape=(1, 64, 64)))
    with pytest.raises(ConfigError, match="model.prediction_steps: 5 rows below.*only 3 rows"):
        configure("cpc_image", "digits", overrides={"grid": 3, "patch": 4})
    with pytest.raises(ConfigError, match="cpc_image needs images"):
        CPCImage(CPCImageConfig(), DataInfo(shape=(1, 3840), kind="audio"))
    with pytest.raises(ConfigError, match="cpc_image needs square images, got 64x32"):
        CPCImage(CPCImageConfig(), DataInfo(shape=(1, 64, 32)))


def test_cli_refuses_bad_specs_with_one_line(tmp_path):
    result = CliRunner().invoke(
        app, ["train", "cpc", "--data", f"wav:{tmp_path}/none", "-q", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "no such file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = CliRunner().invoke(app, ["train", "cpc", "--data", "tones", "negatives=nearby", "-q"])
    assert result.exit_code == 2 and "model.negatives" in result.stderr


# ------------------------------------------------------------------------------ images


def test_patch_grid_keeps_the_papers_proportions():
    assert patch_grid(256, 7) == (64, 32)  # the paper: 64-pixel crops, 32 pixels apart
    assert patch_grid(64, 7) == (16, 8)
    assert patch_grid(32, 7) == (8, 4)
    assert patch_grid(8, 7) == (2, 1)


def test_image_patches_are_the_grid_cells_row_by_row():
    torch.manual_seed(0)
    m = CPCImage(CPCImageConfig(), DataInfo(shape=(3, 32, 32)))
    x = torch.rand(2, 3, 32, 32)
    p = m.patches(x)
    assert p.shape == (2, 49, 3, 8, 8)
    for r, c in [(0, 0), (2, 5), (6, 6)]:
        torch.testing.assert_close(p[:, r * 7 + c], x[:, :, 4 * r : 4 * r + 8, 4 * c : 4 * c + 8])


def test_image_context_at_row_r_sees_only_rows_up_to_r():
    torch.manual_seed(0)
    m = CPCImage(CPCImageConfig(), DataInfo(shape=(1, 32, 32)))
    z = torch.randn(1, m.backbone.out_dim, 7, 7)
    z2 = z.clone()
    z2[:, :, 4:] = torch.randn_like(z2[:, :, 4:])
    with torch.no_grad():
        c, c2 = m.context(z), m.context(z2)
    torch.testing.assert_close(c[:, :, :4], c2[:, :, :4])
    assert not torch.allclose(c[:, :, 4:], c2[:, :, 4:])


def test_cpc_image_trains_through_the_loop(tmp_path):
    cfg = configure(
        "cpc_image",
        "digits",
        overrides={
            "train.steps": 2,
            "train.batch_size": 4,
            "num_negatives": 8,
            "train.log_every": 1,
        },
    )
    run = train(cfg, make_dataset(cfg.data), tmp_path / "run", progress=False)
    logs = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(logs) == 2 and all(math.isfinite(r["loss"]) for r in logs)
    assert logs[0]["loss"] == pytest.approx(math.log(9), abs=0.5)  # 1 positive in 9
    x = torch.rand(3, 1, 8, 8)
    assert load(run.dir).encode(x).shape == (3, 256)


def write_tone_corpus(folder) -> None:
    """16 WAVs named {word}_{voice}_{index}.wav from the tones data set (2 words x 2 voices)."""
    folder.mkdir()
    tones = Tones()
    for word in (0, 59):
        for voice in (0, 3):
            for index in range(4):
                x = tones.observations(np.array([[index * 3, voice, word]]))[0, 0].numpy()
                with wave.open(str(folder / f"{word}_{voice}_{index}.wav"), "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(8000)
                    w.writeframes(np.round(x * 32767).astype("<i2").tobytes())


def test_cpc_trains_on_wavs_and_is_evaluated_on_another_label(tmp_path, monkeypatch):
    write_tone_corpus(tmp_path / "wavs")
    spec = f"wav:{tmp_path / 'wavs'},pattern={{word}}_{{voice}}_{{index}}.wav,test=index<1"
    cfg = configure(
        "cpc",
        spec + ",seconds=0.48",
        overrides={**TINY, "train.steps": 2, "train.batch_size": 4, "train.log_every": 1},
    )
    run = train(cfg, make_dataset(cfg.data), tmp_path / "run", progress=False)
    small = dataclasses.replace(protocol.SUITES["quick"], n_train=100, n_test=50)
    # trained with the words as labels, evaluated on the voices: the same inputs
    voices = make_dataset(f"{spec},seconds=0.48,label=voice")
    result = protocol.evaluate(load(run.dir), voices, small, log=lambda m: None).to_json()
    assert set(result["baselines"]) == {"log_mel", "random_encoder"}
    assert result["linear_probe"]["1.0"]["n_labels"] == 12
    assert result["representation_dim"] == 12 and result["dataset"].endswith("label=voice")
    longer = make_dataset(spec + ",seconds=0.5")
    with pytest.raises(protocol.EvaluationError, match="shape"):
        protocol.evaluate(load(run.dir), longer, small, log=lambda m: None)
