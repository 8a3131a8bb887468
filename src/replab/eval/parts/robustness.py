"""Adversarial robustness of the linear probe *through the frozen encoder*, beside the same
attacks on the raw-pixel probe and on the random encoder's probe.

Each of the three classifiers is the linear probe fitted on all of the labelled training sample
(``probes.fit_linear_probe``; on images of more than 256 pixels the pixel probe reads their
first 256 principal components, a linear map the attack differentiates through). FGSM and PGD
(``eval.robustness``) attack ``suite.attack_examples`` images drawn from the test sample at each
epsilon of ``suite.epsilons`` (units of 1/255 on images in [0, 1]), with gradients through
encoder and probe together. The area under each accuracy-epsilon curve, divided by the epsilon
range, is its mean accuracy. A random-sign black-box attack at one epsilon (8/255 when listed,
else the largest) checks the white-box figure: when it breaks clearly more images than PGD, the
gradients are masked and a note says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from replab.eval import probes
from replab.eval import robustness as attacks
from replab.eval.context import Context
from replab.eval.parts.base import Part
from replab.eval.results import PartResult, Table, number

PICK_STREAM = 22  # default_rng([seed, PICK_STREAM]) picks the attacked images
BLACKBOX_EPS = 8.0  # in 1/255
# how many more images (share of those attacked) the black-box attack may break than PGD
# before the gradients count as masked: twice the standard error of a share near 1/2
MASKING_MARGIN_SE = 2.0


@dataclass
class RobustnessResult(PartResult):
    key = "robustness"
    epsilons: list[float]  # units of 1/255
    accuracy: dict[str, dict[str, list[float]]]  # classifier -> attack -> accuracy per epsilon
    blackbox: dict[str, dict[str, float]]  # classifier -> {eps, pgd, random_sign}
    examples: int

    def area(self, classifier: str, attack: str = "pgd") -> float:
        return attacks.curve_area(self.epsilons, self.accuracy[classifier][attack])

    def to_json(self):
        return {
            "epsilons": self.epsilons,
            "examples": self.examples,
            "accuracy": self.accuracy,
            "area": {c: {a: self.area(c, a) for a in v} for c, v in self.accuracy.items()},
            "blackbox": self.blackbox,
        }

    @classmethod
    def from_json(cls, obj):
        if not isinstance(obj, dict) or not isinstance(obj.get("accuracy"), dict):
            raise ValueError("expected {epsilons, accuracy: {classifier: {attack: [...]}}}")
        eps = [number(e) for e in obj.get("epsilons", [])]
        acc = {
            str(c): {str(a): [number(v) for v in values] for a, values in curves.items()}
            for c, curves in obj["accuracy"].items()
        }
        for curves in acc.values():
            for values in curves.values():
                if len(values) != len(eps):
                    raise ValueError(f"{len(values)} accuracies for {len(eps)} epsilons")
        blackbox = {str(c): {str(k): number(v) for k, v in d.items()}
                    for c, d in obj.get("blackbox", {}).items()}  # fmt: skip
        return cls(eps, acc, blackbox, int(number(obj.get("examples", 0)) or 0))

    def summary(self):
        if "representation" not in self.accuracy:
            return {}
        curve = self.accuracy["representation"]["pgd"]
        return {"clean accuracy (attacked probe)": curve[0] if self.epsilons[0] == 0 else
                float("nan"), "PGD accuracy area": self.area("representation")}  # fmt: skip

    def leaderboard(self):
        return {"robust area": self.area("representation")} if self.accuracy else {}

    def tables(self):
        head = ["classifier", "attack", *[f"{e:g}/255" for e in self.epsilons], "area"]
        rows = [[c, a, *values, self.area(c, a)]
                for c, curves in self.accuracy.items() for a, values in curves.items()]  # fmt: skip
        tables = [Table(f"Adversarial robustness ({self.examples} test images)", head, rows)]
        if self.blackbox:
            tables.append(Table(
                "Gradient-masking check: accuracy under PGD and under random-sign queries",
                ["classifier", "epsilon", "PGD", "random signs"],
                [[c, f"{d['eps']:g}/255", d["pgd"], d["random_sign"]]
                 for c, d in self.blackbox.items()],
            ))  # fmt: skip
        return tables


def _classifier(encode, codes: np.ndarray, y: np.ndarray, seed: int, device):
    """logits(x) = encode(x) @ W + b, the probe fitted on (codes, y); labels as 0..K-1."""
    W, b, classes = probes.fit_linear_probe(codes, y, seed=seed, device=device)

    def logits(x: torch.Tensor) -> torch.Tensor:
        return encode(x).float() @ W + b

    return logits, classes


def _pixel_encoder(x_train: torch.Tensor, seed: int, device) -> tuple[str, Callable]:
    """The pixel probe's features: the flattened image, or on wider images their leading
    principal components over the training sample (a linear map: the attack's gradient is
    exact)."""
    pcs = probes.principal_components(x_train.flatten(1).numpy(), seed=seed)
    if pcs is None:
        return "pixels", lambda x: x.flatten(1)
    mean, basis = (torch.as_tensor(a, device=device) for a in pcs)
    return f"pixels_pca{probes.RAW_COMPONENTS}", lambda x: (x.flatten(1) - mean) @ basis


@contextmanager
def _frozen(*modules):
    """No parameter gradients inside: the attacks need d/dx only, and skip the weights' work."""
    flags = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


