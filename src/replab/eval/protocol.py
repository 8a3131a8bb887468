"""The evaluation protocol: one procedure for every method, through ``encode(x)`` alone.

``evaluate(run)`` embeds a labelled train/test sample of the data, then runs each part that
applies: the linear probe at 1/10/100% of the labels beside its two baselines (raw pixels, the same
architecture at random initialisation), kNN, k-means, and, for data with ground-truth factors,
the disentanglement metrics, per-factor probes and symmetry scores; models with a decoder also get
traversal, reconstruction and sample figures. Nothing here looks at the method's name.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from replab.data import Dataset, make_dataset
from replab.train.run import Run, build_model


@dataclass(frozen=True)
class Suite:
    """How much data each part uses. ``full`` is disentanglement_lib's defaults for every
    disentanglement metric; its probes are the standard suite's."""

    name: str
    n_train: int  # examples embedded for probes, kNN and clustering
    n_test: int
    seeds: tuple[int, ...]
    dis_train: int  # points for MIG, SAP, modularity, explicitness, factor probes
    dis_test: int
    score_train: int  # BetaVAE / FactorVAE score training and evaluation points
    score_eval: int
    variance_points: int
    symmetry_pairs: int
    figures: bool = True
    dci_train: int = 2000  # DCI's gradient-boosted trees cost minutes at 10,000 points
    dci_test: int = 1000


SUITES = {
    "quick": Suite("quick", 2000, 1000, (0,), 2000, 1000, 300, 150, 2000, 500, True, 500, 250),
    "standard": Suite("standard", 10000, 5000, (0, 1, 2), 10000, 5000, 1000, 500, 5000, 1000),
    # The probes see what the standard suite's see: at 50,000 examples the 4,096-wide raw-pixel
    # probe on sprites alone ran for over 12 minutes on 2 cores, and it adds nothing to
    # disentanglement_lib's protocol, which is what this suite reproduces.
    "full": Suite(
        "full", 10000, 5000, (0, 1, 2), 10000, 5000, 10000, 5000, 10000, 2000, True, 10000, 5000
    ),
}


# DCI fits gradient-boosted trees on every dimension, SAP one SVM per (latent, factor): past this
# many dimensions both are skipped (NaN, with a note). Measured: SAP on a 16,384-wide VQ-VAE code
# (5 factors, 2,000 points) ran for minutes; its other metrics stay cheap.
DCI_MAX_DIMS = 256
# Largest table of codes (bytes) the protocol keeps to encode a factor grid once (EncodedGrid).
GRID_TABLE_MAX_BYTES = 4 * 2**30


class EvaluationError(ValueError):
    """The run or data cannot be evaluated (one line, shown to the user)."""


def _sample_indices(n_total: int, n: int, rng: np.random.Generator) -> np.ndarray:
    return (
        np.sort(rng.choice(n_total, size=n, replace=False)) if n < n_total else np.arange(n_total)
    )


