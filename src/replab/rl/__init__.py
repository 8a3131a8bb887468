"""Reinforcement learning on top of a representation: DARLA's seek-avoid environment and a
small DQN (``replab darla`` compares encoders by how their policies transfer)."""

# The file ``replab darla`` writes its comparison to; ``replab report FOLDER`` shows it.
DARLA_RESULT_FILE = "darla.json"
