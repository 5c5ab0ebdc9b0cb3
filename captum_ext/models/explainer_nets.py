"""Explainer networks: segmentation models that output one logit map per class.

Any torchvision-style segmentation model (returning a tensor or a dict with an ``"out"``
entry) becomes an Explainer network with :class:`SegmentationExplainer`, which upsamples
its ``(N, K, h, w)`` logits to the input size. :func:`build_explainer_net` rebuilds a
network from the small ``config`` dict stored in checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from captum_ext._utils.validation import check_positive_int

PathLike = str | Path


def segmentation_logits(outputs: object, size: tuple[int, int]) -> Tensor:
    """Turn a segmentation model's outputs into ``(N, K, H, W)`` logits at ``size``.

    Parameters
    ----------
    outputs : Tensor or dict
        ``(N, K, h, w)`` logits, or a dict holding them under ``"out"`` (torchvision).
    size : (int, int)
        The input's ``(H, W)``; logits of another size are bilinearly upsampled.

    Examples
    --------
    >>> segmentation_logits({"out": torch.zeros(1, 4, 8, 8)}, (32, 32)).shape
    torch.Size([1, 4, 32, 32])
    """
    if isinstance(outputs, Mapping):
        if "out" not in outputs:
            raise ValueError(
                "the explainer network returned a dict without an 'out' entry; got keys "
                f"{sorted(outputs)}"
            )
        outputs = outputs["out"]
    if not isinstance(outputs, Tensor) or outputs.dim() != 4:
        shape = tuple(outputs.shape) if isinstance(outputs, Tensor) else type(outputs).__name__
        raise ValueError(f"the explainer network must return (N, K, h, w) logits, got {shape}")
    if tuple(outputs.shape[-2:]) != tuple(size):
        outputs = F.interpolate(outputs, size=size, mode="bilinear", align_corners=False)
    return outputs


class SegmentationExplainer(nn.Module):
    """Wrap a segmentation network so it maps ``(N, C, H, W)`` to ``(N, K, H, W)`` logits.

    Parameters
    ----------
    net : nn.Module
        Any segmentation model returning ``(N, K, h, w)`` logits or ``{"out": logits}``.
    config : dict, optional
        The arguments of :func:`build_explainer_net` that rebuild ``net`` (kept so a
        checkpoint can be reloaded; ``None`` for user networks).

    Examples
    --------
    >>> from torch import nn
    >>> net = SegmentationExplainer(nn.Conv2d(3, 5, 3, stride=2, padding=1))
    >>> net(torch.zeros(2, 3, 16, 16)).shape
    torch.Size([2, 5, 16, 16])
    """

    def __init__(self, net: nn.Module, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise TypeError(f"`net` must be an nn.Module, got {type(net).__name__}")
        self.net = net
        self.config = dict(config) if config is not None else None

    def forward(self, x: Tensor) -> Tensor:
        return segmentation_logits(self.net(x), (x.shape[-2], x.shape[-1]))


def as_explainer_net(net: nn.Module) -> SegmentationExplainer:
    """``net`` itself if it already is a :class:`SegmentationExplainer`, else wrapped."""
    return net if isinstance(net, SegmentationExplainer) else SegmentationExplainer(net)


# --------------------------------------------------------------------------- U-Net
def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """A small U-Net (Ronneberger et al. 2015) for CPU-sized Explainers.

    ``depth`` max-pool stages with ``width * 2**i`` channels, bilinear upsampling and
    skip connections; any input size works (upsampled maps are resized to the skip's
    size when a side is not divisible by ``2**depth``).

    Parameters
    ----------
    num_classes : int
        Output channels K.
    width : int
        Channels of the first stage.
    depth : int
        Number of down-sampling stages.
    in_channels : int
        Input channels.
    mask_prior : float, optional
        Initial mask value: the output bias starts at ``logit(mask_prior)`` so that
        training starts from small masks (e.g. 0.1, the typical object area) instead of
        0.5 everywhere (PyTorch's default initialisation).

    Examples
    --------
    >>> UNet(num_classes=6, width=8, depth=2)(torch.zeros(1, 3, 30, 30)).shape
    torch.Size([1, 6, 30, 30])
    """

    def __init__(
        self,
        num_classes: int,
        width: int = 32,
        depth: int = 3,
        in_channels: int = 3,
        mask_prior: float | None = None,
    ) -> None:
        super().__init__()
        check_positive_int(num_classes, "num_classes")
        check_positive_int(width, "width")
        check_positive_int(depth, "depth")
        widths = [width * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList(
            [_conv_block(in_channels, widths[0])]
            + [_conv_block(widths[i], widths[i + 1]) for i in range(depth)]
        )
        self.decoders = nn.ModuleList(
            [_conv_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth))]
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        if mask_prior is not None:
            if not 0.0 < mask_prior < 1.0:
                raise ValueError(f"`mask_prior` must be in (0, 1), got {mask_prior}")
            nn.init.constant_(self.head.bias, math.log(mask_prior / (1.0 - mask_prior)))

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for decoder in self.decoders:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = decoder(torch.cat([x, skip], dim=1))
        return self.head(x)


# --------------------------------------------------------------------------- factories
def _load_backbone(backbone: nn.Module, path: PathLike, drop_prefixes: tuple, strip: str) -> None:
    """Load a local classification state dict (e.g. ImageNet weights) into a backbone."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {
        k[len(strip) :] if strip and k.startswith(strip) else k: v
        for k, v in state.items()
        if not k.startswith(drop_prefixes)
    }
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    if unexpected or len(missing) == len(backbone.state_dict()):
        raise ValueError(
            f"{path} does not match the backbone: {len(missing)} missing and "
            f"{len(unexpected)} unexpected keys (e.g. {(unexpected or missing)[:3]})"
        )


