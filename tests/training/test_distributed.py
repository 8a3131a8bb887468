"""Two CPU processes (gloo) give the weights of one process with the same global batch, and a
method trained in stages (darla) crosses its stages under DDP."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import torch

from replab.run.checkpoints import load_tensors

WORKER = Path(__file__).with_name("ddp_worker.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
    port = free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(r), "2", str(port), str(tmp_path / "ddp")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for r in range(2)
    ]
    try:
        for p in procs:
            out, _ = p.communicate(timeout=180)
            assert p.returncode == 0, out.decode()[-2000:]
    finally:  # never leave a worker behind (a hang would hold the port and a core)
        for p in procs:
            p.kill()
    single = subprocess.run(
        [sys.executable, str(WORKER), "0", "1", str(free_port()), str(tmp_path / "one")],
        capture_output=True,
        timeout=120,
    )
    assert single.returncode == 0, single.stderr.decode()[-2000:]
    a = load_tensors(tmp_path / "ddp" / "model.safetensors")
    b = load_tensors(tmp_path / "one" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    # and training moved the weights away from the shared initialisation
    torch.manual_seed(0)
    init = torch.nn.Linear(64, 16).weight
    assert (a["enc.weight"] - init).abs().max() > 1e-3


def test_a_method_in_stages_trains_across_them_under_ddp(tmp_path):
    """darla's DAE steps leave its VAE without gradients and its VAE steps the DAE: DDP must
    be told (``Method.idle_parameters``) or the second step fails."""
    spec = {"method": "darla", "data": "seek_avoid",
            "overrides": {"train.steps": 4, "train.batch_size": 8, "dae_steps": 2,
                          "train.log_every": 1}}  # fmt: skip
    port = free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                str(r),
                "2",
                str(port),
                str(tmp_path / "ddp"),
                json.dumps(spec),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        for r in range(2)
    ]
    try:
        for p in procs:
            out, _ = p.communicate(timeout=180)
            assert p.returncode == 0, out.decode()[-2000:]
    finally:
        for p in procs:
            p.kill()
    logged = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").open()]
    assert "dae" in logged[0] and "feature_recon" in logged[-1]  # both stages ran
