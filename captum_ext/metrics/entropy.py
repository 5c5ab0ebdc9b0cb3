"""Entropy of the classifier's prediction on reference images (FGVis supplement Table A2)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from captum_ext._utils.forward import batched_outputs, check_model
from captum_ext._utils.scores import entropy
from captum_ext._utils.validation import check_positive_int
from captum_ext.fillers.base import Filler
from captum_ext.fillers.perturber import Perturber
from captum_ext.metrics._checks import check_images


def reference_entropy(
    forward_func: Callable[..., Tensor],
    inputs: Tensor,
    filler: Filler,
    *,
    batch_size: int = 256,
    additional_forward_args: Any = None,
    generator: torch.Generator | None = None,
    show_progress: bool = False,
) -> Tensor:
    """Entropy (nats) of the softmax prediction on each input's reference image.

    A good reference carries little information, so the classifier's softmax on it
    is close to uniform (entropy close to ``log K``, :func:`max_entropy`). Wagner et
    al. average it over 1,000 references of each kind (zero image, Gaussian noise,
    blurred images) and report mean +- std for random ones.

    Parameters
    ----------
    forward_func : callable or nn.Module
        The classifier.
    inputs : Tensor
        ``(N, C, H, W)`` images the references are made from (for a constant or noise
        reference only their shape matters). A hole-dependent filler (inpainting) gets
        the whole image as hole.
    filler : Filler
        The reference, e.g. ``Constant(0)``, ``GaussianNoise(8 / 255)``, ``Blur(sigma)``.
    batch_size : int
        Images per forward pass.
    additional_forward_args : any, optional
        Extra arguments to ``forward_func``.
    generator : torch.Generator, optional
        Random source of random references.
    show_progress : bool
        Show a progress bar.

    Returns
    -------
    Tensor
        ``(N,)`` entropies.

    Examples
    --------
    >>> from torch import nn
    >>> from captum_ext.fillers import Constant
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    >>> nn.init.zeros_(model[1].weight); nn.init.zeros_(model[1].bias)  # doctest: +ELLIPSIS
    Parameter...
    >>> reference_entropy(model, torch.rand(2, 3, 4, 4), Constant(0.0))
    tensor([1.6094, 1.6094])
    """
    inputs = check_images(inputs)
    check_model(forward_func, inputs)
    check_positive_int(batch_size, "batch_size")
    perturb = Perturber(filler, inputs, generator)
    n, _, h, w = inputs.shape

    def build(start: int, stop: int):
        index = torch.arange(start, stop, device=inputs.device)
        holes = torch.ones(stop - start, 1, h, w, dtype=torch.bool, device=inputs.device)
        return perturb(index, holes), index

    outputs = batched_outputs(
        forward_func,
        build,
        n,
        n,
        batch_size,
        additional_forward_args,
        show_progress,
        desc="reference entropy",
    )
    return entropy(outputs.softmax(dim=1))


def max_entropy(num_classes: int) -> float:
    """Entropy of the uniform prediction over ``num_classes`` classes, ``log K`` (nats).

    Examples
    --------
    >>> round(max_entropy(1000), 2)
    6.91
    """
    check_positive_int(num_classes, "num_classes")
    return math.log(num_classes)
