"""Segmentation scores of Stalder et al. Table 2: soft accuracy, continuous IoU, MAE.

All three compare a continuous mask ``m`` in [0, 1] with a ground-truth mask ``g``
without thresholding, per image, over the pixels marked ``valid`` (all by default;
VOC's void pixels are excluded this way):

* soft accuracy ``mean(m * g + (1 - m) * (1 - g))``,
* continuous IoU ``sum(min(m, g)) / sum(max(m, g))``,
* MAE ``mean(|m - g|)``.

The sanity rows of the table are the same scores for the all-0, all-0.5 and all-1
masks and the ground truth itself (:func:`sanity_masks`, :func:`sanity_rows`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from captum_ext.metrics._checks import check_unit_mask, check_valid

SANITY_VALUES = {"0": 0.0, "0.5": 0.5, "1": 1.0}


def _prepare(masks: Tensor, ground_truth: Tensor, valid: Tensor | None):
    masks = check_unit_mask(masks, "masks")
    gt = check_unit_mask(ground_truth, "ground_truth", masks).to(masks.dtype)
    weight = torch.ones_like(masks) if valid is None else check_valid(valid, masks).to(masks.dtype)
    return masks, gt, weight


def _valid_count(weight: Tensor) -> Tensor:
    count = weight.sum(dim=(1, 2, 3))
    if bool((count == 0).any()):
        raise ValueError("`valid` marks no pixel of an example as valid")
    return count


def _mean(values: Tensor, weight: Tensor) -> Tensor:
    return (values * weight).sum(dim=(1, 2, 3)) / _valid_count(weight)


def soft_accuracy(masks: Tensor, ground_truth: Tensor, valid: Tensor | None = None) -> Tensor:
    """Pixel accuracy of a continuous mask, ``mean(m * g + (1 - m) * (1 - g))`` per image.

    Parameters
    ----------
    masks : Tensor
        ``(N, 1, H, W)`` / ``(N, H, W)`` masks in [0, 1] (normalise attribution maps
        first with :func:`~captum_ext.metrics.normalize_map`).
    ground_truth : Tensor
        Ground truth of the same shape, bool or float in [0, 1].
    valid : Tensor, optional
        Bool mask of the pixels that count (e.g. not VOC's void label).

    Returns
    -------
    Tensor
        ``(N,)`` accuracies in [0, 1].

    Examples
    --------
    >>> m, g = torch.tensor([[[1.0, 0.5, 0.0, 0.0]]]), torch.tensor([[[1.0, 1.0, 0.0, 1.0]]])
    >>> soft_accuracy(m, g)
    tensor([0.6250])
    """
    m, g, weight = _prepare(masks, ground_truth, valid)
    return _mean(m * g + (1 - m) * (1 - g), weight)


def continuous_iou(masks: Tensor, ground_truth: Tensor, valid: Tensor | None = None) -> Tensor:
    """Continuous IoU ``sum(min(m, g)) / sum(max(m, g))`` per image (1 when both are empty).

    Arguments as :func:`soft_accuracy`.

    Examples
    --------
    >>> m, g = torch.tensor([[[1.0, 0.5, 0.0, 0.0]]]), torch.tensor([[[1.0, 1.0, 0.0, 1.0]]])
    >>> continuous_iou(m, g)
    tensor([0.5000])
    """
    m, g, weight = _prepare(masks, ground_truth, valid)
    _valid_count(weight)
    inter = (torch.minimum(m, g) * weight).sum(dim=(1, 2, 3))
    union = (torch.maximum(m, g) * weight).sum(dim=(1, 2, 3))
    return torch.where(union > 0, inter / union.clamp_min(torch.finfo(union.dtype).tiny), 1.0)


def mean_absolute_error(masks: Tensor, ground_truth: Tensor, valid: Tensor | None = None) -> Tensor:
    """Mean absolute error ``mean(|m - g|)`` per image. Arguments as :func:`soft_accuracy`.

    Examples
    --------
    >>> m, g = torch.tensor([[[1.0, 0.5, 0.0, 0.0]]]), torch.tensor([[[1.0, 1.0, 0.0, 1.0]]])
    >>> mean_absolute_error(m, g)
    tensor([0.3750])
    """
    m, g, weight = _prepare(masks, ground_truth, valid)
    return _mean((m - g).abs(), weight)


def segmentation_scores(
    masks: Tensor, ground_truth: Tensor, valid: Tensor | None = None
) -> dict[str, Tensor]:
    """Soft accuracy, continuous IoU and MAE at once: ``{"accuracy", "iou", "mae"}`` -> ``(N,)``.

    Examples
    --------
    >>> gt = torch.tensor([[[1.0, 0.0]]])
    >>> {k: v.item() for k, v in segmentation_scores(gt, gt).items()}
    {'accuracy': 1.0, 'iou': 1.0, 'mae': 0.0}
    """
    return {
        "accuracy": soft_accuracy(masks, ground_truth, valid),
        "iou": continuous_iou(masks, ground_truth, valid),
        "mae": mean_absolute_error(masks, ground_truth, valid),
    }


def sanity_masks(ground_truth: Tensor) -> dict[str, Tensor]:
    """The masks of Stalder et al.'s sanity rows: ``"0"``, ``"0.5"``, ``"1"`` and ``"G.T."``.

    Returns
    -------
    dict of str to Tensor
        ``(N, 1, H, W)`` float masks.

    Examples
    --------
    >>> list(sanity_masks(torch.ones(1, 2, 2)))
    ['0', '0.5', '1', 'G.T.']
    """
    gt = check_unit_mask(ground_truth, "ground_truth")
    masks = {name: torch.full_like(gt, value) for name, value in SANITY_VALUES.items()}
    masks["G.T."] = gt
    return masks


def sanity_rows(ground_truth: Tensor, valid: Tensor | None = None) -> dict[str, dict[str, Tensor]]:
    """:func:`segmentation_scores` of every :func:`sanity_masks` entry.

    Returns
    -------
    dict of str to dict of str to Tensor
        ``{"0": {"accuracy": (N,), "iou": (N,), "mae": (N,)}, "0.5": ..., "1": ..., "G.T.": ...}``.

    Examples
    --------
    >>> rows = sanity_rows(torch.tensor([[[1.0, 0.0, 0.0, 0.0]]]))
    >>> rows["0"]["accuracy"].item(), rows["1"]["iou"].item(), rows["G.T."]["iou"].item()
    (0.75, 0.25, 1.0)
    """
    return {
        name: segmentation_scores(mask, ground_truth, valid)
        for name, mask in sanity_masks(ground_truth).items()
    }
