"""Argument checks shared by the metrics (maps, ground truth, label sets)."""

from __future__ import annotations

import torch
from torch import Tensor

from captum_ext._utils.validation import (
    TargetLike,
    check_inputs,
    check_same_device,
    check_tensor,
    format_target,
)


def check_map(
    value: object, name: str, like: Tensor | None = None, *, like_name: str = "inputs"
) -> Tensor:
    """Per-pixel map ``(N, 1, H, W)`` from an attribution or map.

    Accepts ``(N, C, H, W)`` attributions (averaged over channels, Captum's
    channel-expanded output gives back its map), ``(N, 1, H, W)`` maps and ``(N, H, W)``
    maps. With ``like`` (an ``(N, C, H, W)`` or ``(N, 1, H, W)`` tensor), ``N``, ``H``,
    ``W`` and the device must match.
    """
    if isinstance(value, Tensor) and like is not None:
        check_same_device(like, value, names=(like_name, name))
    value = check_tensor(value, name)
    if value.dim() == 3:
        value = value.unsqueeze(1)
    if value.dim() != 4:
        raise ValueError(
            f"`{name}` must have shape (N, H, W), (N, 1, H, W) or (N, C, H, W), got "
            f"{tuple(value.shape)}"
        )
    if like is not None:
        n, _, h, w = like.shape
        if (value.shape[0], value.shape[2], value.shape[3]) != (n, h, w):
            raise ValueError(
                f"`{name}` must cover the {like_name}' batch and pixels ({n}, *, {h}, {w}), "
                f"got {tuple(value.shape)}"
            )
    if value.shape[1] != 1:
        value = value.mean(dim=1, keepdim=True)
    return value


def check_unit_mask(
    value: object, name: str, like: Tensor | None = None, *, like_name: str = "masks"
) -> Tensor:
    """A ``(N, 1, H, W)`` float mask with values in [0, 1] (bool masks are converted).

    Accepts ``(N, H, W)`` or ``(N, 1, H, W)``; with ``like`` the shape and device must
    match ``like``'s ``(N, 1, H, W)``.
    """
    if isinstance(value, Tensor) and like is not None:
        check_same_device(like, value, names=(like_name, name))
    if isinstance(value, Tensor) and value.dtype == torch.bool:
        value = value.float() if like is None else value.to(like.dtype)
    value = check_tensor(value, name)
    if value.dim() == 3:
        value = value.unsqueeze(1)
    if value.dim() != 4 or value.shape[1] != 1:
        raise ValueError(
            f"`{name}` must have shape (N, H, W) or (N, 1, H, W), got {tuple(value.shape)}"
        )
    if like is not None:
        if value.shape != like.shape:
            raise ValueError(
                f"`{name}` must have the shape of `{like_name}` {tuple(like.shape)}, got "
                f"{tuple(value.shape)}"
            )
    if value.numel() and (float(value.min()) < 0 or float(value.max()) > 1):
        raise ValueError(
            f"`{name}` must have values in [0, 1], got [{float(value.min()):.3g}, "
            f"{float(value.max()):.3g}]; normalise maps first (e.g. `normalize_map`)"
        )
    return value


def check_valid(value: object, like: Tensor, name: str = "valid") -> Tensor:
    """Optional ``(N, H, W)`` / ``(N, 1, H, W)`` bool mask of pixels that count."""
    if not isinstance(value, Tensor):
        raise TypeError(f"`{name}` must be a bool torch.Tensor, got {type(value).__name__}")
    if value.dtype != torch.bool:
        raise TypeError(f"`{name}` must be a bool tensor (True = pixel counts), got {value.dtype}")
    if value.dim() == 3:
        value = value.unsqueeze(1)
    if value.shape != like.shape:
        raise ValueError(
            f"`{name}` must have shape {tuple(like.shape)} (or without the channel "
            f"dimension), got {tuple(value.shape)}"
        )
    check_same_device(like, value, names=("masks", name))
    return value


def check_images(inputs: object, name: str = "inputs") -> Tensor:
    """An ``(N, C, H, W)`` float, finite, non-empty image batch."""
    return check_inputs(inputs, name)


def check_targets(target: TargetLike, inputs: Tensor, num_classes: int | None = None) -> Tensor:
    """Captum-style ``target`` as a ``(N,)`` long tensor on the inputs' device."""
    return format_target(target, inputs.shape[0], num_classes, inputs.device)


def check_label_sets(labels: object, inputs: Tensor, name: str = "labels") -> Tensor:
    """A label set Y per example: ``(N, K)`` multi-hot (bool or {0, 1}) -> bool ``(N, K)``.

    A Captum-style target (int, list of int, ``(N,)`` integer tensor) is also accepted
    and becomes a one-class label set once the number of classes is known; here it is
    returned as a ``(N,)`` long tensor and turned into one-hot by :func:`label_matrix`.
    """
    if isinstance(labels, Tensor) and labels.dim() == 2:
        if labels.dtype != torch.bool:
            if not bool(((labels == 0) | (labels == 1)).all()):
                raise ValueError(f"`{name}` as an (N, K) tensor must be multi-hot (0 or 1)")
            labels = labels != 0
        if labels.shape[0] != inputs.shape[0]:
            raise ValueError(
                f"`{name}` has {labels.shape[0]} rows but the batch has {inputs.shape[0]} examples"
            )
        check_same_device(inputs, labels, names=("inputs", name))
        if not bool(labels.any(dim=1).all()):
            raise ValueError(f"`{name}` has an example with an empty label set")
        return labels
    return check_targets(labels, inputs)  # type: ignore[arg-type]


def label_matrix(labels: Tensor, num_classes: int, name: str = "labels") -> Tensor:
    """Bool ``(N, K)`` label sets from :func:`check_label_sets`' output."""
    if labels.dim() == 2:
        if labels.shape[1] != num_classes:
            raise ValueError(
                f"`{name}` has {labels.shape[1]} classes but the model has {num_classes} outputs"
            )
        return labels
    format_target(labels, labels.shape[0], num_classes, labels.device)
    return torch.nn.functional.one_hot(labels, num_classes).bool()


def check_fraction(value: object, name: str, *, closed: tuple[bool, bool] = (True, True)) -> float:
    """A real number in [0, 1] (open ends where ``closed`` says so)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a number, got {type(value).__name__}")
    lo_ok = value >= 0 if closed[0] else value > 0
    hi_ok = value <= 1 if closed[1] else value < 1
    if not (lo_ok and hi_ok):
        raise ValueError(f"`{name}` must be in [0, 1], got {value}")
    return float(value)
