"""Declared capabilities: what each method offers, and the one encode-in-batches helper."""

import numpy as np
import pytest
import torch

from replab.methods import method_class
from replab.methods.capabilities import (
    Decoder,
    Encoder,
    LatentKL,
    Sampler,
    TokenVectors,
    encode_in_batches,
    slices,
)


@pytest.mark.parametrize(
    "method, offers, lacks",
    [
        ("beta_vae", (Encoder, Decoder, Sampler, LatentKL), (TokenVectors,)),
        ("draw", (Encoder, Decoder, Sampler, LatentKL), ()),
        ("vq_vae", (Encoder, Decoder), (Sampler, LatentKL)),
        ("bigan", (Encoder, Decoder, Sampler), (LatentKL,)),
        ("gan", (Sampler,), (Encoder, Decoder)),
        ("word2vec", (Encoder, TokenVectors), (Decoder,)),
        ("simclr", (Encoder,), (Decoder, Sampler, TokenVectors)),
    ],
)
def test_methods_declare_what_they_offer(method, offers, lacks):
    cls = method_class(method)
    assert all(issubclass(cls, c) for c in offers)
    assert not any(issubclass(cls, c) for c in lacks)


def test_a_declared_interface_must_be_implemented():
    class Half(torch.nn.Module, Decoder):  # declares a decoder, implements none
        pass

    with pytest.raises(TypeError, match="abstract"):
        Half()


def test_encoding_in_batches_equals_one_call():
    weights = torch.randn(5, 3)

    def encode(x):
        return x @ weights

    x = torch.randn(11, 5)
    codes = encode_in_batches(encode, slices(x, 4), dtype=np.float64)
    assert codes.dtype == np.float64 and codes.shape == (11, 3)
    assert np.allclose(codes, (x @ weights).numpy(), atol=1e-6)
    # bf16 codes are widened, NumPy codes pass through
    assert encode_in_batches(lambda x: x.bfloat16(), [x]).dtype == np.float32
    assert encode_in_batches(lambda x: x.numpy(), [x], np.float64).dtype == np.float64
