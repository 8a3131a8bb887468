"""Representation learning methods, one file per method (or small family)."""
