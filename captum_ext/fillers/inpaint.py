"""Adapter from an inpainter (``inpainter(images, holes) -> images``) to a filler."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from captum_ext.fillers.base import Filler
from captum_ext.fillers.image_space import ImageSpace

#: Pixels this far outside [0, 1] (float round-off of a normalise/denormalise round
#: trip) are clamped; anything further is an error.
PIXEL_TOLERANCE = 1e-3


@runtime_checkable
class Inpainter(Protocol):
    """``inpainter(images, holes) -> images``.

    ``images``: ``(N, 3, H, W)`` float in [0, 1] pixel space; ``holes``: ``(N, 1, H, W)``
    bool, ``True`` = fill. Pixels outside the holes must come back unchanged.
    """

    def __call__(self, images: Tensor, holes: Tensor) -> Tensor: ...


def to_unit_range(pixels: Tensor, name: str = "images", purpose: str = "inpainting") -> Tensor:
    """Clamp float round-off into [0, 1]; reject images that are really outside it.

    ``purpose`` names what needs pixel space, for the error message.
    """
    lo, hi = float(pixels.min()), float(pixels.max())
    if lo < -PIXEL_TOLERANCE or hi > 1 + PIXEL_TOLERANCE:
        raise ValueError(
            f"`{name}` must be in [0, 1] pixel space for {purpose}, got values in "
            f"[{lo:.3g}, {hi:.3g}]; pass the classifier's ImageSpace(mean, std) if the "
            "inputs are normalised"
        )
    return pixels.clamp(0.0, 1.0)


class Inpaint(Filler):
    """Fill the holes with an inpainter's output (the "-G" methods of Agarwal et al.).

    The reference depends on the hole mask; with a soft mask ``m`` (1 = keep), methods
    pass ``holes = m < 0.5``. Inpainters take RGB images; single-channel (grey) images are
    inpainted as three equal channels and the result's channel mean is the reference.

    Parameters
    ----------
    inpainter : Inpainter
        Any callable following the protocol (see :class:`Inpainter`).
    space : ImageSpace, optional
        The classifier's normalisation; inputs are converted to pixels for the
        inpainter and back.
    check : bool
        Verify that the inpainter kept the pixels outside the holes and returned the
        right shape (cheap; on by default).

    Examples
    --------
    >>> class MeanInpainter:
    ...     def __call__(self, images, holes):
    ...         return torch.where(holes, images.mean(dim=(2, 3), keepdim=True), images)
    >>> x = torch.rand(2, 3, 8, 8)
    >>> holes = torch.zeros(2, 1, 8, 8, dtype=torch.bool); holes[:, :, :4] = True
    >>> Inpaint(MeanInpainter())(x, holes).shape
    torch.Size([2, 3, 8, 8])
    """

    needs_holes = True

    def __init__(
        self,
        # `| Any`: jsonargparse reads a protocol with only `__call__` as a function type
        # and would refuse a `class_path` inpainter in a config (a training preset).
        inpainter: Inpainter | Any,
        space: ImageSpace | None = None,
        check: bool = True,
    ) -> None:
        if not callable(inpainter):
            raise TypeError(
                f"`inpainter` must be callable as inpainter(images, holes), got "
                f"{type(inpainter).__name__}"
            )
        self.inpainter = inpainter
        self.space = space or ImageSpace()
        self.check = check

    def reference(self, inputs, holes=None, *, generator=None) -> Tensor:
        if holes is None:
            raise ValueError("Inpaint needs the `holes` mask to compute its reference")
        channels = inputs.shape[1]
        if channels not in (1, 3):
            raise ValueError(
                f"Inpaint needs RGB (3-channel) or grey (1-channel) images, got shape "
                f"{tuple(inputs.shape)}"
            )
        pixels = to_unit_range(self.space.to_pixels(inputs.detach()))
        if channels == 1:
            pixels = pixels.repeat(1, 3, 1, 1)
        with torch.no_grad():
            filled = self.inpainter(pixels, holes)
        if self.check:
            self._check_output(pixels, holes, filled)
        if channels == 1:
            filled = filled.mean(dim=1, keepdim=True)
        return self.space.to_inputs(filled.to(inputs.dtype))

    def _check_output(self, pixels: Tensor, holes: Tensor, filled: object) -> None:
        name = type(self.inpainter).__name__
        if not isinstance(filled, Tensor) or filled.shape != pixels.shape:
            shape = tuple(filled.shape) if isinstance(filled, Tensor) else type(filled).__name__
            raise ValueError(
                f"inpainter {name} returned {shape} for images of shape {tuple(pixels.shape)}"
            )
        if filled.device != pixels.device:
            raise ValueError(
                f"inpainter {name} returned images on {filled.device}, inputs are on "
                f"{pixels.device}"
            )
        keep = ~holes.expand_as(pixels)
        if not torch.equal(filled[keep], pixels[keep]):
            raise ValueError(
                f"inpainter {name} changed pixels outside the holes; an inpainter must "
                "return the input pixels unchanged where holes is False"
            )

    def __repr__(self) -> str:
        return f"Inpaint({self.inpainter!r}, space={self.space!r})"
