"""Pointing game and box localisation error.

The pointing game follows TorchRay's ``PointingGame`` (Fong et al. 2019,
https://github.com/facebookresearch/TorchRay, ``torchray/benchmark/pointing_game.py``)
exactly; ``docs/metrics.md`` says what is followed and the one scaling rule added.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from captum_ext._utils.validation import (
    TargetLike,
    check_non_negative,
    check_positive_int,
    check_same_device,
)
from captum_ext.metrics._checks import (
    check_fraction,
    check_map,
    check_targets,
    check_unit_mask,
)
from captum_ext.metrics.maps import normalize_map

#: Pointing-game tolerance of Zhang et al. (2016) and TorchRay, in pixels at 224 x 224.
POINTING_TOLERANCE = 15
REFERENCE_SIZE = 224


def scaled_tolerance(
    image_size: int | Sequence[int],
    tolerance: float = POINTING_TOLERANCE,
    reference_size: int = REFERENCE_SIZE,
) -> int:
    """The pointing game's pixel tolerance for images of ``image_size``.

    ``tolerance`` pixels at ``reference_size`` scaled by the image's shorter side
    (``min(H, W) / reference_size``), rounded half up to an integer as TorchRay's
    tolerance is, and at least 1 (with TorchRay's strict ``<``, tolerance 1 accepts
    the peak pixel itself and 0 would accept nothing).

    Parameters
    ----------
    image_size : int or (int, int)
        The side of a square image, or ``(H, W)``.
    tolerance : float
        Pixels at ``reference_size`` (15, TorchRay's default).
    reference_size : int
        The size ``tolerance`` is given at (224).

    Returns
    -------
    int

    Examples
    --------
    >>> scaled_tolerance(224), scaled_tolerance(64), scaled_tolerance((96, 128)), scaled_tolerance(8)
    (15, 4, 6, 1)
    """
    check_non_negative(tolerance, "tolerance")
    check_positive_int(reference_size, "reference_size")
    if isinstance(image_size, (tuple, list, torch.Size)):
        if len(image_size) != 2:
            raise ValueError(f"`image_size` must be an int or (H, W), got {image_size}")
        for side in image_size:
            check_positive_int(side, "image_size")
        side = min(image_size)
    else:
        side = check_positive_int(image_size, "image_size")
    return max(1, math.floor(tolerance * side / reference_size + 0.5))


def _check_boxes(
    boxes: object, box_labels: object | None, target: TargetLike, maps: Tensor
) -> tuple[Tensor, Tensor]:
    """``(N, M, 4)`` boxes and the ``(N, M)`` bool mask of those of the target class."""
    if not isinstance(boxes, Tensor):
        raise TypeError(f"`boxes` must be a torch.Tensor, got {type(boxes).__name__}")
    if boxes.dim() == 2:
        boxes = boxes.unsqueeze(1)
    if boxes.dim() != 3 or boxes.shape[2] != 4 or boxes.shape[0] != maps.shape[0]:
        raise ValueError(
            f"`boxes` must have shape ({maps.shape[0]}, M, 4) (x0, y0, x1, y1), got "
            f"{tuple(boxes.shape)}"
        )
    if not boxes.is_floating_point():
        boxes = boxes.float()
    if not bool(torch.isfinite(boxes).all()):
        raise ValueError("`boxes` contains NaN or infinite values")
    check_same_device(maps, boxes, names=("attributions", "boxes"))
    if box_labels is None:
        selected = torch.ones(boxes.shape[:2], dtype=torch.bool, device=boxes.device)
    else:
        if not isinstance(box_labels, Tensor) or box_labels.is_floating_point():
            raise TypeError("`box_labels` must be an integer tensor (N, M), -1 for padding")
        if box_labels.shape != boxes.shape[:2]:
            raise ValueError(
                f"`box_labels` must have shape {tuple(boxes.shape[:2])}, got "
                f"{tuple(box_labels.shape)}"
            )
        check_same_device(boxes, box_labels, names=("boxes", "box_labels"))
        targets = check_targets(target, maps)
        selected = box_labels == targets.view(-1, 1)
    missing = (~selected.any(dim=1)).nonzero().flatten()
    if missing.numel():
        raise ValueError(f"`boxes` has no box of the target class for example {int(missing[0])}")
    return boxes, selected


def pointing_game(
    attributions: Tensor,
    *,
    masks: Tensor | None = None,
    boxes: Tensor | None = None,
    box_labels: Tensor | None = None,
    target: TargetLike = None,
    tolerance: float | None = None,
) -> Tensor:
    """Pointing game (Zhang et al. 2016) as TorchRay plays it: is the map's maximum on the object?

    The point is the pixel of the map's maximum (``torch.argmax`` over the flattened
    map: the first one in raster order on ties). A hit when some ground-truth pixel
    lies at a Euclidean distance strictly below ``tolerance`` from it, distances taken
    between integer pixel coordinates (TorchRay's ``(v - y)**2 + (u - x)**2 <
    tolerance**2``).

    Parameters
    ----------
    attributions : Tensor
        ``(N, C, H, W)`` attributions or ``(N, 1, H, W)`` / ``(N, H, W)`` maps.
    masks : Tensor, optional
        ``(N, H, W)`` / ``(N, 1, H, W)`` ground-truth masks of the target class
        (bool or {0, 1} float). Give either ``masks`` or ``boxes``.
    boxes : Tensor, optional
        ``(N, M, 4)`` ground-truth boxes ``(x0, y0, x1, y1)`` in pixels, end exclusive
        (the box covers columns ``x0..x1-1``); scored as the mask of their pixels.
    box_labels : Tensor, optional
        ``(N, M)`` class of each box (-1 for padding); with ``target``, only boxes of
        the target class count. Without it every box counts.
    target : int, list of int or Tensor, optional
        Target class per example (needed with ``box_labels``).
    tolerance : float, optional
        Pixels, > 0 (1: the point must be on the object). Default
        :func:`scaled_tolerance` of the map's size: TorchRay's 15 px at 224, 4 px at 64.

    Returns
    -------
    Tensor
        ``(N,)`` bool hits; :func:`pointing_accuracy` turns them into the accuracies.

    Examples
    --------
    >>> maps = torch.zeros(1, 8, 8); maps[0, 1, 2] = 1
    >>> gt = torch.zeros(1, 8, 8); gt[0, 5:, 5:] = 1
    >>> # The nearest object pixel (5, 5) is at distance 5 from the peak (1, 2).
    >>> pointing_game(maps, masks=gt, tolerance=5), pointing_game(maps, masks=gt, tolerance=5.01)
    (tensor([False]), tensor([True]))
    """
    maps = check_map(attributions, "attributions")
    n, _, h, w = maps.shape
    if tolerance is None:
        tolerance = scaled_tolerance((h, w))
    elif check_non_negative(tolerance, "tolerance") == 0:
        raise ValueError("`tolerance` must be > 0 (1 = the point must be on the object), got 0")
    if (masks is None) == (boxes is None):
        raise ValueError("give exactly one of `masks` and `boxes` as ground truth")
    peak = maps.flatten(1).argmax(dim=1)
    row, col = (peak // w).to(maps.dtype), (peak % w).to(maps.dtype)
    if masks is not None:
        gt = check_unit_mask(masks, "masks", maps, like_name="attributions") > 0.5
        if not bool(gt.flatten(1).any(dim=1).all()):
            raise ValueError("`masks` has an example with an empty ground-truth mask")
        rows = torch.arange(h, device=maps.device, dtype=maps.dtype).view(1, h, 1)
        cols = torch.arange(w, device=maps.device, dtype=maps.dtype).view(1, 1, w)
        dist2 = (rows - row.view(n, 1, 1)) ** 2 + (cols - col.view(n, 1, 1)) ** 2
        return (gt[:, 0] & (dist2 < tolerance**2)).flatten(1).any(dim=1)
    boxes, selected = _check_boxes(boxes, box_labels, target, maps)
    # Distance from the peak to the nearest pixel of the box (pixels x0..x1-1, y0..y1-1).
    cx, cy = col.view(n, 1) + 0.5, row.view(n, 1) + 0.5
    nx = torch.minimum(torch.maximum(cx, boxes[..., 0] + 0.5), boxes[..., 2] - 0.5)
    ny = torch.minimum(torch.maximum(cy, boxes[..., 1] + 0.5), boxes[..., 3] - 0.5)
    dist2 = (cx - nx) ** 2 + (cy - ny) ** 2
    return ((dist2 < tolerance**2) & selected).any(dim=1)


class PointingScores(NamedTuple):
    """The two pointing accuracies of a set of image-class pairs."""

    #: Mean over classes of each class's hit rate (TorchRay's ``accuracy``, the papers').
    mean_over_classes: float
    #: Hit rate over all pairs (weighs frequent classes more).
    per_pair: float


def _as_vector(values: object, name: str) -> Tensor:
    vector = values if isinstance(values, Tensor) else torch.as_tensor(values)
    if vector.dim() != 1:
        raise ValueError(
            f"`{name}` must be one value per pair, shape (P,), got {tuple(vector.shape)}"
        )
    return vector


def pointing_accuracy(hits: object, classes: object) -> PointingScores:
    """Both pointing accuracies of the pairs' hits: mean over classes and per pair.

    The mean over classes is TorchRay's ``PointingGame.accuracy``: each class's hits
    over its pairs, then the mean of these accuracies over the classes that have pairs.

    Parameters
    ----------
    hits : Tensor or sequence
        ``(P,)`` hit (1 / True) or miss (0 / False) of each image-class pair, e.g. from
        :func:`pointing_game`.
    classes : Tensor or sequence of int
        ``(P,)`` class of each pair.

    Returns
    -------
    PointingScores
        ``(mean_over_classes, per_pair)``; NaN for both when there is no pair.

    Examples
    --------
    >>> pointing_accuracy([1, 1, 1, 0], [0, 0, 0, 1])
    PointingScores(mean_over_classes=0.5, per_pair=0.75)
    """
    hits, classes = _as_vector(hits, "hits"), _as_vector(classes, "classes")
    if hits.shape != classes.shape:
        raise ValueError(
            f"`hits` and `classes` must have one value per pair, got {hits.numel()} and "
            f"{classes.numel()}"
        )
    if hits.numel() == 0:
        return PointingScores(math.nan, math.nan)
    if classes.is_floating_point() or classes.dtype == torch.bool:
        raise TypeError(f"`classes` must hold integer class ids, got {classes.dtype}")
    hits = hits.double().cpu()
    index = torch.unique(classes.cpu(), return_inverse=True)[1]
    count = torch.zeros(int(index.max()) + 1, dtype=torch.float64)
    per_class = count.index_add(0, index, hits) / count.index_add(0, index, torch.ones_like(hits))
    return PointingScores(float(per_class.mean()), float(hits.mean()))


def threshold_boxes(attributions: Tensor, alpha: float = 0.5) -> Tensor:
    """Tightest box around the pixels of the normalised map ``>= alpha``.

    Maps are clamped at 0 and divided by their maximum (:func:`normalize_map`), so
    ``alpha`` is a fraction of the maximum. A map with no pixel above the threshold
    (no positive value) gets the whole image.

    Returns
    -------
    Tensor
        ``(N, 4)`` float boxes ``(x0, y0, x1, y1)``, end exclusive.

    Examples
    --------
    >>> m = torch.zeros(1, 6, 6); m[0, 1, 2] = 1.0; m[0, 3, 4] = 0.6; m[0, 5, 5] = 0.2
    >>> threshold_boxes(m, 0.5)
    tensor([[2., 1., 5., 4.]])
    """
    alpha = check_fraction(alpha, "alpha")
    maps = normalize_map(attributions)[:, 0]
    n, h, w = maps.shape
    region = maps >= alpha
    region = torch.where(region.flatten(1).any(dim=1).view(n, 1, 1), region, True)
    cols, rows = region.any(dim=1), region.any(dim=2)  # (N, W), (N, H)
    xs = torch.arange(w, device=maps.device)
    ys = torch.arange(h, device=maps.device)
    x0 = torch.where(cols, xs, w).amin(dim=1)
    x1 = torch.where(cols, xs, -1).amax(dim=1) + 1
    y0 = torch.where(rows, ys, h).amin(dim=1)
    y1 = torch.where(rows, ys, -1).amax(dim=1) + 1
    return torch.stack([x0, y0, x1, y1], dim=1).to(maps.dtype)


def box_iou_pairs(boxes: Tensor, others: Tensor) -> Tensor:
    """IoU of each ``(N, 4)`` box with each of its example's ``(N, M, 4)`` boxes, ``(N, M)``.

    Examples
    --------
    >>> box_iou_pairs(torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[[1.0, 0, 3, 2]]]))
    tensor([[0.3333]])
    """
    a = boxes.unsqueeze(1)
    iw = torch.minimum(a[..., 2], others[..., 2]) - torch.maximum(a[..., 0], others[..., 0])
    ih = torch.minimum(a[..., 3], others[..., 3]) - torch.maximum(a[..., 1], others[..., 1])
    inter = iw.clamp_min(0) * ih.clamp_min(0)

    def area(b: Tensor) -> Tensor:
        return (b[..., 2] - b[..., 0]).clamp_min(0) * (b[..., 3] - b[..., 1]).clamp_min(0)

    union = area(a) + area(others) - inter
    return torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(inter))


def localization_error(
    attributions: Tensor,
    boxes: Tensor,
    *,
    box_labels: Tensor | None = None,
    target: TargetLike = None,
    alpha: float = 0.5,
    iou_threshold: float = 0.5,
) -> Tensor:
    """Box localisation error: 1 unless the map's box overlaps a ground-truth box.

    The predicted box is the tightest box around the normalised map thresholded at
    ``alpha * max`` (:func:`threshold_boxes`); the example is localised when its IoU
    with some ground-truth box of the target class is ``>= iou_threshold`` (0.5, the
    ImageNet rule). Choose ``alpha`` on held-out images with :func:`choose_alpha`.

    Parameters
    ----------
    attributions : Tensor
        ``(N, C, H, W)`` attributions or ``(N, 1, H, W)`` / ``(N, H, W)`` maps.
    boxes : Tensor
        ``(N, M, 4)`` ground-truth boxes ``(x0, y0, x1, y1)``, end exclusive.
    box_labels, target : Tensor, optional
        Box classes (-1 = padding) and target class per example, as in
        :func:`pointing_game`.
    alpha : float
        Threshold as a fraction of each map's maximum.
    iou_threshold : float
        Minimum IoU for a hit.

    Returns
    -------
    Tensor
        ``(N,)`` float errors (0 = localised, 1 = not).

    Examples
    --------
    >>> m = torch.zeros(1, 8, 8); m[0, 2:6, 2:6] = 1
    >>> localization_error(m, torch.tensor([[[2.0, 2.0, 6.0, 7.0]]]))
    tensor([0.])
    """
    maps = check_map(attributions, "attributions")
    check_fraction(iou_threshold, "iou_threshold")
    boxes, selected = _check_boxes(boxes, box_labels, target, maps)
    iou = box_iou_pairs(threshold_boxes(maps, alpha), boxes)
    hit = ((iou >= iou_threshold) & selected).any(dim=1)
    return (~hit).to(maps.dtype)


def choose_alpha(
    attributions: Tensor,
    boxes: Tensor,
    *,
    box_labels: Tensor | None = None,
    target: TargetLike = None,
    alphas: Sequence[float] | None = None,
    iou_threshold: float = 0.5,
) -> tuple[float, Tensor]:
    """The threshold ``alpha`` with the lowest mean localisation error on held-out maps.

    Parameters
    ----------
    attributions, boxes, box_labels, target, iou_threshold
        As :func:`localization_error`, for held-out images.
    alphas : sequence of float, optional
        Candidates (default 0.00, 0.05, ..., 0.95).

    Returns
    -------
    alpha : float
        The best candidate (the smallest one on ties).
    errors : Tensor
        ``(A,)`` mean error of every candidate.

    Examples
    --------
    >>> m = torch.zeros(1, 8, 8); m[0, 2:6, 2:6] = 1; m[0, 0, 0] = 0.3
    >>> alpha, errors = choose_alpha(m, torch.tensor([[[2.0, 2.0, 6.0, 6.0]]]), alphas=[0.1, 0.5])
    >>> alpha, errors
    (0.5, tensor([1., 0.]))
    """
    candidates = [i / 20 for i in range(20)] if alphas is None else list(alphas)
    if not candidates:
        raise ValueError("`alphas` must hold at least one threshold")
    errors = torch.stack(
        [
            localization_error(
                attributions,
                boxes,
                box_labels=box_labels,
                target=target,
                alpha=a,
                iou_threshold=iou_threshold,
            ).mean()
            for a in candidates  # a handful of thresholds, each batched over all maps
        ]
    )
    return float(candidates[int(errors.argmin())]), errors
