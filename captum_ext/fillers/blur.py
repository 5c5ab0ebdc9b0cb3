"""Gaussian-blurred copy of the image as reference."""

from __future__ import annotations

import math

from torch import Tensor

from captum_ext._utils.image_scale import scaled_length
from captum_ext._utils.validation import check_non_negative
from captum_ext.fillers.base import Filler


def gaussian_kernel_size(sigma: float, height: int, width: int) -> int:
    """Odd kernel size covering +-3 sigma, capped so reflect padding fits the image."""
    size = 2 * math.ceil(3 * sigma) + 1
    cap = 2 * min(height, width) - 1
    return max(1, min(size, cap))


def blur(images: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of an ``(N, C, H, W)`` batch with reflect padding (sigma in pixels).

    Blurring commutes with per-channel normalisation, so the result is the same in
    input space and pixel space.

    Examples
    --------
    >>> import torch
    >>> blur(torch.ones(1, 3, 8, 8), 2.0).allclose(torch.ones(1, 3, 8, 8))
    True
    """
    if sigma == 0:
        return images
    # Imported here: torchvision takes about a second to import, and only blurring needs it.
    from torchvision.transforms.v2.functional import gaussian_blur

    k = gaussian_kernel_size(sigma, images.shape[-2], images.shape[-1])
    return gaussian_blur(images, kernel_size=[k, k], sigma=[sigma, sigma])


class Blur(Filler):
    """Fill with a Gaussian blur of the image itself (MP's and RTIS's reference).

    Parameters
    ----------
    sigma : float, optional
        Standard deviation in pixels. Default: Fong & Vedaldi's and Agarwal et al.'s 10
        pixels at 224 x 224, scaled with the image side (``10 * sqrt(H * W) / 224``,
        2.9 pixels at 64 x 64). The kernel covers +-3 sigma, capped at twice the image
        side.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 3, 32, 32)
    >>> Blur(10.0).reference(x).shape
    torch.Size([2, 3, 32, 32])
    >>> torch.equal(Blur().reference(x), Blur(10.0 * 32 / 224).reference(x))
    True
    """

    def __init__(self, sigma: float | None = None) -> None:
        self.sigma = None if sigma is None else check_non_negative(sigma, "sigma")

    def reference(self, inputs, holes=None, *, generator=None) -> Tensor:
        h, w = inputs.shape[-2:]
        return blur(inputs, scaled_length(10.0, h, w) if self.sigma is None else self.sigma)

    def __repr__(self) -> str:
        return "Blur()" if self.sigma is None else f"Blur(sigma={self.sigma})"
