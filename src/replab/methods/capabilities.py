"""What a trained model offers beyond its loss, declared by inheritance and read in one way.

A method class lists the interfaces it implements among its bases (``class BetaVAE(Method,
Decoder, Sampler, LatentKL)``); the evaluation protocol, the figures and the command line ask
``isinstance(model, Decoder)`` and never look for attributes. Each interface is an abstract
class: a class that declares it but lacks one of its methods cannot be instantiated.

- :class:`Encoder`: ``encode(x) -> [n, dim]``, the representation. Every method but a plain GAN.
- :class:`Decoder`: ``decode(z) -> images in [0, 1]``; ``latents(x)`` (the code ``decode`` takes;
  ``encode`` unless overridden), ``reconstruct(x)`` and ``latent_range(x)`` have defaults.
- :class:`Sampler`: ``sample(n)`` draws from the model's prior.
- :class:`LatentKL`: ``latent_kl(x) -> [dim]``, the mean KL of each latent (orders traversals).
- :class:`TokenVectors`: ``token_vectors() -> [vocab, dim]``, one vector per token id.
- :class:`Segmenter`: ``decompose(x)``, an object model's soft masks [n, K, H, W] and each
  slot's image (the ``segmentation`` part scores the masks' argmax and draws the slots).
- :class:`ViewPredictor`: a scene model's ``represent(views, poses)`` and
  ``predict_views(views, poses, query_poses)`` (the ``view_prediction`` part scores them). Its
  code needs the views' poses, which ``Encoder.encode(x)`` cannot take.

Here too, the one helper that encodes many inputs in chunks (:func:`encode_in_batches`), which
the run directory and every evaluation part share.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch


class Encoder(ABC):
    """A representation: ``encode(x) -> [n, dim]`` for inputs of the training data's shape."""

    @abstractmethod
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The representation of a batch, [n, dim]."""


class Decoder(ABC):
    """A decoder from latents back to images in [0, 1] (probabilities or means)."""

    @abstractmethod
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images [n, C, H, W] in [0, 1] from latents [n, latent_dim]."""

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """The code ``decode`` inverts; the representation itself unless a model's ``encode``
        returns something else (a pooled representation, say)."""
        return self.encode(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.latents(x))

    def latent_range(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Per-latent traversal bounds ``(lo[d], hi[d])`` for latents without a unit prior;
        None (the default) means -3..3 for every latent."""
        return None


class Sampler(ABC):
    """Draws from the model: ``sample(n) -> [n, C, H, W]``."""

    @abstractmethod
    def sample(self, n: int) -> torch.Tensor:
        """``n`` samples from the model's prior, decoded."""


class LatentKL(ABC):
    """The mean KL divergence of each latent from its prior: which latents carry information."""

    @abstractmethod
    def latent_kl(self, x: torch.Tensor) -> torch.Tensor:
        """Mean KL per latent over the examples ``x``: [latent_dim]."""


class TokenVectors(ABC):
    """One vector per token id (a word space: neighbours, analogies, translation)."""

    @abstractmethod
    def token_vectors(self) -> torch.Tensor:
        """[vocab_size, dim]; row 0 is padding."""


class Segmenter(ABC):
    """An object model: it decomposes an image into K slots, each a mask and the image the slot
    paints; the masks sum to one at every pixel and ``sum_k mask_k * component_k`` is the
    model's reconstruction."""

    @abstractmethod
    def decompose(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks [n, K, H, W] and components [n, K, C, H, W] of a batch of images."""

    def masks(self, x: torch.Tensor) -> torch.Tensor:
        """The slots' soft masks [n, K, H, W]."""
        return self.decompose(x)[0]


class ViewPredictor(ABC):
    """A scene model: a representation of a scene from posed context views, and the views it
    predicts from that representation at new poses."""

    @abstractmethod
    def represent(self, views: torch.Tensor, poses: torch.Tensor) -> torch.Tensor:
        """The scene code [n, D] of context views [n, K, C, H, W] at poses [n, K, 7]."""

    @abstractmethod
    def predict_views(
        self, views: torch.Tensor, poses: torch.Tensor, query_poses: torch.Tensor
    ) -> torch.Tensor:
        """Predicted views [n, Q, C, H, W] at ``query_poses`` [n, Q, 7] from context views
        [n, K, C, H, W] at ``poses``; K may be 0 (the empty representation)."""


def encoded_chunks(
    encode: Callable[[torch.Tensor], torch.Tensor | np.ndarray],
    inputs: Iterable[torch.Tensor],
    dtype=np.float32,
) -> Iterator[np.ndarray]:
    """``encode`` of each input chunk under ``torch.no_grad``, as a NumPy array [n, -1] of
    ``dtype`` (a half-precision code is widened to float32 on the way)."""
    with torch.no_grad():
        for x in inputs:
            z = encode(x)
            if isinstance(z, torch.Tensor):
                z = z.detach().cpu()
                if z.dtype in (torch.bfloat16, torch.float16):
                    z = z.float()
                z = z.numpy()
            z = np.asarray(z, dtype=dtype)
            yield z.reshape(len(z), -1)


def encode_in_batches(
    encode: Callable[[torch.Tensor], torch.Tensor | np.ndarray],
    inputs: Iterable[torch.Tensor],
    dtype=np.float32,
) -> np.ndarray:
    """The codes of every input chunk, concatenated: [total, dim] of ``dtype``."""
    chunks = list(encoded_chunks(encode, inputs, dtype))
    if not chunks:
        return np.zeros((0, 0), dtype=dtype)
    return np.concatenate(chunks)


def model_encoder(model: Encoder, device: torch.device | None = None) -> Callable:
    """``encode`` of a model in eval mode on its own device: the callable the metrics take
    (inputs arrive on the CPU and are moved where the model lives)."""
    if device is None:
        device = next(model.parameters()).device
    model.eval()

    def encode(x) -> torch.Tensor:
        return model.encode(torch.as_tensor(x).to(device))

    return encode


def slices(x: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """``x`` in consecutive chunks of ``batch_size`` rows."""
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size]
