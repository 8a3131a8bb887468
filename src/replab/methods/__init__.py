"""Representation learning methods, one file per method (or small family).

Adding a method: a file here with ``@register_method`` on its class, and one import line below.
"""

from replab.methods import vae  # noqa: F401
from replab.methods.base import Method

__all__ = ["Method"]
