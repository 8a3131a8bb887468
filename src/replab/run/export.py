"""A run's encoder taken away: a file that PyTorch (or onnxruntime) loads without replab.

``export_encoder(run, out, "torchscript")`` traces ``encode`` into ``out/encoder.pt``
(``torch.jit.load``); ``"onnx"`` writes ``out/encoder.onnx`` with a dynamic batch axis (the
``export`` extra: onnx, onnxruntime). Either way ``out/README.md`` says what goes in and what
comes out, and the export is checked before it is kept: the exported encoder, run on a batch of
another size than the one it was traced with, must give ``encode``'s codes within 1e-5. Where an
encoder's code sizes tensors by the batch (patch grids, DRAW's recurrent state), a trace freezes
that size; the check catches it, and the export falls back to a scripted loop over single
examples (TorchScript) or a graph for batches of one (ONNX), said in the README.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from replab.config import ConfigError
from replab.data.base import DataInfo
from replab.run.directory import Run

FORMATS = ("torchscript", "onnx")
FILE_NAMES = {"torchscript": "encoder.pt", "onnx": "encoder.onnx"}
TOLERANCE = 1e-5


class ExportError(RuntimeError):
    """The exported encoder does not reproduce ``encode`` (or cannot be made)."""


class _EncodeOnly(nn.Module):
    """The model's ``encode`` as a module's forward: what gets traced."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x)


