"""Reinforcement learning on top of a representation: DARLA's seek-avoid environment and a
small DQN (``replab darla`` compares encoders by how their policies transfer)."""
