"""Figures of what a generative model has learned: latent traversals, reconstructions, samples.

Only for models that declare a decoder (``methods.capabilities``), never by method name:

* ``Decoder``: ``decode(z)`` to images in [0, 1], ``latents(x)`` (the code ``decode`` takes),
  ``reconstruct(x)`` and ``latent_range(x)`` (per-latent traversal bounds for latents without a
  unit prior, e.g. codebook coordinates; None: ``-3..3`` for every latent);
* ``LatentKL`` (optional): mean KL per latent, which orders the traversal rows; without it the
  rows are ordered by the variance of the latents over the examples;
* ``Sampler`` (optional): ``sample(n)``; without it there is no sample figure.

The PNGs are drawn with PIL so their pixel sizes are exact: each image is enlarged by an integer
factor (nearest neighbour) until it is at least ``MIN_CELL`` pixels tall, then laid out by
:func:`image_grid` with ``PADDING`` white pixels between and around the images.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from replab.files import atomic_write_bytes
from replab.methods.capabilities import Decoder, LatentKL, Sampler

__all__ = ["cell_scale", "image_grid", "model_figures", "save_model_figures", "traversal_order"]

PADDING = 2  # pixels between and around the images of a grid
MIN_CELL = 32  # images are enlarged (integer factor) to at least this height, for the labels
LABEL_WIDTH = 120  # the traversal figure's left column: "z3  KL 1.234"
HEADER_HEIGHT = 16  # the traversal figure's top row: the values set
STATS_EXAMPLES = 256  # examples used for the KL / variance that order the traversal rows
MAX_TRAVERSAL_ROWS = 64  # at most this many latents (the top ones) get a traversal row
TRAVERSAL_RANGE = 3.0  # values linspace(-3, 3, n)


def image_grid(
    images: torch.Tensor, nrow: int, *, padding: int = PADDING, pad_value: float = 1.0
) -> np.ndarray:
    """Lay out images [n, C, H, W] (C in {1, 3}, values in [0, 1]) as one uint8 array [h, w, 3].

    ``nrow`` is the number of images per row (as in torchvision's ``make_grid``): image ``i`` sits
    in grid row ``i // nrow``, column ``i % nrow``, its top-left pixel at
    ``(padding + row * (H + padding), padding + col * (W + padding))``. Cells past ``n`` in the last
    row, and the padding, are ``pad_value``. Values are clamped to [0, 1] and rounded to 0..255.
    """
    images = torch.as_tensor(images).detach().to("cpu", torch.float32)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"image_grid wants images [n, C, H, W] with C in (1, 3), got {tuple(images.shape)}"
        )
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    n, c, h, w = images.shape
    if c == 1:
        images = images.expand(n, 3, h, w)
    cols = min(nrow, max(n, 1))
    rows = max(1, math.ceil(n / nrow))
    grid = torch.full(
        (3, padding + rows * (h + padding), padding + cols * (w + padding)), float(pad_value)
    )
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = images[i]
    grid = torch.nan_to_num(grid, nan=0.0).clamp(0.0, 1.0)
    return (grid * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy().copy()


def cell_scale(height: int) -> int:
    """The integer enlargement applied to images ``height`` pixels tall in the figures."""
    return max(1, math.ceil(MIN_CELL / max(int(height), 1)))


def _enlarge(images: torch.Tensor, scale: int) -> torch.Tensor:
    if scale == 1:
        return images
    return images.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)


def _device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def _pick(data, k: int, seed: int) -> torch.Tensor:
    """``k`` distinct examples (fewer if the data set is smaller) drawn at random by ``seed``."""
    total = len(data)
    if total == 0:
        raise ValueError("save_model_figures: the data set is empty")
    k = min(k, total)
    idx = np.random.default_rng(seed).choice(total, size=k, replace=False)
    x = data.get_batch(idx)["x"]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(
            f"save_model_figures wants images [n, C, H, W] with C in (1, 3), got {tuple(x.shape)}"
        )
    return x.float()


def traversal_order(model, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray, str]:
    """Latents ordered for the traversal rows: ``(order, score, kind)``, highest score first.

    ``kind`` is ``"KL"`` when the model is a ``LatentKL`` (mean KL per latent), else ``"var"``
    (the variance of ``encode(x)`` over the examples). ``score[j]`` is latent ``j``'s value.
    """
    with torch.no_grad():
        if isinstance(model, LatentKL):
            score = torch.as_tensor(model.latent_kl(x)).detach().float().cpu().reshape(-1)
            kind = "KL"
        else:
            z = model.latents(x).detach().float().cpu()
            score = z.var(dim=0, unbiased=False) if len(z) > 1 else torch.zeros(z.shape[1])
            kind = "var"
    score_np = torch.nan_to_num(score, nan=-math.inf).numpy()
    order = np.argsort(-score_np, kind="stable")
    return order, score.numpy(), kind


def _font(size: int = 11):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the bitmap font
        return ImageFont.load_default()


def _traversal_image(
    model, x0: torch.Tensor, order, score, kind: str, n: int, scale: int, bounds=None
) -> Image.Image:
    """``bounds``: per-latent ``(lo, hi)`` from ``model.latent_range``, or None for -3..3; with
    bounds the header reads min..max and each row's label gives its range."""
    z0 = model.latents(x0[None])[0]
    values = torch.linspace(-TRAVERSAL_RANGE, TRAVERSAL_RANGE, n, device=z0.device, dtype=z0.dtype)
    steps = torch.linspace(0.0, 1.0, n, device=z0.device, dtype=z0.dtype)
    rows = []
    for j in order:
        z = z0.repeat(n, 1)
        if bounds is None:
            z[:, int(j)] = values
        else:
            lo, hi = float(bounds[0][int(j)]), float(bounds[1][int(j)])
            z[:, int(j)] = lo + (hi - lo) * steps
        rows.append(model.decode(z).float().cpu())
    grid = image_grid(_enlarge(torch.cat(rows), scale), nrow=n)
    h, w, _ = grid.shape
    canvas = Image.new("RGB", (LABEL_WIDTH + w, HEADER_HEIGHT + h), "white")
    canvas.paste(Image.fromarray(grid), (LABEL_WIDTH, HEADER_HEIGHT))
    draw, font = ImageDraw.Draw(canvas), _font()
    cell_h = x0.shape[1] * scale + PADDING
    cell_w = x0.shape[2] * scale + PADDING
    for c, v in enumerate(values.tolist()):
        text = f"{v:+.1f}" if bounds is None else ("min" if c == 0 else "max" if c == n - 1 else "")
        tw = draw.textlength(text, font=font)
        draw.text(
            (LABEL_WIDTH + PADDING + c * cell_w + (cell_w - PADDING - tw) / 2, 2),
            text,
            fill="black",
            font=font,
        )
    for r, j in enumerate(order):
        s = float(score[int(j)])
        text = f"z{int(j)}  {kind} {s:.3f}" if math.isfinite(s) else f"z{int(j)}  {kind} n/a"
        if bounds is not None:
            lo, hi = float(bounds[0][int(j)]), float(bounds[1][int(j)])
            text += f"\n[{lo:+.2f}, {hi:+.2f}]"
        top = HEADER_HEIGHT + PADDING + r * cell_h + (cell_h - PADDING) / 2 - 6
        if bounds is not None:
            top -= 6
        draw.text((4, top), text, fill="black", font=font)
    return canvas


def model_figures(model: Decoder, data, *, n: int = 8, seed: int = 0) -> dict[str, Image.Image]:
    """traversals, reconstructions and (for a ``Sampler``) samples of a model with a decoder.

    * traversals: one row per latent (the top ``MAX_TRAVERSAL_ROWS``), ordered by
      ``latent_kl`` (else by variance of the latents), highest first, labelled with the latent
      index and that value; columns set that latent of a base example's code to
      ``linspace(-3, 3, n)`` (or ``linspace(lo, hi, n)`` from ``latent_range``), the other
      coordinates left as they are.
    * reconstructions: ``n`` inputs (top row) above their reconstructions (bottom row).
    * samples: ``n * n`` draws of ``model.sample``.

    Examples are ``n`` data points chosen by ``seed`` (the first is the traversals' base);
    sampling runs under ``torch.manual_seed(seed)`` in a forked RNG, leaving the global one alone.
    The model runs under ``torch.no_grad()`` in eval mode on its own device, and its training
    flag is restored afterwards.
    """
    if not isinstance(model, Decoder):
        raise TypeError(
            f"model figures need a model with a decoder; {type(model).__name__} declares none, "
            "so it has no traversals, reconstructions or samples"
        )
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    device = _device(model)
    x = _pick(data, max(n, STATS_EXAMPLES), seed).to(device)
    shown = x[:n]  # the examples shown; the rest only enter the KL / variance
    scale = cell_scale(x.shape[2])
    images: dict[str, Image.Image] = {}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            order, score, kind = traversal_order(model, x)
            bounds = model.latent_range(x)
            if bounds is not None:
                bounds = [torch.as_tensor(b).detach().float().cpu() for b in bounds]
            images["traversals"] = _traversal_image(
                model, shown[0], order[:MAX_TRAVERSAL_ROWS], score, kind, n, scale, bounds
            )
            recon = model.reconstruct(shown)
            pair = torch.cat([shown.float().cpu(), recon.float().cpu()])
            images["reconstructions"] = Image.fromarray(image_grid(_enlarge(pair, scale), nrow=n))
            if isinstance(model, Sampler):
                devices = [device] if device.type == "cuda" else []
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed(seed)
                    samples = model.sample(n * n).float().cpu()
                images["samples"] = Image.fromarray(image_grid(_enlarge(samples, scale), nrow=n))
    finally:
        model.train(was_training)
    return images


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def save_model_figures(
    model: Decoder,
    data,
    out_dir: str | Path,
    *,
    n: int = 8,
    seed: int = 0,
    relative_to: str | Path | None = None,
) -> dict[str, str]:
    """:func:`model_figures` written as ``out_dir/NAME.png`` (atomically); returns
    ``{"traversals": path, ...}`` with paths relative to ``relative_to`` (default: the parent of
    ``out_dir``), so ``out_dir = run_dir / "figures"`` gives ``"figures/traversals.png"``."""
    out_dir = Path(out_dir)
    base = Path(relative_to) if relative_to is not None else out_dir.parent
    written: dict[str, str] = {}
    for name, image in model_figures(model, data, n=n, seed=seed).items():
        path = out_dir / f"{name}.png"
        atomic_write_bytes(path, png_bytes(image))
        try:
            written[name] = path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:  # out_dir is not under relative_to: give the path as is
            written[name] = path.as_posix()
    return written
