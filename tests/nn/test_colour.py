"""sRGB to CIE L*a*b* against published values."""

import torch

from replab.nn.colour import rgb_to_lab

# sRGB (D65) -> CIE Lab. Red, magenta and cyan: the `lab` crate's documented examples
# (docs.rs/lab/0.8.2, rgbs_to_labs); white: MATLAB's rgb2lab documentation; black by definition.
LAB_REFERENCE = [
    ((1.0, 0.0, 0.0), (53.240784, 80.09252, 67.203186)),
    ((1.0, 0.0, 1.0), (60.32421, 98.23433, -60.824894)),
    ((0.0, 1.0, 1.0), (91.11321, -48.08751, -14.131201)),
    ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
]


def test_lab_conversion_matches_published_values():
    rgb = torch.tensor([c for c, _ in LAB_REFERENCE]).view(-1, 3, 1, 1)
    lab = rgb_to_lab(rgb).view(-1, 3)
    expected = torch.tensor([v for _, v in LAB_REFERENCE])
    assert torch.allclose(lab, expected, atol=0.01), lab
