"""Random views of a batch of images, on the model's device, reproducible from (seed, step).

The augmentations of SimCLR (Chen et al. 2020, appendix A), batched: random resized crop,
horizontal flip, colour jitter (brightness, contrast, saturation, hue), random grayscale and
Gaussian blur. Each image gets its own parameters; they are drawn on the CPU from an explicit
``torch.Generator`` (a few numbers per image) and the pixels are transformed where the batch
lives, in a handful of batched kernels: crop and flip are one ``grid_sample`` (continuous crop
boxes, bilinear, resized to the output size), blur one depthwise separable convolution with a
kernel per image. Seed the generator with ``step_generator(seed, step)`` and the views of step s
are a pure function of (seed, step), so a resumed run sees the very same views.

Under ``torchrun`` pass ``shard=(rank, world_size)``: the parameters are drawn for the global
batch and each process keeps the rows of its own slice, so W processes see exactly the views one
process sees with the whole batch.

Adapted to 1-channel and small inputs: the colour operations (saturation, hue, grayscale) are
skipped for inputs without 3 channels (brightness and contrast remain), crops are continuous boxes
(no rounding to whole pixels, which at 8x8 would leave a handful of possible crops), and the blur
kernel is 10% of the image side as in the paper, at least 3 pixels.

Departures from torchvision's ``ColorJitter``, for speed: the four jitter operations run in a fixed
order (torchvision shuffles it per call), the hue is rotated about the grey axis in YIQ space (as
NVIDIA DALI does) rather than shifted in HSV, and with grayscale they compose into one 3x3 matrix
per image, clamped to [0, 1] once at the end rather than after each operation: an exact HSV round
trip made the hue alone most of the cost of a view.

Why hand-written rather than kornia: batched as here, the views cost a fraction of what kornia's
``AugmentationSequential`` takes on a CPU (``bench_simclr --compare-kornia`` times both where
kornia is installed; the benchmark document quotes it). Kornia also draws from the global torch
RNG (no generator argument), so per-step reproducibility would need ``fork_rng`` around every
call, and its per-operation parameter dicts make the global-batch sharding above awkward. So
kornia is not a dependency.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# ITU-R 601 luma, torchvision's and kornia's rgb_to_grayscale
GRAY_WEIGHTS = (0.299, 0.587, 0.114)

# Columns of the parameter table, one row per image.
SW, SH, TX, TY, FLIP, BRIGHT, CONTRAST, SAT, HUE, GRAY, SIGMA = range(11)
N_PARAMS = 11


def step_generator(seed: int, step: int, *salt: int) -> torch.Generator:
    """A CPU generator whose stream is a pure function of (seed, step, *salt).

    The integers are mixed by NumPy's SeedSequence, so nearby steps give unrelated streams."""
    if seed < 0 or step < 0 or any(s < 0 for s in salt):
        raise ValueError(f"seed, step and salt must be >= 0, got {(seed, step, *salt)}")
    state = np.random.SeedSequence([seed, step, *salt]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, *shape: int) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, *shape, generator=g, dtype=torch.float64)


