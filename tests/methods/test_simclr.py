"""SimCLR: NT-Xent against its formula, the pairs it contrasts, the model, resume, and DDP."""

import math
import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from replab.config import ConfigError
from replab.data.base import DataInfo
from replab.methods import configure
from replab.methods.simclr import SimCLR, SimCLRConfig
from replab.nn.losses import NTXentLoss


def nt_xent_by_hand(z1, z2, t):
    """Eq. 1 of the paper, one anchor at a time, with Python loops."""
    u = [v / v.norm() for v in torch.cat([z1, z2]).double()]
    n = len(z1)
    total = 0.0
    for k in range(2 * n):
        pos = k + n if k < n else k - n
        num = math.exp(float(u[k] @ u[pos]) / t)
        den = sum(math.exp(float(u[k] @ u[j]) / t) for j in range(2 * n) if j != k)
        total += -math.log(num / den)
    return total / (2 * n)


def test_nt_xent_equals_its_formula():
    z1 = torch.tensor([[1.0, 2.0, 0.5], [-1.0, 0.3, 2.0], [0.2, -0.7, 0.1]])
    z2 = torch.tensor([[0.9, 1.5, 1.0], [-2.0, 0.0, 1.0], [1.0, 1.0, -1.0]])
    for t in (0.5, 0.1, 1.0):
        got = NTXentLoss(t)(z1, z2).item()
        assert got == pytest.approx(nt_xent_by_hand(z1, z2, t), rel=1e-5)


