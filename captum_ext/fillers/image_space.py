"""Conversion between a classifier's input space and pixel space [0, 1]."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from captum_ext._utils.validation import check_tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageSpace:
    """Per-channel affine map between input space and pixel space.

    ``inputs = (pixels - mean) / std``. The default (mean 0, std 1) is the identity,
    for classifiers that take [0, 1] pixels directly.

    Parameters
    ----------
    mean, std : float or sequence of float
        Per-channel normalisation constants (one value is broadcast to every channel).

    Examples
    --------
    >>> space = ImageSpace(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    >>> space.to_inputs(torch.ones(1, 3, 2, 2))[0, :, 0, 0]
    tensor([2., 2., 2.])
    >>> space.to_pixels(torch.zeros(1, 3, 1, 1)).flatten()
    tensor([0.5000, 0.5000, 0.5000])
    """

    def __init__(
        self,
        mean: float | Sequence[float] = 0.0,
        std: float | Sequence[float] = 1.0,
    ) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float64).flatten()
        self.std = torch.as_tensor(std, dtype=torch.float64).flatten()
        if self.mean.numel() != self.std.numel() and 1 not in (self.mean.numel(), self.std.numel()):
            raise ValueError(
                f"`mean` and `std` must have the same length, got {self.mean.numel()} and "
                f"{self.std.numel()}"
            )
        if not bool((self.std > 0).all()):
            raise ValueError(f"`std` must be positive, got {self.std.tolist()}")

    @classmethod
    def imagenet(cls) -> ImageSpace:
        """The ImageNet normalisation used by torchvision's pretrained models."""
        return cls(IMAGENET_MEAN, IMAGENET_STD)

    @property
    def is_identity(self) -> bool:
        """True when inputs already are pixels."""
        return bool((self.mean == 0).all() and (self.std == 1).all())

    def _constants(self, images: Tensor):
        channels = images.shape[1]
        for name, value in (("mean", self.mean), ("std", self.std)):
            if value.numel() not in (1, channels):
                raise ValueError(
                    f"ImageSpace `{name}` has {value.numel()} values but the images have "
                    f"{channels} channels"
                )
        shape = (1, -1, 1, 1)
        mean = self.mean.to(images.device, images.dtype).view(shape)
        std = self.std.to(images.device, images.dtype).view(shape)
        return mean, std

    def to_pixels(self, inputs: Tensor) -> Tensor:
        """Map an ``(N, C, H, W)`` batch from input space to pixel space."""
        check_tensor(inputs, "inputs", ndim=4, finite=False)
        if self.is_identity:
            return inputs
        mean, std = self._constants(inputs)
        return inputs * std + mean

    def to_inputs(self, pixels: Tensor) -> Tensor:
        """Map an ``(N, C, H, W)`` batch from pixel space to input space."""
        check_tensor(pixels, "pixels", ndim=4, finite=False)
        if self.is_identity:
            return pixels
        mean, std = self._constants(pixels)
        return (pixels - mean) / std

    def __repr__(self) -> str:
        return f"ImageSpace(mean={self.mean.tolist()}, std={self.std.tolist()})"
