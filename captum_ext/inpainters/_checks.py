"""Argument checks and helpers shared by the inpainters (the inpainter protocol)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from captum_ext._utils.validation import check_inputs, check_mask


def check_inpaint_args(images: object, holes: object) -> tuple[Tensor, Tensor]:
    """Validate an inpainter call: ``(N, 3, H, W)`` float pixels in [0, 1], bool holes.

    Raises
    ------
    TypeError, ValueError
        Naming ``images`` or ``holes`` and what was expected.

    Examples
    --------
    >>> images, holes = check_inpaint_args(torch.rand(2, 3, 8, 8), torch.zeros(2, 1, 8, 8).bool())
    >>> images.shape, holes.shape
    (torch.Size([2, 3, 8, 8]), torch.Size([2, 1, 8, 8]))
    """
    images = check_inputs(images, "images")
    if images.shape[1] != 3:
        raise ValueError(
            f"`images` must have 3 (RGB) channels for inpainting, got shape "
            f"{tuple(images.shape)} (the Inpaint filler also takes grey images)"
        )
    lo, hi = float(images.min()), float(images.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"`images` must be pixels in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; convert "
            "normalised inputs with ImageSpace.to_pixels (the Inpaint filler does this)"
        )
    holes = check_mask(holes, images, "holes", binary=True)
    return images, holes


def chunks(total: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``size`` items covering ``range(total)``.

    Examples
    --------
    >>> [(s.start, s.stop) for s in chunks(5, 2)]
    [(0, 2), (2, 4), (4, 5)]
    """
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


def composite(images: Tensor, holes: Tensor, filled: Tensor) -> Tensor:
    """Keep ``images`` outside the holes bit for bit, take ``filled`` inside."""
    return torch.where(holes, filled.to(images.dtype), images)
