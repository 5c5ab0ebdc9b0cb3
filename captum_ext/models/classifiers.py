"""Classifiers an Explainer can be trained against, rebuilt by name from local weights."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet50, vgg16

PathLike = str | Path


def read_state_dict(path: PathLike, prefix: str | None = None) -> dict[str, torch.Tensor]:
    """Read a state dict from a file with ``torch.load(weights_only=True)``.

    Accepts a plain state dict, a captum-ext weights file (``{"config", "state_dict"}``)
    or a Lightning checkpoint (``{"state_dict": ...}``); with ``prefix``, only the keys
    starting with it are kept, the prefix removed (e.g. ``"model."`` for a
    LightningModule that holds its network as ``self.model``). float16 tensors come
    back as float32.
    """
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
        payload = payload["state_dict"]
    if not isinstance(payload, dict):
        raise ValueError(f"{path} does not hold a state dict")
    if prefix:
        payload = {k[len(prefix) :]: v for k, v in payload.items() if k.startswith(prefix)}
        if not payload:
            raise ValueError(f"{path} has no weights under the prefix {prefix!r}")
    return {k: v.float() if v.dtype == torch.float16 else v for k, v in payload.items()}


def _torchvision(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    def build(num_classes: int, checkpoint: PathLike | None, prefix: str | None) -> nn.Module:
        if checkpoint is None:
            raise ValueError(
                "`classifier_checkpoint` is required for a torchvision classifier: the "
                "Explainer explains a trained (multi-label, fine-tuned) classifier"
            )
        model = factory(weights=None, num_classes=num_classes)
        model.load_state_dict(read_state_dict(checkpoint, prefix))
        return model

    return build


def _shapes(num_classes: int, checkpoint: PathLike | None, prefix: str | None) -> nn.Module:
    from captum_ext.models.pretrained import load_shapes_classifier

    model = load_shapes_classifier(checkpoint)
    with torch.no_grad():
        outputs = model(torch.zeros(1, 3, 32, 32)).shape[1]
    if outputs != num_classes:
        raise ValueError(
            f"the shapes classifier has {outputs} classes, `num_classes` is {num_classes}"
        )
    return model


#: Classifier name -> builder ``f(num_classes, checkpoint, prefix)``.
CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {
    "shapes": _shapes,
    "vgg16": _torchvision(vgg16),
    "resnet50": _torchvision(resnet50),
}


def build_classifier(
    name: str, num_classes: int, checkpoint: PathLike | None = None, prefix: str | None = None
) -> nn.Module:
    """Rebuild a trained classifier, in eval mode.

    Parameters
    ----------
    name : {"shapes", "vgg16", "resnet50"}
        ``shapes``: the shapes-world CNN (default: the shipped checkpoint);
        ``vgg16``/``resnet50``: torchvision architectures with ``num_classes`` outputs,
        whose weights are read from ``checkpoint``.
    num_classes : int
        Number of classes.
    checkpoint : path, optional
        Weights file (see :func:`read_state_dict`).
    prefix : str, optional
        Key prefix of the network's weights inside ``checkpoint``.

    Examples
    --------
    >>> model = build_classifier("vgg16", 20)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: `classifier_checkpoint` is required ...
    """
    if name not in CLASSIFIERS:
        raise ValueError(f"`classifier` must be one of {tuple(CLASSIFIERS)}, got {name!r}")
    return CLASSIFIERS[name](num_classes, checkpoint, prefix).eval()
