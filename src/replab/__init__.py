"""replab: unsupervised representation learning, three pillars and one evaluation protocol."""

__version__ = "0.1.0"
