"""Image, mask and overlay renderings of attribution maps, in [0, 1] RGB."""

from __future__ import annotations

import matplotlib
import torch
from torch import Tensor

from captum_ext.fillers.image_space import ImageSpace
from captum_ext.metrics import normalize_map


def display_images(images: Tensor, space: ImageSpace | None = None) -> Tensor:
    """``(N, 3, H, W)`` images in [0, 1] for display.

    With ``space`` the inputs are mapped back to pixels; without it each image is
    min-max rescaled (the inputs' normalisation is unknown). One-channel images are
    repeated to RGB; other channel counts show their first three channels.
    """
    if space is not None:
        pixels = space.to_pixels(images).clamp(0, 1)
    else:
        low = images.amin(dim=(1, 2, 3), keepdim=True)
        high = images.amax(dim=(1, 2, 3), keepdim=True)
        pixels = (images - low) / (high - low).clamp_min(1e-12)
    if pixels.shape[1] == 1:
        return pixels.expand(-1, 3, -1, -1)
    return pixels[:, :3]


def colorize(maps: Tensor, cmap: str = "jet") -> Tensor:
    """``(N, 3, H, W)`` colour-mapped maps.

    Maps are clamped at 0 and divided by each map's maximum
    (:func:`captum_ext.metrics.normalize_map`), then coloured with a matplotlib
    colormap.

    Examples
    --------
    >>> colorize(torch.rand(2, 1, 4, 4)).shape
    torch.Size([2, 3, 4, 4])
    """
    lut = torch.as_tensor(
        matplotlib.colormaps[cmap](range(256))[:, :3], dtype=torch.float32, device=maps.device
    )
    levels = (normalize_map(maps)[:, 0] * 255).round().long()  # (N, H, W)
    return lut[levels].permute(0, 3, 1, 2)


def render(
    images: Tensor,
    maps: Tensor,
    space: ImageSpace | None = None,
    cmap: str = "jet",
    alpha: float = 0.5,
) -> dict[str, Tensor]:
    """The three renderings the mask logger writes, each ``(N, 3, H, W)`` in [0, 1].

    Returns
    -------
    dict
        ``images`` (the inputs), ``masks`` (colour-mapped maps) and ``overlays``
        (``(1 - alpha) * image + alpha * mask``), all on the CPU.
    """
    pixels = display_images(images.detach().float(), space).cpu()
    heat = colorize(maps.detach().float(), cmap).cpu()
    return {"images": pixels, "masks": heat, "overlays": (1 - alpha) * pixels + alpha * heat}