def deeplabv3_resnet50_explainer(
    num_classes: int, weights_backbone: PathLike | None = None
) -> nn.Module:
    """The paper's Explainer: torchvision ``deeplabv3_resnet50`` trained from scratch.

    Parameters
    ----------
    num_classes : int
        One output map per class.
    weights_backbone : path, optional
        A local torchvision ResNet-50 state dict (e.g. ImageNet weights you have on
        disk) loaded into the backbone; nothing is downloaded. The authors' code
        (<https://github.com/stevenstalder/NN-Explainer>) used an ImageNet backbone; the
        paper text says "from scratch".
    """
    # torchvision's model zoo takes seconds to import: only the factories that use it do.
    from torchvision.models.segmentation import deeplabv3_resnet50

    net = deeplabv3_resnet50(
        weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False
    )
    if weights_backbone is not None:
        _load_backbone(net.backbone, weights_backbone, ("fc.",), "")
    return net


def lraspp_mobilenet_v3_large_explainer(
    num_classes: int, weights_backbone: PathLike | None = None
) -> nn.Module:
    """A light Explainer: torchvision ``lraspp_mobilenet_v3_large``.

    Parameters
    ----------
    num_classes : int
        One output map per class.
    weights_backbone : path, optional
        A local torchvision MobileNetV3-Large state dict loaded into the backbone.
    """
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes)
    if weights_backbone is not None:
        _load_backbone(net.backbone, weights_backbone, ("classifier.",), "features.")
    return net


def unet_explainer(
    num_classes: int, width: int = 32, depth: int = 3, mask_prior: float | None = None
) -> nn.Module:
    """The built-in :class:`UNet`, for CPU work."""
    return UNet(num_classes, width=width, depth=depth, mask_prior=mask_prior)


#: Architecture name -> factory ``f(num_classes, **kwargs) -> nn.Module``.
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "deeplabv3_resnet50": deeplabv3_resnet50_explainer,
    "lraspp_mobilenet_v3_large": lraspp_mobilenet_v3_large_explainer,
    "unet": unet_explainer,
}


def build_explainer_net(
    arch: str = "deeplabv3_resnet50", num_classes: int = 20, **kwargs: Any
) -> SegmentationExplainer:
    """Build an Explainer network by name.

    Parameters
    ----------
    arch : {"deeplabv3_resnet50", "lraspp_mobilenet_v3_large", "unet"}
        Architecture (the paper's is ``deeplabv3_resnet50``).
    num_classes : int
        Number of classes K (output maps).
    **kwargs
        Arguments of the architecture's factory (``weights_backbone`` for the
        torchvision models; ``width``, ``depth`` for the U-Net).

    Examples
    --------
    >>> net = build_explainer_net("unet", num_classes=3, width=8, depth=2)
    >>> net(torch.zeros(1, 3, 32, 32)).shape, net.config["arch"]
    (torch.Size([1, 3, 32, 32]), 'unet')
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"`arch` must be one of {tuple(ARCHITECTURES)}, got {arch!r}")
    check_positive_int(num_classes, "num_classes")
    net = ARCHITECTURES[arch](num_classes, **kwargs)
    # The backbone file is only needed to initialise training; a rebuilt network loads
    # its trained weights anyway, so the path is not part of the stored config.
    config = {"arch": arch, "num_classes": num_classes, **kwargs}
    config.pop("weights_backbone", None)
    return SegmentationExplainer(net, config)


def _strip_prefix(state_dict: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}


def load_explainer_net(
    path: PathLike, net: nn.Module | None = None, map_location: str | torch.device = "cpu"
) -> SegmentationExplainer:
    """Load an Explainer network from a file (``torch.load(weights_only=True)``).

    Accepted files:

    * a weights file written by ``captum-ext train-explainer --export``
      (``{"config", "state_dict"}``);
    * a Lightning checkpoint of :class:`~captum_ext.training.explainer_module.ExplainerModule`
      (weights under ``model.``, architecture in ``hyper_parameters``);
    * a plain ``state_dict`` of the network, which needs ``net`` (the architecture).

    Parameters
    ----------
    path : path
        The file.
    net : nn.Module, optional
        The network to load the weights into; default: rebuilt from the file's config.
    map_location : str or torch.device
        Device of the returned network.

    Returns
    -------
    SegmentationExplainer
        In eval mode.
    """
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict):
        raise ValueError(f"{path} does not hold a state dict or checkpoint")
    config: dict[str, Any] | None = None
    if "state_dict" in payload and "hyper_parameters" in payload:  # Lightning checkpoint
        hp = payload["hyper_parameters"]
        config = {
            "arch": hp["arch"],
            "num_classes": hp["num_classes"],
            **(hp.get("arch_kwargs") or {}),
        }
        config.pop("weights_backbone", None)
        state = _strip_prefix(payload["state_dict"], "model.")
    elif "state_dict" in payload:  # captum-ext weights file
        config = payload.get("config")
        state = payload["state_dict"]
    else:
        state = payload
    state = {k: v.float() if v.dtype == torch.float16 else v for k, v in state.items()}
    if net is None:
        if not config:
            raise ValueError(
                f"{path} is a plain state dict without an architecture; pass `net`, the "
                "network to load it into"
            )
        net = build_explainer_net(**config)
    wrapped = as_explainer_net(net)
    # Accept state dicts of the bare network as well as of the wrapper.
    if set(state) != set(wrapped.state_dict()):
        state = {f"net.{k}": v for k, v in state.items()}
    wrapped.load_state_dict(state)
    return wrapped.to(map_location).eval()
