"""Colour spaces: sRGB to CIE L*a*b*, for methods that separate lightness from colour."""

from __future__ import annotations

import torch

# sRGB (D65) -> XYZ, and the D65 white point: the CIE / IEC 61966-2-1 constants.
RGB_TO_XYZ = torch.tensor(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=torch.float64,
)
D65_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] [..., 3, H, W] -> CIE L*a*b* (D65) [..., 3, H, W], L in [0, 100].

    Undo the sRGB curve (linear below 0.04045, ((c + 0.055) / 1.055)^2.4 above), map to XYZ,
    divide by the white point, and L = 116 f(Y) - 16, a = 500 (f(X) - f(Y)),
    b = 200 (f(Y) - f(Z)) with f(t) = t^(1/3) above (6/29)^3, t / (3 (6/29)^2) + 4/29 below.
    """
    dtype = rgb.dtype if rgb.dtype == torch.float64 else torch.float32
    with torch.autocast(rgb.device.type, enabled=False):  # bf16 would cost ~1 unit of L
        c = rgb.to(dtype).clamp(0.0, 1.0)
        lin = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
        m = (RGB_TO_XYZ / D65_WHITE[:, None]).to(rgb.device, dtype)
        xyz = torch.einsum("ij,...jhw->...ihw", m, lin)
        d = 6.0 / 29.0
        cube = xyz.clamp(min=d**3) ** (1.0 / 3.0)
        f = torch.where(xyz > d**3, cube, xyz / (3 * d * d) + 4.0 / 29.0)
        fx, fy, fz = f.unbind(-3)
        return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)
