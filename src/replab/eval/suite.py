"""How much data each part of the protocol sees: the ``quick``, ``standard`` and ``full`` suites."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Suite:
    """Sample sizes of the protocol's parts. ``full`` is disentanglement_lib's defaults for every
    disentanglement metric; its probes are the standard suite's. ``parts`` limits a run to the
    named parts (None: every part that applies)."""

    name: str
    n_train: int  # labelled examples embedded for probes, kNN and clustering
    n_test: int
    seeds: tuple[int, ...]  # the linear probe's seeds
    dis_train: int  # factor points for MIG, SAP, modularity, explicitness, factor probes
    dis_test: int
    score_train: int  # BetaVAE / FactorVAE score training and evaluation points
    score_eval: int
    variance_points: int  # FactorVAE's estimate of each latent's scale
    symmetry_pairs: int
    dci_train: int = 2000  # DCI's gradient-boosted trees grow costly with the points
    dci_test: int = 1000
    attack_examples: int = 200  # test images attacked (robustness)
    attack_steps: int = 10  # PGD steps of eps / 4
    blackbox_examples: int = 50  # images given random-sign queries
    blackbox_queries: int = 200
    generalisation_points: int = 6000  # factor points split four ways (generalisation)
    transfer_points: int = 4000  # factor points rendered in both domains (transfer)
    segmentation_images: int = 500  # test images segmented (segmentation)
    view_scenes: int = 200  # test scenes whose unseen views are predicted (view_prediction)
    object_probe_points: int = 3000  # images or scenes probed (object_/scene_probes; half test)
    # options rather than sizes, set from the command line
    epsilons: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0)  # units of 1/255
    transfer_data: str | None = None  # the shifted rendering (None: the data set's own)
    extrapolation_share: float = 0.3  # top share of each factor's range held out
    parts: tuple[str, ...] | None = None

    def only(self, parts: tuple[str, ...] | None) -> Suite:
        return replace(self, parts=parts)

    def with_options(self, **options) -> Suite:
        """The suite with options (``epsilons``, ``transfer_data``, ``extrapolation_share``) set."""
        return replace(self, **options)


SUITES = {
    "quick": Suite(
        name="quick",
        n_train=2000,
        n_test=1000,
        seeds=(0,),
        dis_train=2000,
        dis_test=1000,
        score_train=300,
        score_eval=150,
        variance_points=2000,
        symmetry_pairs=500,
        dci_train=500,
        dci_test=250,
        attack_examples=50,
        blackbox_examples=20,
        blackbox_queries=50,
        generalisation_points=3000,
        transfer_points=2000,
        segmentation_images=100,
        view_scenes=50,
        object_probe_points=1000,
    ),
    "standard": Suite(
        name="standard",
        n_train=10000,
        n_test=5000,
        seeds=(0, 1, 2),
        dis_train=10000,
        dis_test=5000,
        score_train=1000,
        score_eval=500,
        variance_points=5000,
        symmetry_pairs=1000,
    ),
    # The probes see what the standard suite's see: larger probe samples add nothing to
    # disentanglement_lib's protocol, which is what this suite reproduces, and a probe on 64x64
    # raw pixels grows costly with every example.
    "full": Suite(
        name="full",
        n_train=10000,
        n_test=5000,
        seeds=(0, 1, 2),
        dis_train=10000,
        dis_test=5000,
        score_train=10000,
        score_eval=5000,
        variance_points=10000,
        symmetry_pairs=2000,
        dci_train=10000,
        dci_test=5000,
        attack_examples=500,
        attack_steps=20,
        generalisation_points=10000,
        transfer_points=10000,
        segmentation_images=2000,
        view_scenes=1000,
        object_probe_points=10000,
    ),
}
