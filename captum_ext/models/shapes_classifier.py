"""Classifiers of the shapes world: a small CNN (the default) and a held-out ResNet-18."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from captum_ext._utils.validation import check_choice
from captum_ext.fillers.image_space import ImageSpace

#: The activations the classifier can be built with (none has parameters, so the same
#: state dict loads into every variant).
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}


def _block(in_channels: int, out_channels: int, activation: type[nn.Module]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        activation(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        activation(),
    )


class ShapesClassifier(nn.Module):
    """Four conv blocks, global average pooling and a linear layer (multi-label logits).

    Works on any image size >= 16 (global pooling). The last block,
    ``model.features[-1]``, is the natural layer for Grad-CAM.

    Parameters
    ----------
    num_classes : int
        Number of outputs K.
    width : int
        Channels of the first block (then 2x, 4x, 4x).
    activation : {"relu", "silu", "gelu"}
        The non-linearity after every BatchNorm (default ``"relu"``).

    Examples
    --------
    >>> import torch
    >>> ShapesClassifier(num_classes=6)(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 6])
    >>> ShapesClassifier(width=4, activation="silu").features[0][2]
    SiLU()
    """

    def __init__(self, num_classes: int = 6, width: int = 32, *, activation: str = "relu") -> None:
        super().__init__()
        act = ACTIVATIONS[check_choice(activation, "activation", ACTIVATIONS)]
        widths = (width, 2 * width, 4 * width, 4 * width)
        self.features = nn.Sequential(
            _block(3, widths[0], act),
            nn.MaxPool2d(2),
            _block(widths[0], widths[1], act),
            nn.MaxPool2d(2),
            _block(widths[1], widths[2], act),
            nn.MaxPool2d(2),
            _block(widths[2], widths[3], act),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(widths[3], num_classes)

    @property
    def gradcam_layer(self) -> nn.Module:
        """The last convolutional block."""
        return self.features[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


class ImageNetNormalized(nn.Module):
    """A classifier behind an ImageNet-style normalisation, fed shapes-world inputs.

    The inputs (in the shapes world's normalised space) are mapped back to pixels and
    normalised with ImageNet's mean and standard deviation before ``net``: the pipeline
    of a torchvision model wrapped the usual way. It is the shapes world's held-out
    architecture (``arch="resnet18"``): nothing in the project is tuned on it.

    Parameters
    ----------
    net : nn.Module
        The classifier on ImageNet-normalised images.
    space : ImageSpace
        The input space (the shapes world's by default).

    Examples
    --------
    >>> import torch
    >>> from torchvision.models import resnet18
    >>> ImageNetNormalized(resnet18(num_classes=6))(torch.zeros(1, 3, 96, 96)).shape
    torch.Size([1, 6])
    """

    def __init__(self, net: nn.Module, space: ImageSpace | None = None) -> None:
        super().__init__()
        from captum_ext.data.shapes import shapes_space

        self.net = net
        self.space = space or shapes_space()
        self.imagenet = ImageSpace.imagenet()

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.imagenet.to_inputs(self.space.to_pixels(x)))


#: Architectures of the shapes-world classifiers (``arch`` of the exported config).
ARCHS = ("shapes", "resnet18")


def build_shapes_world_classifier(arch: str = "shapes", **config: Any) -> nn.Module:
    """The classifier an exported config describes: :class:`ShapesClassifier` (``"shapes"``,
    ``num_classes``, ``width``, ``activation``) or torchvision's ResNet-18 behind
    :class:`ImageNetNormalized` (``"resnet18"``, ``num_classes``).

    Examples
    --------
    >>> type(build_shapes_world_classifier(num_classes=6, width=4)).__name__
    'ShapesClassifier'
    >>> type(build_shapes_world_classifier("resnet18", num_classes=6).net).__name__
    'ResNet'
    """
    if check_choice(arch, "arch", ARCHS) == "resnet18":
        from torchvision.models import resnet18

        return ImageNetNormalized(resnet18(weights=None, num_classes=config["num_classes"]))
    return ShapesClassifier(**config)
