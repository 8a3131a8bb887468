"""The raw-input baseline's probe, remembered across runs (``~/.cache/replab``).

The raw-input baseline is the same for every run evaluated on one data set with one suite and
seed, and on 64x64 images it is the costliest part of the suite (a 4,096-wide probe): it is
computed once and read back after. ``REPLAB_CACHE`` moves the cache or (``off``) disables it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from replab.eval import probes
from replab.files import atomic_write_json, cache_dir


def baseline_cache_dir() -> Path | None:
    """replab's cache folder (``files.cache_dir``); the probes go in its ``probes/``."""
    return cache_dir()


def _probe_key(*arrays: np.ndarray, **settings) -> str:
    """A hash of the probe's exact inputs and settings (and the probe's own constants), so a
    cached result is reused only for bit-identical work."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.data)
    constants = (probes.L2_GRID, probes.DEFAULT_L2, probes.HOLDOUT_FRACTION, probes.MIN_HOLDOUT,
                 probes.MAX_ITER, probes.GRAD_TOL)  # fmt: skip
    h.update(json.dumps([settings, constants], sort_keys=True, default=str).encode())
    return h.hexdigest()


def cached_linear_probe(f_tr, y_tr, f_te, y_te, *, seeds, device) -> dict:
    """``probes.linear_probe``, remembered across runs in ``baseline_cache_dir()``.

    The raw-input baseline is the same for every run evaluated on one data set with one suite and
    seed, and on 64x64 images it is the costliest part of the suite (a 4,096-wide probe): it is
    computed once and read back after. The key hashes the arrays themselves, so any change to
    the data, the sample or the probe's settings misses the cache; an unreadable entry is
    recomputed and rewritten.
    """
    root = baseline_cache_dir()
    key = _probe_key(f_tr, y_tr, f_te, y_te, seeds=list(seeds), device=str(device))
    path = root / "probes" / f"{key}.json" if root is not None else None
    if path is not None and path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass  # a damaged entry: recompute and overwrite it
    result = probes.linear_probe(f_tr, y_tr, f_te, y_te, seeds=seeds, device=device)
    if path is not None:
        try:
            atomic_write_json(path, result)
        except OSError:
            pass  # a read-only or full cache never fails an evaluation
    return result