def _gather(data: Dataset, indices: np.ndarray, batch_size: int = 2048) -> dict[str, torch.Tensor]:
    parts = [
        data.get_batch(indices[i : i + batch_size]) for i in range(0, len(indices), batch_size)
    ]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _features(model, x: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        out = [
            model.encode(x[i : i + batch_size].to(device)).float().cpu()
            for i in range(0, len(x), batch_size)
        ]
    feats = torch.cat(out).flatten(1).numpy().astype(np.float64)
    if not np.isfinite(feats).all():
        raise EvaluationError("the representation contains NaN or inf values")
    return feats


def _encoder_fn(model):
    device = next(model.parameters()).device

    def encode(x) -> np.ndarray:
        with torch.no_grad():
            return model.encode(torch.as_tensor(x).to(device)).float().cpu().numpy()

    return encode


class EncodedGrid:
    """A ground-truth data set whose whole factor grid was encoded once, standing in for it.

    The BetaVAE and FactorVAE scores at disentanglement_lib's sizes encode about 2.9M sampled
    images on ``sprites``, whose grid has only 737,280: past that size one pass over the grid and
    look-ups are cheaper. Observations of a ground-truth data set are a function of their factors
    (``GroundTruthDataset``'s contract), so the look-ups give the codes that encoding would. Here
    the "observations" are grid indices and ``encode`` maps them to their codes; the metrics take
    (data, encode) and need no change.
    """

    def __init__(self, data, encode, batch_size: int = 4096):
        from replab.eval.symmetry import _encode_all

        self.data = data
        self.factor_names, self.factor_sizes = data.factor_names, data.factor_sizes
        grid = data.index_to_factors(np.arange(int(np.prod(data.factor_sizes))))
        self.codes = _encode_all(data, encode, grid, batch_size, dtype=np.float32)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.data.sample_factors(n, rng)

    def observations(self, factors) -> np.ndarray:
        return self.data.factors_to_index(np.asarray(factors))

    def encode(self, indices) -> np.ndarray:
        return self.codes[np.asarray(indices)]


def _codes_of(data, encode, factors: np.ndarray) -> np.ndarray:
    """Codes float64 [n, d] of the observations of ``factors``; NaN or inf is refused."""
    from replab.eval.symmetry import _encode_all

    codes = _encode_all(data, encode, factors, batch_size=1024)
    if not np.isfinite(codes).all():
        raise EvaluationError("the representation contains NaN or inf values")
    return codes


def _narrow_enough(codes: np.ndarray, metric: str, why: str) -> bool:
    """False, with a warning that becomes a note in eval.json, for codes wider than
    DCI_MAX_DIMS: the metrics whose cost grows with every dimension are skipped there."""
    if codes.shape[1] <= DCI_MAX_DIMS:
        return True
    warnings.warn(
        f"{metric} skipped: the representation has {codes.shape[1]} dimensions (over "
        f"{DCI_MAX_DIMS}); {why}",
        RuntimeWarning,
        stacklevel=2,
    )
    return False


def _sampled_encodings(s: Suite) -> int:
    """How many images the suite's BetaVAE and FactorVAE scores encode (batches of 64)."""
    return (s.score_train + s.score_eval) * 64 * 3 + s.variance_points


def _nan_to_none(obj):
    """JSON has no NaN: write null (the report shows 'n/a')."""
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def baseline_cache_dir() -> Path | None:
    """Where raw-input baselines are kept: ``$REPLAB_CACHE`` (``off`` disables the cache), else
    ``$XDG_CACHE_HOME/replab`` or ``~/.cache/replab``."""
    where = os.environ.get("REPLAB_CACHE")
    if where is not None:
        return None if where.strip().lower() in ("", "off", "0", "none") else Path(where)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "replab"


def _probe_key(*arrays: np.ndarray, **settings) -> str:
    """A hash of the probe's exact inputs and settings (and the probe's own constants), so a
    cached result is reused only for bit-identical work."""
    from replab.eval import probes

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.data)
    constants = (probes.L2_GRID, probes.DEFAULT_L2, probes.HOLDOUT_FRACTION, probes.MIN_HOLDOUT,
                 probes.MAX_ITER, probes.GRAD_TOL)  # fmt: skip
    h.update(json.dumps([settings, constants], sort_keys=True, default=str).encode())
    return h.hexdigest()


def cached_linear_probe(f_tr, y_tr, f_te, y_te, *, seeds, device) -> dict:
    """``probes.linear_probe``, remembered across runs in ``baseline_cache_dir()``.

    The raw-input baseline is the same for every run evaluated on one data set with one suite and
    seed, and on 64x64 images it is the costliest part of the suite (a 4,096-wide probe): it is
    computed once and read back after. The key hashes the arrays themselves, so any change to
    the data, the sample or the probe's settings misses the cache; an unreadable entry is
    recomputed and rewritten.
    """
    from replab.eval import probes
    from replab.train.io import atomic_write_json

    root = baseline_cache_dir()
    key = _probe_key(f_tr, y_tr, f_te, y_te, seeds=list(seeds), device=str(device))
    path = root / "probes" / f"{key}.json" if root is not None else None
    if path is not None and path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass  # a damaged entry: recompute and overwrite it
    result = probes.linear_probe(f_tr, y_tr, f_te, y_te, seeds=seeds, device=device)
    if path is not None:
        try:
            atomic_write_json(path, result)
        except OSError:
            pass  # a read-only or full cache never fails an evaluation
    return result


