"""A small mask-aware U-Net for image inpainting (gated convolutions, Yu et al. 2019)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from captum_ext._utils.validation import check_choice
from captum_ext.inpainters.opencv import METHODS, OpenCVInpainter


class GatedConv2d(nn.Module):
    """Gated convolution: ``ELU(conv_f(x)) * sigmoid(conv_g(x))``.

    The learned gate lets every layer tell valid pixels from holes (DeepFill v2's
    generalisation of partial convolutions), so a hole filled with zeros is not read as
    black content.

    Examples
    --------
    >>> GatedConv2d(4, 8)(torch.zeros(1, 4, 16, 16)).shape
    torch.Size([1, 8, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            2 * out_channels,
            kernel_size,
            stride=stride,
            padding=dilation * (kernel_size - 1) // 2,
            dilation=dilation,
        )
        self.act = nn.ELU()

    def forward(self, x: Tensor) -> Tensor:
        features, gate = self.conv(x).chunk(2, dim=1)
        return self.act(features) * torch.sigmoid(gate)


class InpaintingUNet(nn.Module):
    """Gated-convolution U-Net mapping (image with holes, hole mask[, noise]) to an image.

    The network sees the image with its holes zeroed (or, with ``prefill``, filled by
    classical inpainting), the hole mask and, optionally,
    ``noise_channels`` channels of Gaussian noise (a source of randomness to synthesise
    texture grain). To keep it cheap on CPU (about the cost of a small classifier's
    forward pass), the first convolution has stride 2 and most of the work happens at
    half resolution and below; a last gated convolution at full resolution sees the
    upsampled features together with the input, so fine texture can be written back. A
    dilated bottleneck widens the receptive field (the whole image at 64 x 64). Any
    image size works: inputs are padded (replicate) to a multiple of ``2 ** depth`` and
    cropped back.

    Parameters
    ----------
    width : int
        Channels at half resolution (levels double up to ``4 * width``).
    depth : int
        Number of stride-2 stages (the stem counts as one), >= 1.
    dilations : sequence of int
        Dilations of the bottleneck's gated convolutions.
    noise_channels : int
        Channels of input noise (0 disables it).
    prefill : {"telea", "ns"}, optional
        Start from a classical fill: the holes are first filled by OpenCV's Telea or
        Navier-Stokes inpainting (:class:`~captum_ext.inpainters.OpenCVInpainter`, the
        ``inpaint`` extra), the network sees that image instead of zeroed holes and adds
        a correction to it (the last layer starts at zero, so an untrained network returns
        the classical fill). The network then only has to learn what the classical fill
        misses (continuing stripes, texture grain) instead of the whole fill.

    Examples
    --------
    >>> net = InpaintingUNet(width=8)
    >>> holes = torch.zeros(2, 1, 40, 40, dtype=torch.bool)
    >>> net(torch.rand(2, 3, 40, 40), holes).shape
    torch.Size([2, 3, 40, 40])
    """

    def __init__(
        self,
        width: int = 16,
        depth: int = 3,
        dilations: Sequence[int] = (2, 4),
        noise_channels: int = 1,
        prefill: str | None = None,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"`depth` must be >= 1, got {depth}")
        self.depth = depth
        self.noise_channels = noise_channels
        self.prefill = None if prefill is None else check_choice(prefill, "prefill", METHODS)
        # Built at the first call: loading the weights does not need OpenCV.
        self._classical: Callable[[Tensor, Tensor], Tensor] | None = None
        in_channels = 3 + 1 + noise_channels
        widths = [width * 2 ** min(i, 2) for i in range(depth)]
        self.stem = GatedConv2d(in_channels, widths[0], kernel_size=5, stride=2)
        self.down = nn.ModuleList(
            nn.Sequential(
                GatedConv2d(widths[i], widths[i + 1], stride=2),
                GatedConv2d(widths[i + 1], widths[i + 1]),
            )
            for i in range(depth - 1)
        )
        self.bottleneck = nn.Sequential(
            *(GatedConv2d(widths[-1], widths[-1], dilation=d) for d in dilations)
        )
        self.up = nn.ModuleList(
            GatedConv2d(widths[i + 1] + widths[i], widths[i]) for i in range(depth - 1)
        )
        self.refine = GatedConv2d(widths[0] + in_channels, max(8, width // 2))
        self.head = nn.Conv2d(max(8, width // 2), 3, 3, padding=1)
        if prefill is not None:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def classical_fill(self, images: Tensor, holes: Tensor) -> Tensor:
        """OpenCV's fill (``prefill``) of the holes, which the network corrects."""
        if self.prefill is None:
            raise ValueError("this network has no `prefill`: it fills the holes from zero")
        if self._classical is None:
            self._classical = OpenCVInpainter(self.prefill)
        return self._classical(images.detach().clamp(0, 1), holes.bool())

    def forward(
        self, images: Tensor, holes: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Predict the full image ``(N, 3, H, W)`` in [0, 1] (callers keep the valid pixels).

        Parameters
        ----------
        images : Tensor
            ``(N, 3, H, W)`` pixels in [0, 1].
        holes : Tensor
            ``(N, 1, H, W)`` bool or float, 1 = hole.
        generator : torch.Generator, optional
            Source of the input noise (CPU by default); the same generator state gives
            the same output.
        """
        n, _, h, w = images.shape
        base = None if self.prefill is None else self.classical_fill(images, holes)
        holes = holes.to(images.dtype)
        parts = [images * (1 - holes) if base is None else base, holes]
        if self.noise_channels:
            device = generator.device if generator is not None else torch.device("cpu")
            noise = torch.randn((n, self.noise_channels, h, w), generator=generator, device=device)
            parts.append(noise.to(images.device, images.dtype))
        x = torch.cat(parts, dim=1)
        multiple = 2**self.depth
        pad_h, pad_w = (-h) % multiple, (-w) % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips = [self.stem(x)]
        for level in self.down:
            skips.append(level(skips[-1]))
        y = self.bottleneck(skips.pop())
        for level in reversed(self.up):
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="nearest")
            y = level(torch.cat([y, skip], dim=1))
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        y = self.refine(torch.cat([y, x], dim=1))
        if base is None:
            return torch.sigmoid(self.head(y))[..., :h, :w]
        return (base + self.head(y)[..., :h, :w]).clamp(0, 1)
