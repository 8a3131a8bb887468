"""Representation learning methods, one file per method (or small family).

Adding a method: a file here with ``@register_method`` on its class, and one import line below.
"""

import replab.methods.bert  # noqa: F401
import replab.methods.cpc  # noqa: F401
import replab.methods.disentangling_vae  # noqa: F401
import replab.methods.draw  # noqa: F401
import replab.methods.frame_order  # noqa: F401
import replab.methods.gan  # noqa: F401
import replab.methods.gpt  # noqa: F401
import replab.methods.pretext  # noqa: F401
import replab.methods.simclr  # noqa: F401
import replab.methods.vq_vae  # noqa: F401
import replab.methods.word2vec  # noqa: F401
from replab.methods import vae  # noqa: F401
from replab.methods.base import Method

__all__ = ["Method"]
