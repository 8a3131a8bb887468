"""Procedural dSprites: ``sprites``, ``color_sprites``, ``noisy_sprites`` and
``inverted_sprites`` (no download).

The factor grid is dSprites' (Matthey et al. 2017), in disentanglement_lib's order:

=============  ======  =============================================================
factor          size    values
=============  ======  =============================================================
shape           3       square, ellipse, heart
scale           6       linspace(0.5, 1, 6)
orientation     40      linspace(0, 2 pi, 40) radians, counter-clockwise on screen
pos_x           32      linspace(0, 1, 32), left to right
pos_y           32      linspace(0, 1, 32), top to bottom (image row order)
=============  ======  =============================================================

737,280 images in all. Each image is rendered exactly from its factor indices: a pixel is lit iff
its centre, mapped back through the inverse translation, rotation and scale, passes the shape's
implicit inside-test. In coordinates normalised so that every shape's enclosing circle is the unit
circle (``v`` pointing up on screen):

* square: ``max(|u|, |v|) <= 1/sqrt(2)``;
* ellipse: ``u**2 + (v / 0.5)**2 <= 1`` (aspect 2:1, long axis horizontal at orientation 0);
* heart: ``(x**2 + y**2 - 1)**3 <= x**2 * y**3`` with ``x = 1.25 u``, ``y = 1.25 v + 0.25`` (the
  classic heart curve, point down at orientation 0, centred on its smallest enclosing circle).

The unit circle is ``SPRITE_RADIUS`` = 15.5 pixels times the scale, so at scale 1 the square is
22 pixels wide, the ellipse 31 x 15.5 and the heart 28 x 28 (a third to a half of the canvas, like
dSprites). In pixel coordinates (x right, y down, pixel ``i`` covering ``[i, i + 1]``) the
sprite's centre is at ``x = 16.875 + 31 * pos_x``, ``y = 16.625 + 31 * pos_y``: one pixel per
position step, so a position step is an exact one-pixel translation, and every sprite at every
scale and rotation stays inside the canvas with an empty border of at least one pixel.

The centre sits 3/8 and 1/8 pixel off the pixel centres on purpose. Centred on a pixel (or on a
pixel corner) the pixel grid shares the square's 90-degree symmetry, pixels flip in groups of four
as the square turns, and about 45 pairs of the square's orientations (2 to 9 degrees apart modulo
90 degrees) render to the very same pixels. Off-centre, every orientation step changes at least 3
pixels of every shape at every scale (``tests/data/test_sprites.py`` checks this exhaustively).

Geometric symmetries: the square is invariant under rotations by 90 degrees, the ellipse by 180
degrees, the heart only by 360 degrees. On the 40-step grid (steps of 360/39 degrees) 90 and 180
degrees are not whole numbers of steps, so the only orientation indices giving identical images are
0 and 39 (0 and 2 pi, a duplicate dSprites has too). Every other change of a single factor changes
the image. Orientations 9 to 10 steps apart (square) or 19 to 20 steps apart (ellipse) are within
a few degrees of a symmetry and differ in only a few pixels, as in dSprites.

Because positions are whole-pixel translations, the 3 x 6 x 40 sprites are evaluated once, on a
32 x 32 patch around the centre, and pasted at their positions: bit-for-bit the images that
evaluating the inside-test on the full canvas gives (``_render_full``, kept as the reference),
at a fraction of the cost.

``color_sprites`` and ``noisy_sprites`` follow disentanglement_lib's ``ColorDSprites`` (the
sprite on 3 channels times a colour with each channel uniform in [0.5, 1]) and ``NoisyDSprites``
(``min(sprite + noise, 1)``, noise uniform in [0, 1] per pixel and channel). Their randomness is
drawn from ``rng`` when ``observations(factors, rng)`` is given one; otherwise (and always in
``get_batch``) it is a fixed function of the image's flat grid index (a SplitMix64 counter hash),
so the same index always gives the same image, whatever batch it comes in.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from replab.data.base import DataInfo, GroundTruthDataset
from replab.registry import register_dataset

FACTOR_NAMES = ["shape", "scale", "orientation", "pos_x", "pos_y"]
FACTOR_SIZES = [3, 6, 40, 32, 32]
SHAPE_NAMES = ["square", "ellipse", "heart"]
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2.0 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)

CANVAS = 64
SPRITE_RADIUS = 15.5  # pixels: radius of every shape's enclosing circle at scale 1
POSITION_SPAN = 31.0  # pixels from position 0 to position 1 (one pixel per step)
# Pixel coordinates (x right, y down) of the centre at position 0: a pixel centre (16.5) plus a
# sub-pixel offset that breaks the pixel grid's symmetry (see the module docstring).
CENTRE_MIN = (16.5 + 0.375, 16.5 + 0.125)
SQUARE_HALF_SIDE = 1.0 / math.sqrt(2.0)
ELLIPSE_AXES = (1.0, 0.5)  # semi-axes (horizontal, vertical) at orientation 0
HEART_SCALE, HEART_SHIFT = 1.25, 0.25  # heart curve coordinates: x = 1.25 u, y = 1.25 v + 0.25

_PATCH = 32  # side of the patch holding a sprite, whose centre is at patch pixel 16 + offset
_COLOR_STREAM, _NOISE_STREAM = 1, 2
_HASH_WORDS = 1 << 16  # 64-bit words hashed at a time (512 KB: stays in the CPU's cache)


# ----------------------------------------------------------------------------------------------
# Geometry


def _rotation_tables() -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the 40 orientations; index 39 (2 pi) is made exactly index 0's."""
    angles = ORIENTATIONS.copy()
    angles[-1] = 0.0  # 2 pi: identical images, exactly (as in dSprites)
    return (
        torch.tensor(np.cos(angles), dtype=torch.float32),
        torch.tensor(np.sin(angles), dtype=torch.float32),
    )


