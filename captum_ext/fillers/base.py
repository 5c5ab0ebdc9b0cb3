"""The removal operator's reference image ("filler") shared by every mask method."""

from __future__ import annotations

import abc

import torch
from torch import Tensor

from captum_ext._utils.validation import check_inputs, check_mask


class Filler(abc.ABC):
    """A reference image ``r`` for the removal operator ``m * x + (1 - m) * r``.

    Subclasses implement :meth:`reference`. Calling a filler with a binary hole mask
    returns the filled batch: hole pixels (``True``) come from the reference, all other
    pixels are the inputs, bit for bit.

    Everything works on whole batches, in the classifier's input space, on the inputs'
    device. Random fillers take a ``torch.Generator`` for reproducibility.
    """

    #: True when the reference depends on the hole mask (inpainting).
    needs_holes: bool = False

    @abc.abstractmethod
    def reference(
        self,
        inputs: Tensor,
        holes: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Return the reference batch ``r`` with the shape of ``inputs``.

        Parameters
        ----------
        inputs : Tensor
            ``(N, C, H, W)`` images in input space.
        holes : Tensor, optional
            ``(N, 1, H, W)`` bool, ``True`` = pixel to remove. Required by fillers whose
            reference depends on the holes (``needs_holes``).
        generator : torch.Generator, optional
            Random source for random references.
        """

    def __call__(
        self, inputs: Tensor, holes: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """Fill the holes of ``inputs``: ``where(holes, reference, inputs)``.

        Examples
        --------
        >>> from captum_ext.fillers import Constant
        >>> x = torch.ones(1, 1, 2, 2)
        >>> holes = torch.tensor([[[[True, False], [False, False]]]])
        >>> Constant(0.0)(x, holes)
        tensor([[[[0., 1.],
                  [1., 1.]]]])
        """
        inputs = check_inputs(inputs)
        holes = check_mask(holes, inputs, "holes", binary=True)
        reference = self.reference(inputs, holes, generator=generator)
        if reference.shape != inputs.shape:
            raise ValueError(
                f"{type(self).__name__} returned a reference of shape "
                f"{tuple(reference.shape)} for inputs of shape {tuple(inputs.shape)}"
            )
        return torch.where(holes, reference, inputs)


def check_filler(filler: object, default: Filler | None = None) -> Filler:
    """Check a ``filler`` argument; None stands for ``default`` where one is given.

    Examples
    --------
    >>> from captum_ext.fillers import Constant
    >>> type(check_filler(None, default=Constant(0.0))).__name__
    'Constant'
    """
    if filler is None and default is not None:
        return default
    if not isinstance(filler, Filler):
        raise TypeError(
            f"`filler` must be a captum_ext.fillers.Filler, got {type(filler).__name__}"
        )
    return filler


def remove(inputs: Tensor, keep: Tensor, reference: Tensor) -> Tensor:
    """The removal operator ``keep * inputs + (1 - keep) * reference``.

    Parameters
    ----------
    inputs : Tensor
        ``(N, C, H, W)`` images.
    keep : Tensor
        ``(N, 1, H, W)`` mask in [0, 1], 1 keeps the pixel (broadcast over channels).
    reference : Tensor
        The filler's reference, same shape as ``inputs``.

    Examples
    --------
    >>> remove(torch.ones(1, 1, 1, 2), torch.tensor([[[[1.0, 0.25]]]]), torch.zeros(1, 1, 1, 2))
    tensor([[[[1.0000, 0.2500]]]])
    """
    return reference + keep * (inputs - reference)
