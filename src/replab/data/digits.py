"""scikit-learn's 8x8 handwritten digits (bundled with scikit-learn: no download)."""

from __future__ import annotations

import numpy as np

from replab.data.base import ArrayDataset
from replab.registry import register_dataset


@register_dataset("digits")
def digits() -> ArrayDataset:
    """scikit-learn's 8x8 handwritten digits: 1,797 real images, 10 classes."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]  # [N, 1, 8, 8] in [0, 1]
    return ArrayDataset(x, bunch.target, name="digits", class_names=[str(d) for d in range(10)])