def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] -> [B, 1, H, W] luma."""
    w = torch.tensor(GRAY_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


# RGB -> YIQ (NTSC). Its first row is the luma above, so a rotation about the I-Q plane's origin
# (a hue rotation) keeps the luma and the grey axis fixed.
RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64
)
YIQ_TO_RGB = torch.linalg.inv(RGB_TO_YIQ)


def colour_maps(p: torch.Tensor, channels: int) -> torch.Tensor:
    """The per-image linear colour map [B, C, C] of brightness b, contrast c, saturation s, hue
    shift t (turns) and grayscale g from a parameter table, for C = 3 or 1 (then only b, c).

    For C = 3 it is ``G H S c b``: S = s I + (1 - s) 1 w^T (blend with the luma w^T x), H =
    YIQ^-1 R(2 pi t) YIQ (a rotation of the chroma plane, as NVIDIA DALI's hue), G = 1 w^T where
    the image turns grey, else I. All of them fix the grey axis 1, so the contrast's blend towards
    the mean luma m adds ``(1 - c) b m`` to every channel (see ``Views.apply``)."""
    b = p[:, BRIGHT] * p[:, CONTRAST]
    eye = torch.eye(channels, dtype=p.dtype, device=p.device).expand(len(p), channels, channels)
    if channels != 3:
        return b.view(-1, 1, 1) * eye
    w = torch.tensor(GRAY_WEIGHTS, dtype=p.dtype, device=p.device)
    to_gray = torch.ones(3, 1, dtype=p.dtype, device=p.device) * w  # 1 w^T
    s = p[:, SAT].view(-1, 1, 1)
    m = s * eye + (1 - s) * to_gray
    angle = 2 * math.pi * p[:, HUE]
    cos, sin = angle.cos(), angle.sin()
    rot = torch.zeros(len(p), 3, 3, dtype=p.dtype, device=p.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    m = YIQ_TO_RGB.to(p.device, p.dtype) @ rot @ RGB_TO_YIQ.to(p.device, p.dtype) @ m
    gray = p[:, GRAY].view(-1, 1, 1) > 0
    m = torch.where(gray, to_gray @ m, m)
    return b.view(-1, 1, 1) * m


def gaussian_kernels(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """[B] standard deviations (pixels) -> [B, size] normalised 1-D kernels; sigma <= 0 gives the
    identity (a delta)."""
    r = torch.arange(size, dtype=sigma.dtype, device=sigma.device) - (size - 1) / 2
    s = sigma.clamp_min(1e-6).unsqueeze(1)
    k = torch.exp(-0.5 * (r / s) ** 2)
    k = k / k.sum(1, keepdim=True)
    delta = (r == 0).to(sigma.dtype).expand_as(k)
    return torch.where((sigma > 0).unsqueeze(1), k, delta)


class Views:
    """Batched random augmentations (no state: not a module). Probabilities in [0, 1]; jitter
    strengths as torchvision's ``ColorJitter`` (factors uniform in [max(0, 1 - b), 1 + b], hue
    shift uniform in [-h, h] turns, applied in that fixed order to a share ``jitter_p``)."""

    def __init__(
        self,
        *,
        crop_scale: tuple[float, float] = (0.08, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip_p: float = 0.5,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        hue: float = 0.1,
        jitter_p: float = 0.8,
        gray_p: float = 0.2,
        blur_p: float = 0.0,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        out_size: tuple[int, int] | None = None,
    ):
        probabilities = {"flip_p": flip_p, "jitter_p": jitter_p, "gray_p": gray_p, "blur_p": blur_p}
        for name, p in probabilities.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"views: {name} must be in [0, 1], got {p}")
        if not 0.0 < crop_scale[0] <= crop_scale[1] <= 1.0:
            raise ValueError(f"views: crop_scale must satisfy 0 < lo <= hi <= 1, got {crop_scale}")
        if not 0.0 < crop_ratio[0] <= crop_ratio[1]:
            raise ValueError(f"views: crop_ratio must satisfy 0 < lo <= hi, got {crop_ratio}")
        if min(brightness, contrast, saturation) < 0 or not 0 <= hue <= 0.5:
            raise ValueError("views: jitter strengths must be >= 0 and hue in [0, 0.5]")
        if not 0.0 < blur_sigma[0] <= blur_sigma[1]:
            raise ValueError(f"views: blur_sigma must satisfy 0 < lo <= hi, got {blur_sigma}")
        self.crop_scale, self.crop_ratio, self.flip_p = crop_scale, crop_ratio, flip_p
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation
        self.hue, self.jitter_p, self.gray_p = hue, jitter_p, gray_p
        self.blur_p, self.blur_sigma = blur_p, blur_sigma
        self.out_size = out_size

    @classmethod
    def simclr(cls, strength: float = 0.5, blur_p: float = 0.0, crop_min: float = 0.08, **kw):
        """SimCLR's recipe: jitter 0.8s/0.8s/0.8s/0.2s at p 0.8, grayscale 0.2; the paper uses
        s = 1 and blur 0.5 on ImageNet, s = 0.5 and no blur on CIFAR-10 (appendix B.9)."""
        b = 0.8 * strength
        return cls(
            crop_scale=(crop_min, 1.0),
            brightness=b,
            contrast=b,
            saturation=b,
            hue=min(0.5, 0.2 * strength),
            blur_p=blur_p,
            **kw,
        )

    def sample(self, n: int, generator: torch.Generator, size: tuple[int, int]) -> torch.Tensor:
        """Parameters of ``n`` views of images of ``size`` (H, W): a float64 CPU table [n, 11].

        The generator is always consumed the same way, whatever the probabilities, so that the
        table is a pure function of the generator's state and ``n``."""
        g = generator
        h, w = size
        p = torch.zeros(n, N_PARAMS, dtype=torch.float64)
        # Random resized crop (torchvision's 10 attempts, first valid one, else the whole image),
        # as fractions of the image side: width = sqrt(area * ratio * H / W).
        area = _uniform(n, *self.crop_scale, g, 10)
        log_ratio = _uniform(n, math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1]), g, 10)
        ratio = log_ratio.exp()
        cw = (area * ratio * h / w).sqrt()
        ch = (area / ratio * w / h).sqrt()
        ok = (cw <= 1.0) & (ch <= 1.0)
        first = ok.to(torch.int8).argmax(1, keepdim=True)
        any_ok = ok.any(1)
        cw = torch.where(any_ok, cw.gather(1, first)[:, 0], torch.ones(n, dtype=torch.float64))
        ch = torch.where(any_ok, ch.gather(1, first)[:, 0], torch.ones(n, dtype=torch.float64))
        pos = torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1
        p[:, SW], p[:, SH] = cw, ch
        p[:, TX], p[:, TY] = pos[:, 0] * (1 - cw), pos[:, 1] * (1 - ch)
        coins = torch.rand(n, 4, generator=g, dtype=torch.float64)
        p[:, FLIP] = (coins[:, 0] < self.flip_p).double()
        jitter = coins[:, 1] < self.jitter_p
        factors = torch.rand(n, 4, generator=g, dtype=torch.float64)
        for col, strength, f in (
            (BRIGHT, self.brightness, factors[:, 0]),
            (CONTRAST, self.contrast, factors[:, 1]),
            (SAT, self.saturation, factors[:, 2]),
        ):
            lo = max(0.0, 1.0 - strength)
            p[:, col] = torch.where(jitter, lo + (1.0 + strength - lo) * f, 1.0)
        p[:, HUE] = torch.where(jitter, (2 * factors[:, 3] - 1) * self.hue, 0.0)
        p[:, GRAY] = (coins[:, 2] < self.gray_p).double()
        sigma = _uniform(n, *self.blur_sigma, g)
        p[:, SIGMA] = torch.where(coins[:, 3] < self.blur_p, sigma, 0.0)
        return p

    def apply(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Transform images [B, C, H, W] in [0, 1] by a parameter table [B, 11] (any device)."""
        if x.ndim != 4:
            raise ValueError(f"views need images [B, C, H, W], got shape {tuple(x.shape)}")
        if len(params) != len(x):
            raise ValueError(f"views: {len(params)} parameter rows for {len(x)} images")
        with torch.autocast(x.device.type, enabled=False):  # views in full precision
            return self._transform(x, params)

    def _transform(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        oh, ow = self.out_size or (h, w)
        dtype = x.dtype if x.is_floating_point() else torch.float32
        x = x.to(dtype)
        p = params.to(dtype).to(x.device, non_blocking=True)
        col = lambda k: p[:, k].view(b, 1, 1)  # noqa: E731

        # Crop box and flip: output pixel centres u in (-1, 1) read the input at sw u + tx
        # (normalised coordinates, align_corners=False), at -sw u + tx when flipped.
        u = (torch.arange(ow, dtype=dtype, device=x.device) * 2 + 1) / ow - 1
        v = (torch.arange(oh, dtype=dtype, device=x.device) * 2 + 1) / oh - 1
        gx = col(SW) * (1 - 2 * col(FLIP)) * u.view(1, 1, ow) + col(TX)
        gy = col(SH) * v.view(1, oh, 1) + col(TY)
        grid = torch.stack([gx.expand(b, oh, ow), gy.expand(b, oh, ow)], dim=-1)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

        # Colour: brightness, contrast, saturation, hue and grayscale compose into one affine map
        # per image, x -> A x + (1 - c) b m 1 with m the mean luma of the crop, clamped once at
        # the end (torchvision clamps after each step; the difference only touches pixels pushed
        # past 0 or 1 midway).
        luma = rgb_to_gray(x) if c == 3 else x.mean(1, keepdim=True)
        offset = (1 - col(CONTRAST)) * col(BRIGHT) * luma.mean(dim=(1, 2, 3)).view(b, 1, 1)
        a = colour_maps(p, 3 if c == 3 else 1)
        if c == 3:
            x = torch.baddbmm(offset, a, x.reshape(b, 3, oh * ow)).view(b, c, oh, ow)
        else:
            x = x * a.view(b, 1, 1, 1) + offset.unsqueeze(-1)
        if self.blur_p > 0:
            x = self._blur(x, p[:, SIGMA])
        return x.clamp(0, 1)

    def _blur(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        size = max(3, int(0.1 * min(h, w)) // 2 * 2 + 1)
        k = gaussian_kernels(sigma, size).repeat_interleave(c, 0)  # [B*C, size]
        pad = size // 2
        y = x.reshape(1, b * c, h, w)
        y = F.conv2d(
            F.pad(y, (pad, pad, 0, 0), mode="reflect"), k.view(b * c, 1, 1, size), groups=b * c
        )
        y = F.conv2d(
            F.pad(y, (0, 0, pad, pad), mode="reflect"), k.view(b * c, 1, size, 1), groups=b * c
        )
        return y.view(b, c, h, w)

    def __call__(
        self,
        x: torch.Tensor,
        generator: torch.Generator,
        shard: tuple[int, int] = (0, 1),
    ) -> torch.Tensor:
        """One view of each image. ``shard=(rank, world)``: ``x`` is slice ``rank`` of a global
        batch of ``world * len(x)`` images, and the views are that slice of the global batch's."""
        rank, world = shard
        n = len(x)
        size = (x.shape[-2], x.shape[-1])
        params = self.sample(n * world, generator, size)[rank * n : (rank + 1) * n]
        return self.apply(x, params)

    def pair(
        self,
        x: torch.Tensor,
        generator: torch.Generator,
        shard: tuple[int, int] = (0, 1),
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independent views of each image (one batched pass over both)."""
        rank, world = shard
        n = len(x)
        size = (x.shape[-2], x.shape[-1])
        rows = slice(rank * n, (rank + 1) * n)
        first = self.sample(n * world, generator, size)[rows]
        second = self.sample(n * world, generator, size)[rows]
        both = self.apply(torch.cat([x, x]), torch.cat([first, second]))
        return both[:n], both[n:]
