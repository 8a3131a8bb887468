"""replab: unsupervised representation learning, three pillars and one evaluation protocol.

Python API (``replab.api``, loaded on first use, so ``import replab.config`` stays light)::

    run = replab.train("beta_vae", "sprites", steps=2000, beta=4)   # a Run
    z = replab.load(run.dir).encode(x)                               # [n, dim]
    result = replab.evaluate(run, suite="quick")                     # an EvalResult
"""

from __future__ import annotations

__version__ = "0.2.0"
__all__ = ["Run", "evaluate", "load", "train", "__version__"]


def __getattr__(name: str):
    if name in ("Run", "evaluate", "load", "train"):
        from replab import api

        return getattr(api, name)
    raise AttributeError(f"module 'replab' has no attribute {name!r}")
