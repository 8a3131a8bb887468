"""VQ-VAE: straight-through gradient, nearest codes, dead-code restarts, EMA, losses, training."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from replab.cli import app
from replab.config import ConfigError
from replab.data.base import ArrayDataset, DataInfo
from replab.eval.analysis import save_model_figures
from replab.methods import configure
from replab.methods.capabilities import Decoder, Encoder
from replab.methods.vq_vae import VectorQuantizer, bits_per_value, nearest_codes, perplexity
from replab.run import build_model, load

SMALL = {"hidden": 8, "residual_hidden": 4, "residual_layers": 1, "num_codes": 16, "code_dim": 4}


def tiny(shape=(1, 8, 8), **overrides):
    torch.manual_seed(0)
    cfg = configure("vq_vae", "digits", overrides=SMALL | overrides)
    return build_model(cfg, DataInfo(shape=shape))


def test_nearest_code_is_chosen_brute_force():
    g = torch.Generator().manual_seed(0)
    z, codebook = torch.randn(200, 5, generator=g), torch.randn(30, 5, generator=g)
    brute = [
        min(range(30), key=lambda k: float(((z[i] - codebook[k]) ** 2).sum())) for i in range(200)
    ]
    assert nearest_codes(z, codebook).tolist() == brute
    # the model's discrete code is the nearest entry for every grid position's encoder output
    model = tiny().eval()
    x = torch.rand(3, 1, 8, 8)
    rows = model.encoder(x).permute(0, 2, 3, 1).reshape(-1, 4)
    dist = ((rows[:, None, :] - model.quantizer.codebook[None]) ** 2).sum(-1)
    assert model.codes(x).flatten().tolist() == dist.argmin(1).tolist()


@pytest.mark.parametrize("beta", [0.0, 0.25])
def test_straight_through_passes_the_decoder_gradient_to_the_encoder(beta):
    model = tiny(beta=beta, dead_code_steps=0).train()
    x = torch.rand(4, 1, 8, 8)
    captured = {}

    def keep(module, inputs, output):
        output.retain_grad()
        captured["z_e"] = output

    handle = model.encoder.register_forward_hook(keep)
    model.loss({"x": x}, 0)["loss"].backward()
    handle.remove()
    z_e = captured["z_e"]
    # by hand: the decoder's gradient at the quantised grid z_q (a leaf here) ...
    z_q = model.quantized(x).detach().requires_grad_(True)
    F.mse_loss(torch.sigmoid(model.decoder(z_q)), x).backward()
    # ... plus the commitment term's own gradient: d/dz_e beta * mean((z_e - e)^2)
    expected = z_q.grad + beta * 2.0 * (z_e.detach() - z_q.detach()) / z_e.numel()
    assert torch.allclose(z_e.grad, expected, atol=1e-7, rtol=1e-5)
    if beta == 0.0:
        assert torch.equal(z_e.grad, z_q.grad)


def test_loss_matches_its_formula():
    model = tiny(beta=0.25).eval()  # eval: no restarts or statistics change the codebook
    x = torch.rand(5, 1, 8, 8)
    logs = model.loss({"x": x}, 0)
    z_e = model.encoder(x)
    rows = z_e.permute(0, 2, 3, 1).reshape(-1, 4)
    cb = model.quantizer.codebook
    idx = torch.cdist(rows, cb).argmin(1)
    e = cb[idx]
    z_q = e.view(5, 2, 2, 4).permute(0, 3, 1, 2)
    recon = ((torch.sigmoid(model.decoder(z_q)) - x) ** 2).mean()
    sq = ((rows - e) ** 2).mean()
    assert logs["recon"].item() == pytest.approx(recon.item(), rel=1e-5)
    assert logs["codebook"].item() == pytest.approx(sq.item(), rel=1e-5)
    assert logs["commitment"].item() == pytest.approx(sq.item(), rel=1e-5)
    assert logs["loss"].item() == pytest.approx((recon + 1.25 * sq).item(), rel=1e-5)
    counts = np.bincount(idx.numpy(), minlength=16)
    p = counts[counts > 0] / counts.sum()
    assert logs["perplexity"].item() == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-5)
    assert logs["codes_used"].item() == pytest.approx((counts > 0).mean())


def test_perplexity_extremes():
    assert perplexity(torch.tensor([10, 0, 0, 0])).item() == pytest.approx(1.0)
    assert perplexity(torch.tensor([3, 3, 3, 3])).item() == pytest.approx(4.0)


def test_dead_codes_are_restarted_from_encoder_outputs():
    vq = VectorQuantizer(4, 2, dead_code_steps=3)
    vq.codebook.data = torch.tensor([[0.0, 0.0], [5.0, 5.0], [6.0, 6.0], [7.0, 7.0]])
    vq.unused_steps.zero_()
    z = torch.tensor([[0.1, 0.0], [0.0, 0.2], [-0.1, 0.1]])  # all nearest to code 0
    for step in range(3):
        assert vq.restart_dead(z) == 0, step  # not yet unused for 3 steps
        vq.record_usage(vq.counts(nearest_codes(z, vq.codebook)))
    assert vq.unused_steps.tolist() == [0, 3, 3, 3]
    torch.manual_seed(0)
    assert vq.restart_dead(z) == 3
    assert torch.equal(vq.codebook[0], torch.zeros(2))
    for k in (1, 2, 3):  # each restarted code is one of this batch's encoder outputs
        assert any(torch.equal(vq.codebook[k], row) for row in z)
    assert vq.unused_steps.tolist() == [0, 0, 0, 0]
    # with restarts off nothing changes
    off = VectorQuantizer(4, 2, dead_code_steps=0)
    before = off.codebook.detach().clone()
    off.record_usage(torch.tensor([5, 0, 0, 0]))
    assert off.restart_dead(z) == 0 and torch.equal(off.codebook.detach(), before)


def test_first_training_step_initialises_the_codebook_from_encoder_outputs():
    model = tiny(dead_code_steps=10).train()
    x = torch.rand(8, 1, 8, 8)  # 8 images x 4 positions = 32 encoder outputs, 16 codes
    logs = model.loss({"x": x}, 0)
    assert logs["restarted"] == 16
    rows = model.encoder(x).permute(0, 2, 3, 1).reshape(-1, 4).detach()
    # every code is a copy of one encoder output, bit for bit (a restart copies the row: no
    # arithmetic, so no rounding that could differ from one CPU to another)
    codebook = model.quantizer.codebook.detach()
    assert (codebook[:, None, :] == rows[None, :, :]).all(-1).any(1).all()
    assert model.loss({"x": x}, 1)["restarted"] == 0  # now every code is fresh


def test_ema_update_equals_its_formula():
    g, eps = 0.9, 1e-3
    vq = VectorQuantizer(2, 2, ema=True, decay=g, epsilon=eps, dead_code_steps=0)
    e0 = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    vq.codebook.copy_(e0)
    vq.ema_sum.copy_(e0)
    z = torch.tensor([[0.1, 0.0], [0.9, 1.2], [1.1, 0.8]])
    idx = nearest_codes(z, vq.codebook)
    assert idx.tolist() == [0, 1, 1]
    vq.ema_update(z, idx, vq.counts(idx))
    # by hand: N = g * 1 + (1 - g) * [1, 2]; m = g * e0 + (1 - g) * [sum of assigned rows]
    N = np.array([0.9 + 0.1 * 1, 0.9 + 0.1 * 2])
    m = np.array([[0.1 * 0.1, 0.0], [0.9 + 0.1 * 2.0, 0.9 + 0.1 * 2.0]])
    n = N.sum()
    smoothed = (N + eps) / (n + 2 * eps) * n
    np.testing.assert_allclose(vq.ema_count.numpy(), N, rtol=1e-6)
    np.testing.assert_allclose(vq.ema_sum.numpy(), m, rtol=1e-6)
    np.testing.assert_allclose(vq.codebook.numpy(), m / smoothed[:, None], rtol=1e-6)
    # EMA codebooks are no parameters: the optimiser never touches them, and there is no loss
    model = tiny(codebook_update="ema")
    assert "quantizer.codebook" not in dict(model.named_parameters())
    assert model.loss({"x": torch.rand(2, 1, 8, 8)}, 0)["codebook"].item() == 0.0


def test_encode_decode_reconstruct_and_pooled():
    model = tiny().eval()
    x = torch.rand(3, 1, 8, 8)
    z = model.encode(x)
    assert z.shape == (3, 4 * 2 * 2) and torch.equal(z, model.latents(x))
    assert torch.allclose(model.decode(z), model.reconstruct(x))
    # decode snaps each position to its code, so a small nudge decodes to the same image
    assert torch.allclose(model.decode(z + 1e-4), model.reconstruct(x))
    pooled = tiny(pooled=True).eval()
    zp = pooled.encode(x)
    assert zp.shape == (3, 4)
    assert torch.allclose(zp, pooled.latents(x).view(3, 4, 4).mean(2))


def test_compression_figure():
    model = tiny(num_codes=512)  # 8x8 input, 2 stride-2 layers: a 2x2 grid
    digits = torch.arange(17.0).repeat(4)[:64].view(1, 1, 8, 8) / 16  # 17 grey levels
    c = model.compression(digits)
    assert c["code_bits"] == 4 * 9
    assert c["bits_per_value"] == 5 and c["input_bits"] == 64 * 5
    assert c["ratio"] == pytest.approx(320 / 36)
    assert model.compression()["input_bits"] == 64 * 8
    sprites = tiny(shape=(1, 64, 64), downsample=3, num_codes=512)
    binary = (torch.rand(2, 1, 64, 64) > 0.5).float()
    assert sprites.compression(binary)["ratio"] == pytest.approx(64 * 64 / (8 * 8 * 9))
    assert bits_per_value(torch.zeros(3, dtype=torch.uint8)) == 8


def test_bad_input_one_line_errors():
    with pytest.raises(ConfigError, match=r"at least 16 pixels for model.downsample=4 stride-2"):
        tiny(downsample=4)
    with pytest.raises(ConfigError, match="vq_vae needs images"):
        build_model(configure("vq_vae", "digits"), DataInfo(shape=(16,), kind="tokens"))
    with pytest.raises(ConfigError, match="model.codebook_update: 'kmeans' is not valid"):
        configure("vq_vae", "digits", overrides={"codebook_update": "kmeans"})
    with pytest.raises(ConfigError, match="model.decay: must be <= 1"):
        configure("vq_vae", "digits", overrides={"decay": 1.5})
    result = CliRunner().invoke(app, ["train", "vq_vae", "--data", "digits", "downsample=4", "-q"])
    assert result.exit_code == 2
    assert "model.downsample" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("update", ["loss", "ema"])
def test_a_few_training_steps_on_digits(tmp_path, tiny_overrides, update, resume_is_exact):
    overrides = SMALL | tiny_overrides | {"codebook_update": update, "train.batch_size": 16}
    cfg = configure("vq_vae", "digits", overrides=overrides | {"train.checkpoint_every": 3})
    # dead-code restarts draw from the RNG and count steps in buffers: resuming is still exact
    straight, _ = resume_is_exact(cfg, stop=3)
    logs = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").open()]
    assert [r["step"] for r in logs] == [2, 4, 6]
    for r in logs:
        for key in ("loss", "recon_mse", "perplexity", "codes_used", "compression_ratio"):
            assert math.isfinite(r[key]), key
        assert 1.0 <= r["perplexity"] <= 16 and 0 < r["codes_used"] <= 1
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(load(tmp_path / "a", device="cpu").encode(x), straight.encode(x))


def test_figures_traverse_within_the_codebook(tmp_path):
    data = ArrayDataset(np.random.default_rng(0).uniform(size=(20, 1, 8, 8)).astype(np.float32))
    for pooled in (False, True):  # pooled: traversals use latents(), which decode inverts
        model = tiny(pooled=pooled)
        written = save_model_figures(model, data, tmp_path / f"fig{pooled}")
        assert set(written) == {"traversals", "reconstructions"}  # no prior, so no samples
    lo, hi = model.latent_range(None)
    cb = model.quantizer.codebook.detach()
    # flat latent j is coordinate j // 4 of one of the 4 grid positions
    assert torch.equal(lo, cb.min(0).values.repeat_interleave(4))
    assert torch.equal(hi, cb.max(0).values.repeat_interleave(4))


def test_traversal_seam_uses_latents_and_latent_range(tmp_path):
    """The figures' seam VQ-VAE relies on: latents() (not a pooled encode) is what decode takes,
    and each row walks linspace(lo[j], hi[j]) from latent_range()."""

    class Fake(torch.nn.Module, Encoder, Decoder):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(()))
            self.decoded = []

        def encode(self, x):  # pooled: not what decode takes
            return x.flatten(1).mean(1, keepdim=True)

        def latents(self, x):
            return x.flatten(1)[:, :3] * torch.tensor([1.0, 2.0, 3.0])  # variance orders rows

        def latent_range(self, x):
            return torch.tensor([0.0, -1.0, 10.0]), torch.tensor([1.0, 1.0, 20.0])

        def decode(self, z):
            self.decoded.append(z.clone())
            return torch.sigmoid(z[:, :1, None, None]).expand(len(z), 1, 8, 8)

    data = ArrayDataset(np.random.default_rng(0).uniform(size=(20, 1, 8, 8)).astype(np.float32))
    model = Fake()
    save_model_figures(model, data, tmp_path, n=5)
    rows = model.decoded[:3]  # traversal rows, highest variance first: latents 2, 1, 0
    for row, j, (lo, hi) in zip(rows, (2, 1, 0), [(10, 20), (-1, 1), (0, 1)], strict=True):
        assert torch.allclose(row[:, j], torch.linspace(lo, hi, 5))
        others = [k for k in range(3) if k != j]
        assert torch.equal(row[:, others], row[:1, others].expand(5, -1))  # the rest stay put
    assert model.decoded[3].shape == (5, 3)  # reconstructions: decode(latents(x))
