"""BYOL, MoCo v3, Barlow Twins, VICReg, DINO: each loss by hand in numpy, the momentum network's
update, DINO's centre and temperatures; with MAE, exact resumption and two processes equal to
one."""

import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from replab.data.base import DataInfo
from replab.methods import configure, method_class
from replab.methods.barlow_twins import barlow_twins_loss
from replab.methods.byol import byol_loss
from replab.methods.dino import DINOConfig, dino_loss, teacher_temperature
from replab.methods.moco_v3 import moco_v3_loss
from replab.methods.vicreg import vicreg_loss

NEW = ("byol", "moco_v3", "barlow_twins", "vicreg", "dino", "mae")


def pair(n=6, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(
        n, d, generator=g, dtype=torch.float64
    )


def unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_byol_loss_by_hand():
    p, z = pair()
    expected = np.mean(2 - 2 * np.sum(unit(p.numpy()) * unit(z.numpy()), axis=1))
    assert byol_loss(p, z).item() == pytest.approx(expected, rel=1e-12)


def test_moco_v3_loss_by_hand():
    q, k = pair()
    t = 0.2
    logits = unit(q.numpy()) @ unit(k.numpy()).T / t
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = 2 * t * -np.mean(np.diag(log_softmax))
    assert moco_v3_loss(q, k, t).item() == pytest.approx(expected, rel=1e-12)


def test_barlow_twins_loss_by_hand():
    za, zb = pair(n=8, d=3)
    a, b = za.numpy(), zb.numpy()
    sa = (a - a.mean(0)) / np.sqrt(a.var(0) + 1e-5)
    sb = (b - b.mean(0)) / np.sqrt(b.var(0) + 1e-5)
    c = sa.T @ sb / 8
    on = sum((1 - c[i, i]) ** 2 for i in range(3))
    off = sum(c[i, j] ** 2 for i in range(3) for j in range(3) if i != j)
    loss, got_c = barlow_twins_loss(za, zb, lamb=0.005, scale=0.1)
    assert loss.item() == pytest.approx(0.1 * (on + 0.005 * off), rel=1e-12)
    assert np.allclose(got_c.numpy(), c)


def test_vicreg_loss_by_hand():
    z1, z2 = pair(n=8, d=3)
    a, b = z1.numpy(), z2.numpy()
    invariance = np.mean((a - b) ** 2)

    def variance(z):
        return np.mean(np.maximum(0, 1 - np.sqrt(z.var(0, ddof=1) + 1e-4)))

    def covariance(z):
        cov = np.cov(z, rowvar=False)
        return (np.sum(cov**2) - np.sum(np.diag(cov) ** 2)) / z.shape[1]

    expected = 25 * invariance + 25 * (variance(a) + variance(b)) + covariance(a) + covariance(b)
    loss, terms = vicreg_loss(z1, z2)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert terms["invariance"].item() == pytest.approx(invariance, rel=1e-12)


def test_dino_loss_by_hand():
    s, t = pair(n=6, d=5)  # rows 0-2: view 1, rows 3-5: view 2
    c = torch.linspace(-0.2, 0.2, 5, dtype=torch.float64)[None]
    ts, tt = 0.1, 0.05
    S, T, C = s.numpy(), t.numpy(), c.numpy()

    def softmax(a):
        e = np.exp(a - a.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    p_t = softmax((T - C) / tt)
    log_s = np.log(softmax(S / ts))
    expected = (-(p_t[:3] * log_s[3:]).sum(1).mean() - (p_t[3:] * log_s[:3]).sum(1).mean()) / 2
    assert dino_loss(s, t, c, ts, tt).item() == pytest.approx(expected, rel=1e-12)


def test_dino_teacher_temperature_warms_up_linearly_then_stays():
    cfg = DINOConfig(teacher_temp_start=0.04, teacher_temp=0.07, teacher_temp_warmup=0.05)
    assert teacher_temperature(cfg, 0, 1000) == pytest.approx(0.04)
    assert teacher_temperature(cfg, 25, 1000) == pytest.approx(0.055)
    assert teacher_temperature(cfg, 50, 1000) == pytest.approx(0.07)
    assert teacher_temperature(cfg, 900, 1000) == pytest.approx(0.07)
    assert teacher_temperature(DINOConfig(), 10, 1000) == pytest.approx(0.04)  # the default


def test_dino_centre_moves_to_the_teachers_mean_output():
    model = _model("dino")
    x = {"x": torch.rand(8, 1, 8, 8)}
    with torch.no_grad():
        teacher = model.target_head(model.target_backbone(torch.cat(model.two_views(x, 0))))
    assert torch.all(model.center == 0)
    model(x, 0)
    torch.testing.assert_close(model.center, 0.1 * teacher.mean(0, keepdim=True))  # m = 0.9
    before = model.center.clone()
    model(x, 0)  # the same teacher output again: c <- 0.9 c + 0.1 mean
    torch.testing.assert_close(model.center, 0.9 * before + 0.1 * teacher.mean(0, keepdim=True))


def test_dino_logs_the_teachers_entropy_at_ln_k_when_it_is_uniform():
    model = _model("dino")
    with torch.no_grad():  # every prototype the same: every logit equal, the targets uniform
        model.target_head.prototypes.copy_(torch.ones_like(model.target_head.prototypes))
    logs = model({"x": torch.rand(8, 1, 8, 8)}, 0)
    k = model.center.shape[1]
    assert logs["teacher_entropy"].item() == pytest.approx(np.log(k), rel=1e-5)
    assert logs["teacher_mean_entropy"].item() == pytest.approx(np.log(k), rel=1e-5)


@pytest.mark.parametrize("method", ["byol", "moco_v3", "dino"])
def test_the_target_network_follows_the_online_one_by_the_schedule(method):
    cfg = configure(method, "digits", overrides={"train.steps": 10})
    torch.manual_seed(0)
    model = method_class(method)(cfg.model, DataInfo(shape=(1, 8, 8), num_classes=10))
    model.total_steps = 10
    x = {"x": torch.rand(8, 1, 8, 8)}
    model(x, 0)["loss"].backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.add_(p.grad, alpha=-0.1)  # a plain SGD step of the online network
    before = {n: p.clone() for n, p in model.target_backbone.named_parameters()}
    online = dict(model.backbone.named_parameters())
    logs = model(x, 1)  # the update happens as step 1 begins
    tau = model.tau(1)
    assert logs["tau"].item() == pytest.approx(tau)
    for name, p in model.target_backbone.named_parameters():
        expected = tau * before[name] + (1 - tau) * online[name].detach()
        torch.testing.assert_close(p, expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("method", NEW)
def test_resumes_bit_for_bit(method, resume_is_exact):
    few = {"train.steps": 4, "train.batch_size": 8, "train.checkpoint_every": 2}
    resume_is_exact(configure(method, "digits", overrides=few), stop=2)


# ---------------------------------------------------------------------------------------------
# two processes (gloo), each with half the global batch = one process with all of it


def _batch():
    return torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def _model(method):
    torch.manual_seed(0)
    cfg = configure(method, "digits").model
    model = method_class(method)(cfg, DataInfo(shape=(1, 8, 8), num_classes=10))
    model.total_steps = 10
    return model


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _worker(rank, world, port, out_dir):
    import torch.distributed as tdist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                             world_size=world)  # fmt: skip
    try:
        for method in NEW:
            model = _model(method)
            n = 8 // world
            ddp = DistributedDataParallel(model)
            logs = ddp({"x": _batch()[rank * n : (rank + 1) * n]}, 3)
            logs["loss"].backward()
            loss = logs["loss"].detach().reshape(1).clone()
            tdist.all_reduce(loss)
            save_file(_grads(model) | {"loss": loss / world}, f"{out_dir}/{method}-{rank}.st")
        tdist.barrier()  # both done before either closes its connections
    finally:
        tdist.destroy_process_group()


def test_two_processes_give_the_gradients_of_one(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    for method in NEW:
        model = _model(method)
        logs = model({"x": _batch()}, 3)
        logs["loss"].backward()
        single = _grads(model)
        for rank in range(2):
            got = load_file(str(tmp_path / f"{method}-{rank}.st"))
            torch.testing.assert_close(got.pop("loss")[0], logs["loss"].detach(), rtol=1e-5,
                                       atol=1e-6)  # fmt: skip
            assert got.keys() == single.keys(), method
            for k in single:
                # float32 sums in another order: within 2e-4 of the layer's largest gradient
                # (and 1e-6 where it is 0 in exact arithmetic: biases before a standardisation)
                atol = 2e-4 * float(single[k].abs().max()) + 1e-6
                where = f"{method} {k}"
                torch.testing.assert_close(got[k], single[k], rtol=1e-4, atol=atol,
                                           msg=lambda m, w=where: f"{w}: {m}")  # fmt: skip
