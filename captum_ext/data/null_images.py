"""Object-free images (textures, noise, flat colours): negatives for a robust classifier.

A classifier that never saw an image without objects answers arbitrarily on the
references that attribution methods use (DSSR's uniform noise, FGVis's constant
images): the first shapes-world classifier scored uniform noise as three classes at
once with sigmoid 1.0. Training with a few of these images labelled "no class" makes
references carry no evidence, as the papers assume.
"""

from __future__ import annotations

import torch
from torch import Tensor

from captum_ext.data.shapes_world import _backgrounds
from captum_ext.fillers.image_space import ImageSpace

#: Kinds of null image, drawn uniformly.
NULL_KINDS = ("texture", "uniform_noise", "gaussian_noise", "constant")


def null_images(
    num_images: int,
    image_size: int,
    space: ImageSpace | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``(N, 3, S, S)`` object-free images in the input space of ``space``.

    Each image is, with equal probability, a shapes-world background texture, uniform
    noise in [0, 1], Gaussian noise around a random colour (std 0.05..0.3) or a flat
    random colour (pixel space, then mapped to input space).

    Examples
    --------
    >>> x = null_images(8, 32, generator=torch.Generator().manual_seed(0))
    >>> x.shape, bool((x >= 0).all() and (x <= 1).all())
    (torch.Size([8, 3, 32, 32]), True)
    """
    n, s = num_images, image_size
    shape = (n, 3, s, s)
    kind = torch.randint(0, len(NULL_KINDS), (n, 1, 1, 1), generator=generator)
    colour = torch.rand(n, 3, 1, 1, generator=generator)
    texture, _ = _backgrounds(n, s, generator)
    uniform = torch.rand(shape, generator=generator)
    std = 0.05 + 0.25 * torch.rand(n, 1, 1, 1, generator=generator)
    gaussian = colour + std * torch.randn(shape, generator=generator)
    constant = colour.expand(shape)
    pixels = torch.where(
        kind == 0,
        texture,
        torch.where(kind == 1, uniform, torch.where(kind == 2, gaussian, constant)),
    ).clamp(0, 1)
    return (space or ImageSpace()).to_inputs(pixels)


def replace_with_null_images(
    images: Tensor,
    labels: Tensor,
    probability: float,
    space: ImageSpace | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """With ``probability`` per image, swap it for a :func:`null_images` image, labels 0."""
    n = images.shape[0]
    replace = (torch.rand(n, generator=generator) < probability).to(images.device)
    nulls = null_images(n, images.shape[-1], space, generator).to(images.device, images.dtype)
    out_images = torch.where(replace[:, None, None, None], nulls, images)
    out_labels = torch.where(replace[:, None], torch.zeros_like(labels), labels)
    return out_images, out_labels