def test_nt_xent_under_bf16_autocast_is_computed_in_fp32():
    # bf16 autocast is the default on CUDA; the loss must neither fail nor round its logits
    z1, z2 = torch.randn(6, 5, generator=torch.Generator().manual_seed(0)).chunk(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, _ = NTXentLoss(0.1).logits_and_targets(z1, z2)
        loss = NTXentLoss(0.1)(z1, z2)
    assert logits.dtype == torch.float32
    assert loss.item() == pytest.approx(nt_xent_by_hand(z1, z2, 0.1), rel=1e-5)


def test_positives_and_negatives_are_the_right_pairs():
    # z1[i] = z2[i] = e_i: every positive has similarity 1, every negative 0, so each anchor's
    # loss is log(1 + (2N - 2) exp(-1 / t)) and the positive is every anchor's best match
    n, t = 4, 0.5
    e = torch.eye(n)
    loss = NTXentLoss(t)
    assert loss(e, e).item() == pytest.approx(math.log(1 + (2 * n - 2) * math.exp(-1 / t)))
    logits, positive = loss.logits_and_targets(e, e)
    assert positive.tolist() == [4, 5, 6, 7, 0, 1, 2, 3]
    assert (logits.argmax(1) == positive).all()
    assert torch.isinf(logits.diagonal()).all()  # an anchor is never its own negative
    # pair the views wrongly (z2 shifted by one): each anchor's positive is orthogonal (exp 0)
    # and one of its negatives identical (exp(1 / t)), the other 2N - 3 orthogonal
    wrong = loss(e, e.roll(1, 0)).item()
    assert wrong == pytest.approx(math.log(2 * n - 2 + math.exp(1 / t)), rel=1e-6)
    assert wrong > loss(e, e).item()


def test_nt_xent_rejects_mismatched_batches():
    with pytest.raises(ValueError, match="two \\[n, d\\] batches"):
        NTXentLoss()(torch.rand(3, 4), torch.rand(2, 4))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        NTXentLoss(0.0)


@pytest.mark.parametrize(
    ("shape", "backbone", "dim"), [((1, 8, 8), "conv", 256), ((3, 32, 32), "resnet18", 512)]
)
def test_model_shapes_and_encode_is_the_backbone(shape, backbone, dim):
    model = SimCLR(SimCLRConfig(), DataInfo(shape=shape))
    assert (
        model.cfg.backbone == "auto"
        and type(model.backbone).__name__
        == {
            "conv": "ConvBackbone",
            "resnet18": "ResNet",
        }[backbone]
    )
    assert model.projector[0].out_features == dim  # hidden layer as wide as h (paper)
    assert model.projector[-1].out_features == 128
    x = torch.rand(4, *shape)
    model.to(torch.device("cpu")).eval()
    torch.testing.assert_close(model.encode(x), model.backbone(x))
    assert model.encode(x).shape == (4, dim)


def test_loss_is_a_function_of_seed_and_step():
    torch.manual_seed(0)
    model = SimCLR(SimCLRConfig(), DataInfo(shape=(1, 8, 8)))
    x = torch.rand(16, 1, 8, 8)
    a = model.loss({"x": x}, 3)
    assert set(a) == {"loss", "pair_accuracy"} and torch.isfinite(a["loss"])
    assert torch.equal(a["loss"], model.loss({"x": x}, 3)["loss"])
    assert not torch.equal(a["loss"], model.loss({"x": x}, 4)["loss"])
    model.seed = 1
    assert not torch.equal(a["loss"], model.loss({"x": x}, 3)["loss"])


def test_config_errors():
    with pytest.raises(ConfigError, match="model.temperature: must be > 0"):
        configure("simclr", "digits", overrides={"temperature": 0})
    with pytest.raises(ConfigError, match="model.backbone"):
        configure("simclr", "digits", overrides={"backbone": "vit"})
    with pytest.raises(ConfigError, match="simclr needs images"):  # exit status 2 in the CLI
        SimCLR(SimCLRConfig(), DataInfo(shape=(12,), kind="tokens", vocab_size=5))


@pytest.mark.parametrize(
    ("override", "message"),
    [("temperature=-1", "model.temperature: must be > 0"), ("crop_min=0", "model.crop_min")],
)
def test_cli_refuses_bad_settings_with_status_2(tmp_path, override, message):
    from typer.testing import CliRunner

    from replab.cli import app

    result = CliRunner().invoke(
        app, ["train", "simclr", "--data", "digits", "--out", str(tmp_path / "r"), override]
    )
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_resume_gives_the_same_weights(resume_is_exact):
    cfg = configure(
        "simclr",
        "digits",
        overrides={"train.steps": 4, "train.batch_size": 32, "train.checkpoint_every": 2},
    )
    resume_is_exact(cfg, stop=2)


# ---------------------------------------------------------------------------------------------
# two processes (gloo) with the global batch split in halves = one process with the whole batch


def _global_batch():
    return torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def _ddp_worker(rank, world, port, out_dir):
    import torch.distributed as tdist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    tdist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        torch.manual_seed(0)
        model = SimCLR(SimCLRConfig(), DataInfo(shape=(1, 8, 8)))
        n = 8 // world
        x = _global_batch()[rank * n : (rank + 1) * n]
        ddp = DistributedDataParallel(model)  # kept alive: its hooks average the gradients
        logs = ddp({"x": x}, 3)
        logs["loss"].backward()
        loss = logs["loss"].detach().reshape(1).clone()
        tdist.all_reduce(loss)
        save_file(_grads(model) | {"loss": loss / world}, f"{out_dir}/rank{rank}.safetensors")
        tdist.barrier()  # both done before either closes its connections (gloo aborts else)
    finally:
        tdist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_give_the_gradients_of_one(tmp_path):
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    torch.manual_seed(0)
    model = SimCLR(SimCLRConfig(), DataInfo(shape=(1, 8, 8)))
    logs = model({"x": _global_batch()}, 3)
    logs["loss"].backward()
    single = _grads(model)
    for rank in range(2):
        got = load_file(str(tmp_path / f"rank{rank}.safetensors"))
        torch.testing.assert_close(got.pop("loss")[0], logs["loss"].detach())
        assert got.keys() == single.keys()
        for k in single:
            torch.testing.assert_close(got[k], single[k], rtol=1e-4, atol=1e-6)
