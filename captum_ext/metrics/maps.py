"""Turning attributions into comparable per-pixel maps."""

from __future__ import annotations

import torch
from torch import Tensor

from captum_ext.metrics._checks import check_map


def attribution_map(attributions: Tensor) -> Tensor:
    """The per-pixel map ``(N, 1, H, W)`` of an attribution.

    ``(N, C, H, W)`` attributions (Captum's output) are averaged over channels;
    ``(N, 1, H, W)`` and ``(N, H, W)`` maps are returned as ``(N, 1, H, W)``.

    Examples
    --------
    >>> attribution_map(torch.tensor([[[[1.0]], [[3.0]]]])).flatten()
    tensor([2.])
    """
    return check_map(attributions, "attributions")


def normalize_map(attributions: Tensor) -> Tensor:
    """Clamp at 0 and divide by each example's maximum (positive evidence, on one scale).

    The result is in [0, 1] with maximum 1, except for maps with no positive value,
    which become all zero. Used before IoU, soft accuracy, MAE and thresholding.

    Parameters
    ----------
    attributions : Tensor
        ``(N, C, H, W)`` attributions or ``(N, 1, H, W)`` / ``(N, H, W)`` maps.

    Returns
    -------
    Tensor
        ``(N, 1, H, W)`` maps in [0, 1].

    Examples
    --------
    >>> normalize_map(torch.tensor([[[-1.0, 1.0, 2.0]]]))
    tensor([[[[0.0000, 0.5000, 1.0000]]]])
    """
    maps = attribution_map(attributions).clamp_min(0)
    peak = maps.amax(dim=(1, 2, 3), keepdim=True)
    return torch.where(peak > 0, maps / torch.where(peak > 0, peak, 1), torch.zeros_like(maps))
