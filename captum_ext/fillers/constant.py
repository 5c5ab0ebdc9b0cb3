"""Constant reference: the papers' "gray" (0 in a normalised input space)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from captum_ext.fillers.base import Filler
from captum_ext.fillers.image_space import ImageSpace


class Constant(Filler):
    """Fill with a constant colour.

    Parameters
    ----------
    value : float or sequence of float
        The colour, one value or one per channel. In input space by default, so
        ``Constant(0)`` on a normalised classifier is the dataset's mean colour.
    space : ImageSpace, optional
        When given, ``value`` is in pixel space [0, 1] (``Constant(0, space)`` is black)
        and is converted to input space.

    Examples
    --------
    >>> x = torch.rand(2, 3, 4, 4)
    >>> Constant(0.0).reference(x).abs().sum().item()
    0.0
    >>> black = Constant(0.0, space=ImageSpace(0.5, 0.25)).reference(x)
    >>> black[0, 0, 0, 0].item()
    -2.0
    """

    def __init__(
        self, value: float | Sequence[float] = 0.0, space: ImageSpace | None = None
    ) -> None:
        self.value = torch.as_tensor(value, dtype=torch.float64).flatten()
        if not bool(torch.isfinite(self.value).all()):
            raise ValueError(f"`value` must be finite, got {self.value.tolist()}")
        self.space = space

    def reference(self, inputs, holes=None, *, generator=None) -> Tensor:
        channels = inputs.shape[1]
        if self.value.numel() not in (1, channels):
            raise ValueError(
                f"`value` has {self.value.numel()} entries but the inputs have {channels} channels"
            )
        colour = self.value.to(inputs.device, inputs.dtype).view(1, -1, 1, 1)
        reference = colour.expand(inputs.shape[0], channels, *inputs.shape[2:])
        if self.space is not None:
            reference = self.space.to_inputs(reference)
        return reference.expand_as(inputs).contiguous()

    def __repr__(self) -> str:
        values = self.value.tolist()
        value = values[0] if len(values) == 1 else values
        space = "" if self.space is None else f", space={self.space!r}"
        return f"Constant({value}{space})"