def example_inputs(info: DataInfo, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` valid inputs for a model built for ``info``: token ids in 1..vocab-1, else floats
    in [0, 1] (images) or [-1, 1] (audio)."""
    g = torch.Generator().manual_seed(seed)
    if info.kind == "tokens":
        return torch.randint(1, info.vocab_size, (n, *info.shape), generator=g)
    x = torch.rand((n, *info.shape), generator=g)
    return 2 * x - 1 if info.kind == "audio" else x


def _input_text(info: DataInfo) -> str:
    shape = ", ".join(str(s) for s in info.shape)
    if info.kind == "tokens":
        return (
            f"int64 token ids, shape [batch, {shape}], in 0..{info.vocab_size - 1} (0 is "
            "padding; the run directory's tokenizer.json maps words to ids)"
        )
    if info.kind == "audio":
        return f"float32 waveforms, shape [batch, {shape}], samples in [-1, 1]"
    return f"float32 images, shape [batch, {shape}] (channels first), values in [0, 1]"


class _PerExample(nn.Module):
    """A traced one-example encoder applied to each example in turn (scripted, so the loop
    runs at any batch size): for encoders whose code sizes tensors by the batch, which a trace
    would freeze."""

    def __init__(self, traced_one: torch.jit.ScriptModule):
        super().__init__()
        self.inner = traced_one

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.inner(x[i : i + 1]) for i in range(x.size(0))])


def _readme(run: Run, fmt: str, dim: int, batch_note: str) -> str:
    info = run.model.info
    name = FILE_NAMES[fmt]
    if fmt == "torchscript":
        usage = (
            f'import torch\nencoder = torch.jit.load("{name}")\ncodes = encoder(x)  # x as below'
        )
    else:
        usage = (
            "import onnxruntime\n"
            f'session = onnxruntime.InferenceSession("{name}")\n'
            'codes = session.run(None, {"x": x})[0]  # x: a numpy array as below'
        )
    return (
        f"# The encoder of a `{run.config.method}` run\n\n"
        f"Exported by replab from `{run.dir}` (trained on `{run.config.data}`); runs without "
        "replab.\n\n"
        f"```python\n{usage}\n```\n\n"
        f"- input `x`: {_input_text(info)}; {batch_note}\n"
        f"- output: float32 codes, shape [batch, {dim}]: the representation replab's evaluation "
        "probes (`encode`)\n"
        f"- checked at export: within {TOLERANCE:g} of replab's `encode` on a batch of another "
        "size than the traced one\n"
    )


def _checked(run_exported, model: nn.Module, x: torch.Tensor, one_at_a_time: bool) -> None:
    """Raise ExportError unless the exported encoder gives ``encode``'s codes on ``x``; when it
    works ``one_at_a_time``, against ``encode`` of one example at a time (a batched matmul
    rounds otherwise, and VQ-VAE's nearest code can flip on a near-tie)."""

    def each(fn):
        return torch.cat([fn(x[i : i + 1]) for i in range(len(x))])

    with torch.no_grad():
        expected = each(model.encode) if one_at_a_time else model.encode(x)
        try:
            got = each(run_exported) if one_at_a_time else run_exported(x)
        except Exception as e:  # noqa: BLE001 - any failure of the export is "does not trace"
            raise ExportError(f"the exported encoder fails on a batch of {len(x)}: {e}") from None
    if got.shape != expected.shape:
        raise ExportError(
            f"the exported encoder gives shape {tuple(got.shape)} for a batch of {len(x)}, "
            f"encode {tuple(expected.shape)}"
        )
    gap = float((got - expected).abs().max())
    if not np.isfinite(gap) or gap > TOLERANCE:
        raise ExportError(f"the exported encoder differs from encode by {gap:.3g}")


def _torchscript(module: nn.Module, model: nn.Module, x: torch.Tensor, path: Path) -> str:
    """Trace at batch 2 and keep it if it holds at batch 5; else the per-example loop."""
    with torch.no_grad():
        traced = torch.jit.trace(module, x[:2], check_trace=False)
    try:
        _checked(traced, model, x, one_at_a_time=False)
        note = "any batch size"
    except ExportError:
        with torch.no_grad():
            traced = torch.jit.script(_PerExample(torch.jit.trace(module, x[:1])))
        note = "any batch size, encoded one example at a time (its code sizes by the batch)"
    traced.save(str(path))
    _checked(torch.jit.load(str(path)), model, x, one_at_a_time=note != "any batch size")
    return note


def _onnx(module: nn.Module, model: nn.Module, x: torch.Tensor, path: Path) -> str:
    """A dynamic batch axis where the graph allows it, else a graph for batches of one."""
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(
            "--format onnx needs onnx and onnxruntime: pip install 'replab[export]'"
        ) from None

    def write(example: torch.Tensor, dynamic: bool):
        axes = {"x": {0: "batch"}, "codes": {0: "batch"}} if dynamic else None
        with torch.no_grad():
            torch.onnx.export(
                module, (example,), str(path), input_names=["x"], output_names=["codes"],
                dynamic_axes=axes, dynamo=False,
            )  # fmt: skip
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda t: torch.from_numpy(session.run(None, {"x": t.numpy()})[0])

    try:
        _checked(write(x[:2], dynamic=True), model, x, one_at_a_time=False)
        return "any batch size"
    except ExportError:
        _checked(write(x[:1], dynamic=False), model, x, one_at_a_time=True)
        return "batches of exactly 1 (this encoder's graph sizes by the batch)"


def export_encoder(run: Run, out: Path, fmt: str = "torchscript") -> Path:
    """Write ``run``'s encoder to ``out`` (a new folder) as ``fmt``, with a README; return the
    encoder file. Refuses a model without an encoder, an unknown format, an existing ``out``."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not run.has_encoder:
        raise ConfigError(f"{run.config.method} has no encoder to export")
    out = Path(out)
    if out.exists():
        raise ConfigError(f"--out: {out} exists; choose a new folder")
    model = run.model.to("cpu").eval()
    module = _EncodeOnly(model).eval()
    x = example_inputs(model.info, 5)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        path = tmp / FILE_NAMES[fmt]
        with warnings.catch_warnings():
            # the tracer warns of every Python int it freezes; the check below decides instead
            warnings.simplefilter("ignore")
            note = (_torchscript if fmt == "torchscript" else _onnx)(module, model, x, path)
        with torch.no_grad():
            dim = model.encode(x[:1]).shape[1]
        (tmp / "README.md").write_text(_readme(run, fmt, dim, note))
        tmp.rename(out)  # the folder appears whole or not at all
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / FILE_NAMES[fmt]