_COS, _SIN = _rotation_tables()
_INV_SIZE = torch.tensor(1.0 / (SCALES * SPRITE_RADIUS), dtype=torch.float32)


def _inside(shape: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The implicit inside-test of a shape in normalised coordinates (``v`` up); bool."""
    if shape == 0:
        return torch.maximum(u.abs(), v.abs()) <= SQUARE_HALF_SIDE
    if shape == 1:
        a, b = ELLIPSE_AXES
        u = u / a
        v = v / b
        return u * u + v * v <= 1.0
    x = u * HEART_SCALE
    y = v * HEART_SCALE + HEART_SHIFT
    x2 = x * x
    y2 = y * y
    t = x2 + y2 - 1.0
    return t * t * t <= x2 * (y2 * y)


def shape_mask(shape: int, size: int, radius: float) -> np.ndarray:
    """One shape, upright, centred on a ``size`` x ``size`` patch, its enclosing circle of
    ``radius`` pixels: float32 [size, size] of 0 and 1 (small icons, e.g. DARLA's grid)."""
    j = (torch.arange(size, dtype=torch.float32) + 0.5 - size / 2) / radius
    u, v = j[None, :].expand(size, size), -j[:, None].expand(size, size)
    return _inside(shape, u, v).to(torch.float32).numpy()


def _sprite_masks(
    shape: int, scale: torch.Tensor, orientation: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor
) -> torch.Tensor:
    """Bool masks [m, H, W] of one shape at the given scale and orientation indices [m].

    ``dx`` [m, W] and ``dy`` [m, H] are the pixel centres' offsets from the sprite's centre in
    pixels (x right, y down). Every step is one elementwise torch operation, so a pixel's result
    depends on its two offsets alone, bit for bit, wherever it sits in the batch.
    """
    k = _INV_SIZE[scale][:, None]
    c = _COS[orientation][:, None] * k
    s = _SIN[orientation][:, None] * k
    up = -dy
    # Inverse rotation of (dx, up) by the orientation, then division by the size.
    u = (c * dx)[:, None, :] + (s * up)[:, :, None]
    v = (c * up)[:, :, None] - (s * dx)[:, None, :]
    return _inside(shape, u, v)


_PATCHES: np.ndarray | None = None  # [3 * 6 * 40, 32 * 32] float32, built on first use


def _patches() -> np.ndarray:
    """Every (shape, scale, orientation) sprite on a 32 x 32 patch: float32 [720, 1024]."""
    global _PATCHES
    if _PATCHES is None:
        n_scale, n_orient = FACTOR_SIZES[1], FACTOR_SIZES[2]
        scale = torch.arange(n_scale).repeat_interleave(n_orient)
        orientation = torch.arange(n_orient).repeat(n_scale)
        # Patch pixel j has centre j + 0.5; the sprite's centre is at 16.5 + offset.
        j = torch.arange(_PATCH, dtype=torch.float32) - _PATCH // 2
        dx = (j - (CENTRE_MIN[0] - 16.5)).expand(len(scale), _PATCH)
        dy = (j - (CENTRE_MIN[1] - 16.5)).expand(len(scale), _PATCH)
        masks = [_sprite_masks(sh, scale, orientation, dx, dy) for sh in range(FACTOR_SIZES[0])]
        patches = torch.cat(masks).reshape(-1, _PATCH * _PATCH).to(torch.float32)
        _PATCHES = np.ascontiguousarray(patches.numpy())
    return _PATCHES


# Flat canvas offsets of a patch's pixels from its top-left corner.
_PATCH_OFFSETS = (np.arange(_PATCH)[:, None] * CANVAS + np.arange(_PATCH)[None, :]).reshape(1, -1)


def render_np(f: np.ndarray) -> np.ndarray:
    """Binary sprites float32 [n, 1, 64, 64] of valid factor indices int64 [n, 5].

    numpy rather than torch here: single-threaded copies are as fast, and they do not stall when
    another process holds the other cores (torch's parallel regions wait for all their threads).
    """
    n = len(f)
    which = (f[:, 0] * FACTOR_SIZES[1] + f[:, 1]) * FACTOR_SIZES[2] + f[:, 2]
    # At position k the centre is canvas coordinate 16.5 + offset + k, patch coordinate
    # 16.5 + offset: the patch's top-left pixel is canvas pixel k (a whole-pixel translation).
    corner = np.arange(n) * CANVAS * CANVAS + f[:, 4] * CANVAS + f[:, 3]
    out = np.zeros(n * CANVAS * CANVAS, dtype=np.float32)
    out[(corner[:, None] + _PATCH_OFFSETS).ravel()] = _patches()[which].ravel()
    return out.reshape(n, 1, CANVAS, CANVAS)


_DEVICE_TABLES: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}


def render_on(f: np.ndarray, device: torch.device) -> torch.Tensor:
    """``render_np`` done on ``device``: the same patch table copied into a canvas there, so
    the same pixels, without rendering on the host's cores and copying 16 KB per image."""
    device = torch.device(device)
    if device not in _DEVICE_TABLES:
        _DEVICE_TABLES[device] = (
            torch.from_numpy(_patches()).to(device),
            torch.from_numpy(_PATCH_OFFSETS).to(device),
        )
    patches, offsets = _DEVICE_TABLES[device]
    f = torch.as_tensor(f, dtype=torch.long).to(device, non_blocking=True)
    n = len(f)
    which = (f[:, 0] * FACTOR_SIZES[1] + f[:, 1]) * FACTOR_SIZES[2] + f[:, 2]
    corner = torch.arange(n, device=device) * CANVAS * CANVAS + f[:, 4] * CANVAS + f[:, 3]
    out = torch.zeros(n * CANVAS * CANVAS, dtype=torch.float32, device=device)
    out[(corner[:, None] + offsets).reshape(-1)] = patches[which].reshape(-1)
    return out.view(n, 1, CANVAS, CANVAS)


def _render(factors: np.ndarray) -> torch.Tensor:
    """Binary sprites float32 [n, 1, 64, 64] of valid factor indices [n, 5]."""
    return torch.from_numpy(render_np(np.asarray(factors, dtype=np.int64)))


def _render_full(factors: np.ndarray) -> torch.Tensor:
    """Reference renderer: the inside-test at every canvas pixel (slower; the same images)."""
    f = torch.as_tensor(factors, dtype=torch.long)
    pixel = torch.arange(CANVAS, dtype=torch.float32) + 0.5
    out = torch.zeros(len(f), 1, CANVAS, CANVAS)
    for shape in range(FACTOR_SIZES[0]):
        idx = torch.nonzero(f[:, 0] == shape).flatten()
        if len(idx) == 0:
            continue
        g = f[idx]
        # pixel - centre, with centre = CENTRE_MIN + index (all exact in float32).
        dx = (pixel[None, :] - g[:, 3, None].float()) - CENTRE_MIN[0]
        dy = (pixel[None, :] - g[:, 4, None].float()) - CENTRE_MIN[1]
        out[idx, 0] = _sprite_masks(shape, g[:, 1], g[:, 2], dx, dy).float()
    return out


# ----------------------------------------------------------------------------------------------
# Factors and reproducible randomness


def _splitmix64(counter: np.ndarray) -> np.ndarray:
    """SplitMix64's output for uint64 counters (a bijection: distinct counters never collide)."""
    with np.errstate(over="ignore"):
        z = counter * np.uint64(0x9E3779B97F4A7C15)
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


def hashed_uniform(flat_index: np.ndarray, stream: int, count: int) -> np.ndarray:
    """``count`` numbers in (0, 1) per grid index [n], as float32 [n, count], 16 bits each.

    Number ``j`` of grid index ``g`` is 16 bits of the SplitMix64 hash of the counter
    ``(stream << 48) | (g << 12) | (j // 4)``: a pure function of (stream, g, j), on any machine.
    """
    n = len(flat_index)
    out = np.empty((n, count), dtype=np.float32)
    words = np.arange(-(-count // 4), dtype=np.uint64)[None, :]
    base = (np.uint64(stream) << np.uint64(48)) | (
        np.asarray(flat_index).astype(np.uint64) << np.uint64(12)
    )
    step = max(1, _HASH_WORDS // words.shape[1])  # images at a time
    for start in range(0, n, step):
        z = _splitmix64(base[start : start + step, None] | words)
        bits = z.astype("<u8", copy=False).view("<u2")[:, :count]
        chunk = out[start : start + step]
        np.add(bits, np.float32(0.5), out=chunk, dtype=np.float32)
        chunk *= np.float32(1.0 / 65536.0)
    return out


def _uniform(rng, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform [0, 1) float32 numbers drawn from a numpy or torch random generator."""
    if isinstance(rng, torch.Generator):
        return torch.rand(shape, generator=rng).numpy()
    if isinstance(rng, np.random.Generator):
        return rng.random(shape, dtype=np.float32)
    if isinstance(rng, np.random.RandomState):  # what disentanglement_lib passes
        return rng.uniform(0.0, 1.0, shape).astype(np.float32)
    raise TypeError(
        f"rng must be a numpy Generator or RandomState or a torch.Generator, "
        f"got {type(rng).__name__}"
    )


def colour_sprites(binary: np.ndarray, flat_index: np.ndarray, rng=None) -> np.ndarray:
    """disentanglement_lib's ColorDSprites: binary sprites [n, 1, H, W] on 3 channels times a
    colour with each channel uniform in [0.5, 1], from ``rng`` or from the grid index."""
    if rng is not None:
        u = _uniform(rng, (len(binary), 3))
    else:
        u = hashed_uniform(flat_index, _COLOR_STREAM, 3)
    return binary * (np.float32(0.5) + np.float32(0.5) * u)[:, :, None, None]


def noisy_sprites(binary: np.ndarray, flat_index: np.ndarray, rng=None) -> np.ndarray:
    """disentanglement_lib's NoisyDSprites: min(sprite + noise, 1) on 3 channels, the noise
    uniform in [0, 1] per pixel and channel, from ``rng`` or from the grid index."""
    n, _, h, w = binary.shape
    if rng is not None:
        x = _uniform(rng, (n, 3, h, w))
    else:
        x = hashed_uniform(flat_index, _NOISE_STREAM, 3 * h * w).reshape(n, 3, h, w)
    x += binary
    np.minimum(x, np.float32(1.0), out=x)
    return x


# ----------------------------------------------------------------------------------------------
# Data sets


class _SpritesBase(GroundTruthDataset):
    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    label_factor = "shape"
    categorical_factors = ("shape",)  # the others are ordinal (probed by R^2)
    circular_factors = ("orientation",)  # 40 steps over a full turn
    class_names = SHAPE_NAMES

    def _flat_index(self, factors: np.ndarray) -> np.ndarray:
        return np.ravel_multi_index(tuple(factors.T), self.factor_sizes)


@register_dataset("sprites")
class Sprites(_SpritesBase):
    """Procedural dSprites: 737,280 binary 64x64 images of 3 shapes with 5 factors, exact."""

    name = "sprites"
    info = DataInfo(shape=(1, CANVAS, CANVAS), num_classes=3)
    shifted_rendering = "inverted_sprites"

    def observations(self, factors, rng=None) -> torch.Tensor:
        """Binary images float32 [n, 1, 64, 64] of factor indices [n, 5] (``rng`` unused)."""
        return _render(self.checked_factors(factors))

    def observations_on(self, factors, device) -> torch.Tensor:
        """The same images rendered on ``device``."""
        return render_on(self.checked_factors(factors), device)


@register_dataset("color_sprites")
class ColorSprites(_SpritesBase):
    """dSprites in a random colour, each RGB channel uniform in [0.5, 1] (as ColorDSprites)."""

    name = "color_sprites"
    info = DataInfo(shape=(3, CANVAS, CANVAS), num_classes=3)
    shifted_rendering = "noisy_sprites"

    def colors(self, factors, rng=None) -> torch.Tensor:
        """The colours [n, 3] of the images of ``factors``: from ``rng``, or from their index."""
        f = self.checked_factors(factors)
        ones = np.ones((len(f), 1, 1, 1), dtype=np.float32)
        return torch.from_numpy(colour_sprites(ones, self._flat_index(f), rng)[:, :, 0, 0].copy())

    def observations(self, factors, rng=None) -> torch.Tensor:
        """Images float32 [n, 3, 64, 64]: the sprite times its colour on black."""
        f = self.checked_factors(factors)
        return torch.from_numpy(colour_sprites(render_np(f), self._flat_index(f), rng))


@register_dataset("noisy_sprites")
class NoisySprites(_SpritesBase):
    """dSprites on noise: min(sprite + uniform noise, 1) on 3 channels (as NoisyDSprites)."""

    name = "noisy_sprites"
    info = DataInfo(shape=(3, CANVAS, CANVAS), num_classes=3)
    shifted_rendering = "color_sprites"

    def noise(self, factors, rng=None) -> torch.Tensor:
        """The noise [n, 3, 64, 64] in [0, 1] of ``factors``: from ``rng``, or from their index."""
        f = self.checked_factors(factors)
        zeros = np.zeros((len(f), 1, CANVAS, CANVAS), dtype=np.float32)
        return torch.from_numpy(noisy_sprites(zeros, self._flat_index(f), rng))

    def observations(self, factors, rng=None) -> torch.Tensor:
        """Images float32 [n, 3, 64, 64]: a white sprite (1 on every channel) on the noise."""
        f = self.checked_factors(factors)
        return torch.from_numpy(noisy_sprites(render_np(f), self._flat_index(f), rng))


@register_dataset("inverted_sprites")
class InvertedSprites(_SpritesBase):
    """``sprites`` in inverted contrast (a black sprite on white, 1 - x): the same factors and
    shape, another rendering (the ``transfer`` part's default shift for ``sprites``)."""

    name = "inverted_sprites"
    info = DataInfo(shape=(1, CANVAS, CANVAS), num_classes=3)
    shifted_rendering = "sprites"

    def observations(self, factors, rng=None) -> torch.Tensor:
        """Images float32 [n, 1, 64, 64]: 1 - the binary sprite."""
        return 1.0 - _render(self.checked_factors(factors))
