"""Fill binary holes of many copies of a few images with a filler, batch by batch.

Used wherever an image is perturbed many times (perturbation methods, deletion /
insertion curves, saliency metric, entropy of references): a filler whose reference
does not depend on the holes is called once per image, not once per copy.
"""

from __future__ import annotations

import torch
from torch import Tensor

from captum_ext.fillers.base import Filler, check_filler


class Perturber:
    """Fill binary holes of (copies of) ``inputs`` with a filler, batch by batch.

    Fillers whose reference does not depend on the holes (constant, blur, noise) get
    their reference computed once per example, so random references are the same for
    every copy of an example; hole-dependent fillers (inpainting) are called per chunk.
    """

    def __init__(
        self, filler: Filler, inputs: Tensor, generator: torch.Generator | None = None
    ) -> None:
        self.filler = check_filler(filler)
        self.inputs = inputs
        self.generator = generator
        self.reference: Tensor | None = None
        if not filler.needs_holes:
            with torch.no_grad():
                self.reference = filler.reference(inputs, generator=generator)
            if self.reference.shape != inputs.shape:
                raise ValueError(
                    f"{type(filler).__name__} returned a reference of shape "
                    f"{tuple(self.reference.shape)} for inputs of shape {tuple(inputs.shape)}"
                )
            if not bool(torch.isfinite(self.reference).all()):
                raise ValueError(f"{type(filler).__name__} returned a non-finite reference")

    def __call__(self, index: Tensor, holes: Tensor) -> Tensor:
        """Copies of ``inputs[index]`` with ``holes`` ``(B, 1, H, W)`` bool filled."""
        images = self.inputs[index]
        if self.reference is not None:
            return fill_holes(images, self.reference[index], holes)
        with torch.no_grad():
            return self.filler(images, holes, generator=self.generator)

    def tiled(self, holes: Tensor) -> Tensor:
        """``P`` filled copies of the whole batch, perturbation-major.

        ``holes`` ``(P, N, 1, H, W)`` bool gives ``(P * N, C, H, W)`` images, copy
        ``j * N + n`` being example ``n`` with holes ``holes[j, n]``: the result of
        :meth:`__call__` without gathering copies of the inputs and reference first.
        """
        if self.reference is not None:
            return fill_holes(self.inputs, self.reference, holes).flatten(0, 1)
        index = torch.arange(self.inputs.shape[0], device=holes.device).repeat(holes.shape[0])
        return self(index, holes.flatten(0, 1))


def fill_holes(images: Tensor, reference: Tensor, holes: Tensor) -> Tensor:
    """``where(holes, reference, images)`` for finite tensors (broadcasting), via ``lerp``.

    ``lerp`` with a 0 / 1 weight returns ``images`` / ``reference`` exactly for finite
    values (up to the sign of a zero); on CPU it is about 4 times faster than ``where``
    on large batches of copies.

    Examples
    --------
    >>> holes = torch.tensor([[[[True, False]]]])
    >>> fill_holes(torch.ones(1, 1, 1, 2), torch.zeros(1, 1, 1, 2), holes)
    tensor([[[[0., 1.]]]])
    """
    return torch.lerp(images, reference, holes.to(images.dtype))
