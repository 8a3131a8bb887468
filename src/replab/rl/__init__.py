"""Reinforcement learning on top of a representation: DARLA's seek-avoid environment and a
small DQN (``replab darla`` compares encoders by how their policies transfer)."""

# The file ``replab darla`` writes its comparison to; ``replab report FOLDER`` shows it.
DARLA_RESULT_FILE = "darla.json"

# ``replab darla``'s defaults live here, not in replab.darla (which imports torch), so that the
# CLI states them in its help without loading the models: the encoders compared, each trained
# encoder's steps (of which DARLA's denoising autoencoder's), and each DQN's environment steps.
# Together about 30 minutes for 3 seeds on 2 cores.
DARLA_ENCODERS = ("darla", "beta_vae", "vae", "random_encoder", "pixels")
DARLA_ENCODER_STEPS, DARLA_DAE_STEPS = 1500, 750
DQN_STEPS = 15000