class Robustness(Part):
    name = "robustness"
    result_type = RobustnessResult

    def applies(self, model, data):
        return data.has_labels and data.info.kind == "image"

    def run(self, ctx: Context) -> RobustnessResult:
        with _frozen(ctx.model, ctx.random_model):
            return self._run(ctx)

    def _run(self, ctx: Context) -> RobustnessResult:
        lab, suite = ctx.labelled, ctx.suite
        device = next(ctx.model.parameters()).device
        random_train, _ = ctx.random_codes
        ctx.model.eval()
        pixel_name, pixels = _pixel_encoder(lab.x_train, ctx.seed, device)
        encoders = {
            "representation": (ctx.model.encode, lab.codes_train),
            pixel_name: (pixels, pixels(lab.x_train.to(device)).double().cpu().numpy()),
            "random_encoder": (ctx.random_model.encode, random_train),
        }
        n = min(suite.attack_examples, len(lab.x_test))
        # a random subset: the labelled sample is in index order, which may be label order
        pick = np.sort(
            np.random.default_rng([ctx.seed, PICK_STREAM]).permutation(len(lab.x_test))[:n]
        )
        x = lab.x_test[pick].to(device)
        y_test = lab.y_test[pick]
        eps_list = [float(e) for e in suite.epsilons]
        accuracy, blackbox = {}, {}
        for name, (encode, codes) in encoders.items():
            logits, classes = _classifier(encode, codes, lab.y_train, ctx.seed, device)
            y = torch.as_tensor(np.searchsorted(classes, y_test), device=device)
            gen = torch.Generator().manual_seed(ctx.seed)
            curves = {"fgsm": [], "pgd": []}
            for e in eps_list:
                eps = e / 255
                curves["fgsm"].append(attacks.accuracy(logits, attacks.fgsm(logits, x, y, eps), y))
                adv = attacks.pgd(logits, x, y, eps, steps=suite.attack_steps, generator=gen)
                curves["pgd"].append(attacks.accuracy(logits, adv, y))
            accuracy[name] = curves
            e_box = BLACKBOX_EPS if BLACKBOX_EPS in eps_list else max(eps_list)
            k = min(suite.blackbox_examples, n)
            queries = suite.blackbox_queries
            broken = attacks.random_sign_attack(
                logits, x[:k], y[:k], e_box / 255, queries=queries, generator=gen
            )
            adv = attacks.pgd(
                logits, x[:k], y[:k], e_box / 255, steps=suite.attack_steps, generator=gen
            )
            pgd_acc = attacks.accuracy(logits, adv, y[:k])
            box_acc = 1.0 - int(broken.sum()) / k
            blackbox[name] = {"eps": e_box, "pgd": pgd_acc, "random_sign": box_acc}
            if pgd_acc - box_acc > MASKING_MARGIN_SE * 0.5 / np.sqrt(max(k, 1)):
                warnings.warn(
                    f"{name}: random-sign queries at {e_box:g}/255 leave {box_acc:.3f} accuracy, "
                    f"PGD {pgd_acc:.3f}: the gradients look masked, so the white-box figures "
                    "overstate its robustness",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return RobustnessResult(eps_list, accuracy, blackbox, n)