def evaluate(
    run: Run,
    data_spec: str | None = None,
    suite: str = "standard",
    seed: int = 0,
    log=print,
) -> dict:
    """Run the protocol on ``run``; returns the eval.json dict (NaN written as None)."""
    from replab.eval import disentanglement as dis
    from replab.eval import probes, symmetry

    if suite not in SUITES:
        raise EvaluationError(f"unknown suite {suite!r}; choose from: {', '.join(SUITES)}")
    s = SUITES[suite]
    data_spec = data_spec or run.config.data
    data = make_dataset(data_spec)
    expected = tuple(run.model.info.shape)
    accepts = getattr(run.model, "accepts_shape", lambda shape: tuple(shape) == expected)
    if not accepts(tuple(data.info.shape)):
        raise EvaluationError(
            f"data set {data_spec} has inputs of shape {tuple(data.info.shape)}, but the model "
            f"was trained on {expected}"
        )
    if not hasattr(run.model, "encode"):
        raise EvaluationError(
            f"method {run.config.method} has no encoder, so it has no representation to evaluate"
        )
    device = run.device.type
    rng = np.random.default_rng(seed)
    result: dict = {
        "method": run.config.method,
        "dataset": data_spec,
        "suite": suite,
        "seed": seed,
        "seconds": {},
    }
    seconds = result["seconds"]

    def timed(name):
        class _T:
            def __enter__(self):
                self.t = time.perf_counter()
                log(f"  {name} ...")

            def __exit__(self, *exc):
                seconds[name] = round(time.perf_counter() - self.t, 3)

        return _T()

    # A random-initialised copy of the same architecture: the second baseline.
    torch.manual_seed(seed)
    random_model = build_model(run.config, run.model.info).to(run.device).eval()

    train_split, test_split = data.split("train"), data.split("test")
    with timed("features"):
        tr = _gather(train_split, _sample_indices(len(train_split), s.n_train, rng))
        te = _gather(test_split, _sample_indices(len(test_split), s.n_test, rng))
        f_tr, f_te = _features(run.model, tr["x"]), _features(run.model, te["x"])
        result["representation_dim"] = int(f_tr.shape[1])

    if "y" in tr:
        y_tr, y_te = tr["y"].numpy(), te["y"].numpy()
        with timed("linear_probe"):
            result["linear_probe"] = probes.linear_probe(
                f_tr, y_tr, f_te, y_te, seeds=s.seeds, device=device
            )
        with timed("baselines"):
            raw = (data.raw_features(tr["x"]), data.raw_features(te["x"]))
            rand = (_features(random_model, tr["x"]), _features(random_model, te["x"]))
            result["baselines"] = {
                data.raw_baseline_name: cached_linear_probe(
                    raw[0], y_tr, raw[1], y_te, seeds=s.seeds, device=device
                ),
                "random_encoder": probes.linear_probe(
                    rand[0], y_tr, rand[1], y_te, seeds=s.seeds, device=device
                ),
            }
        with timed("knn"):
            result["knn"] = {"accuracy": probes.knn_accuracy(f_tr, y_tr, f_te, y_te, device=device)}
        with timed("clustering"):
            result["clustering"] = probes.clustering_scores(f_te, y_te, seed=seed)

    if hasattr(data, "factor_sizes"):
        encode = _encoder_fn(run.model)
        sampled = data
        grid = int(np.prod(data.factor_sizes))
        if grid < _sampled_encodings(s) and grid * f_tr.shape[1] * 4 <= GRID_TABLE_MAX_BYTES:
            with timed("grid_encoding"):
                table = EncodedGrid(data, encode)
            sampled, encode = table, table.encode
        with timed("disentanglement"):
            fac_tr = data.sample_factors(s.dis_train, rng)
            fac_te = data.sample_factors(s.dis_test, rng)
            c_tr = _codes_of(sampled, encode, fac_tr)
            c_te = _codes_of(sampled, encode, fac_te)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                n_tr, n_te = s.dci_train, s.dci_test
                nan = float("nan")
                if _narrow_enough(c_tr, "DCI", "gradient-boosted trees on it would take hours"):
                    d = dis.dci(c_tr[:n_tr], fac_tr[:n_tr], c_te[:n_te], fac_te[:n_te], n_jobs=2)
                else:
                    d = dict.fromkeys(
                        ("disentanglement", "completeness", "informativeness_test"), nan
                    )
                sap = (
                    dis.sap(c_tr, fac_tr, c_te, fac_te)
                    if _narrow_enough(c_tr, "SAP", "it fits one SVM per dimension and factor")
                    else nan
                )
                me = dis.modularity_explicitness(c_tr, fac_tr, c_te, fac_te)
                result["disentanglement"] = {
                    "beta_vae": dis.beta_vae_score(
                        sampled, encode, rng, num_train=s.score_train, num_eval=s.score_eval
                    ),
                    "factor_vae": dis.factor_vae_score(
                        sampled,
                        encode,
                        rng,
                        num_train=s.score_train,
                        num_eval=s.score_eval,
                        num_variance_estimate=s.variance_points,
                    ),
                    "mig": dis.mig(c_tr, fac_tr),
                    "dci_disentanglement": d["disentanglement"],
                    "dci_completeness": d["completeness"],
                    "dci_informativeness": d["informativeness_test"],
                    "sap": sap,
                    "modularity": me["modularity"],
                    "explicitness": me["explicitness_test"],
                }
            notes = sorted({str(w.message) for w in caught})
            if notes:
                result["disentanglement_notes"] = notes
        with timed("factor_probes"):
            categorical = set(getattr(data, "categorical_factors", []))
            result["factor_probes"] = probes.factor_probes(
                c_tr,
                fac_tr,
                c_te,
                fac_te,
                list(data.factor_names),
                categorical=categorical,
                seed=seed,
                device=device,
            )
        with timed("symmetry"):
            result["symmetry"] = symmetry.symmetry_scores(
                sampled, encode, rng, n_pairs=s.symmetry_pairs
            )

    if s.figures and hasattr(run.model, "decode"):
        from replab.eval.analysis import save_model_figures

        with timed("figures"):
            result["figures"] = save_model_figures(run.model, test_split, run.dir / "figures")

    return _nan_to_none(result)


def write_eval(run_dir: Path, result: dict) -> Path:
    from replab.train.io import atomic_write_json

    path = Path(run_dir) / "eval.json"
    atomic_write_json(path, result)
    return path
