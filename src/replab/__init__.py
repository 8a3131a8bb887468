"""replab: unsupervised representation learning, three pillars and one evaluation protocol.

Python API::

    run = replab.train("beta_vae", "sprites", steps=2000, beta=4)   # a Run
    z = replab.load(run.dir).encode(x)                               # [n, dim]
"""

from __future__ import annotations

# The subpackage replab.train is imported before the function of the same name is defined, so
# the attribute ``replab.train`` is the function; ``from replab.train.loop import ...`` still works.
import replab.train.loop as _loop  # noqa: E402
import replab.train.run as _run  # noqa: E402

__version__ = "0.1.0"
Run = _run.Run


def train(
    method: str,
    data: str,
    *,
    out: str | None = None,
    config: str | None = None,
    resume: bool = False,
    progress: bool = False,
    **overrides,
) -> Run:
    """Train ``method`` on ``data``; keyword overrides are config keys (``steps=100``,
    ``beta=4`` or ``train__lr=1e-3`` for ``train.lr``). Returns the Run."""
    import time
    from pathlib import Path

    from replab.config import load_yaml, resolve

    kv = {k.replace("__", "."): v for k, v in overrides.items()}
    cfg = resolve(method, data, load_yaml(config) if config else {}, kv)
    out = out or Path("runs") / f"{method}-{time.strftime('%Y%m%d-%H%M%S')}"
    return _loop.train(cfg, out, resume=resume, progress=progress)


def load(run_dir, device: str = "auto") -> Run:
    """A trained run from its directory; ``.encode(x)`` gives the representation."""
    return _run.load(run_dir, device=device)


__all__ = ["Run", "load", "train", "__version__"]
