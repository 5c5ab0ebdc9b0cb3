"""Saliency metric of Dabkowski & Gal (2017) and mask saliency of Stalder et al. eq. 9."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from captum_ext._utils.forward import batched_outputs, check_model
from captum_ext._utils.validation import TargetLike, check_choice
from captum_ext.fillers.base import Filler, check_filler
from captum_ext.fillers.constant import Constant
from captum_ext.fillers.perturber import Perturber
from captum_ext.metrics._checks import (
    check_fraction,
    check_images,
    check_label_sets,
    check_map,
    check_targets,
    check_unit_mask,
    label_matrix,
)
from captum_ext.metrics.localization import threshold_boxes

#: Smallest area of both metrics (Dabkowski & Gal's 0.05).
MIN_AREA = 0.05


def log_probabilities(outputs: Tensor, score: str) -> Tensor:
    """``log`` of softmax or sigmoid probabilities of ``(N, K)`` logits, computed stably.

    Examples
    --------
    >>> log_probabilities(torch.tensor([[0.0, 0.0]]), "softmax").exp()
    tensor([[0.5000, 0.5000]])
    """
    check_choice(score, "score", ("softmax", "sigmoid"))
    return F.log_softmax(outputs, dim=1) if score == "softmax" else F.logsigmoid(outputs)


def crop_and_resize(images: Tensor, boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop each image to its box and resize the crop (bilinear), batched.

    Equal to ``F.interpolate(image[..., y0:y1, x0:x1], size, mode="bilinear",
    align_corners=False)`` per image: only pixels inside the box are sampled.

    Parameters
    ----------
    images : Tensor
        ``(N, C, H, W)`` images.
    boxes : Tensor
        ``(N, 4)`` integer-valued boxes ``(x0, y0, x1, y1)``, end exclusive, non-empty.
    size : (int, int)
        Output ``(height, width)``.

    Examples
    --------
    >>> x = torch.arange(16.0).view(1, 1, 4, 4)
    >>> crop_and_resize(x, torch.tensor([[2.0, 0.0, 4.0, 2.0]]), (2, 2))[0, 0]
    tensor([[2., 3.],
            [6., 7.]])
    """
    n, _, h, w = images.shape
    out_h, out_w = size

    def axis(start: Tensor, stop: Tensor, out: int, full: int) -> Tensor:
        # Half-pixel resize of the crop, clamped to its first and last pixel centres.
        length = (stop - start).view(-1, 1)
        u = (torch.arange(out, device=images.device, dtype=images.dtype) + 0.5) * length / out - 0.5
        pos = start.view(-1, 1) + torch.minimum(u.clamp_min(0), length - 1)
        return 2 * pos / max(full - 1, 1) - 1  # grid_sample coordinates, align_corners=True

    boxes = boxes.to(images.dtype)
    gx = axis(boxes[:, 0], boxes[:, 2], out_w, w).view(n, 1, out_w).expand(n, out_h, out_w)
    gy = axis(boxes[:, 1], boxes[:, 3], out_h, h).view(n, out_h, 1).expand(n, out_h, out_w)
    grid = torch.stack([gx, gy], dim=3)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=True)


def saliency_metric(
    forward_func: Callable[..., Tensor],
    inputs: Tensor,
    attributions: Tensor,
    target: TargetLike,
    *,
    alpha: float = 0.5,
    score: str = "softmax",
    min_area: float = MIN_AREA,
    batch_size: int = 256,
    additional_forward_args: Any = None,
    show_progress: bool = False,
) -> Tensor:
    """Saliency metric of Dabkowski & Gal (2017): ``log(max(a, 0.05)) - log p_c(crop)``.

    The map is clamped at 0, divided by its maximum and thresholded at ``alpha``; the
    tightest box around the salient pixels is cropped from the image, resized
    (bilinear) to the input size and classified; ``a`` is the box's area as a fraction
    of the image and ``p_c`` the target's probability on the crop. Lower is better: a
    small box that keeps the class. A map with no salient pixel crops the whole image.
    Crops are cut and resized in one batched call (:func:`crop_and_resize`).

    Parameters
    ----------
    forward_func : callable or nn.Module
        The classifier.
    inputs : Tensor
        ``(N, C, H, W)`` images in the classifier's input space.
    attributions : Tensor
        ``(N, C, H, W)`` attributions or ``(N, 1, H, W)`` / ``(N, H, W)`` maps.
    target : int, list of int or Tensor
        Target class per example.
    alpha : float
        Threshold as a fraction of each map's maximum (not fixed by the paper; 0.5).
    score : {"softmax", "sigmoid"}
        Probabilities of the classifier (``sigmoid`` for multi-label models).
    min_area : float
        Floor of the area term (0.05 in the paper).
    batch_size : int
        Crops per forward pass.
    additional_forward_args : any, optional
        Extra arguments to ``forward_func``.
    show_progress : bool
        Show a progress bar.

    Returns
    -------
    Tensor
        ``(N,)`` saliency metric (natural log).

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    >>> saliency_metric(model, torch.rand(2, 3, 8, 8), torch.rand(2, 8, 8), target=0).shape
    torch.Size([2])
    """
    inputs = check_images(inputs)
    maps = check_map(attributions, "attributions", inputs)
    check_model(forward_func, inputs)
    check_choice(score, "score", ("softmax", "sigmoid"))
    min_area = check_fraction(min_area, "min_area", closed=(False, True))
    targets = check_targets(target, inputs)
    n, _, h, w = inputs.shape
    boxes = threshold_boxes(maps, alpha).to(inputs.dtype)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / (h * w)

    def build(start: int, stop: int):
        index = torch.arange(start, stop, device=inputs.device)
        return crop_and_resize(inputs[start:stop], boxes[start:stop], (h, w)), index

    outputs = batched_outputs(
        forward_func,
        build,
        n,
        n,
        batch_size,
        additional_forward_args,
        show_progress,
        desc="saliency metric",
    )
    check_targets(targets, inputs, outputs.shape[1])
    log_p = log_probabilities(outputs, score).gather(1, targets.view(-1, 1)).squeeze(1)
    return area.clamp_min(min_area).log().to(log_p) - log_p


def mask_saliency(
    forward_func: Callable[..., Tensor],
    inputs: Tensor,
    masks: Tensor,
    labels: Any,
    *,
    filler: Filler | None = None,
    score: str = "softmax",
    min_area: float = MIN_AREA,
    batch_size: int = 256,
    additional_forward_args: Any = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Mask saliency of Stalder et al. eq. 9: ``log(max(A(m), 0.05)) - log sum_{c in Y} p_c``.

    ``A(m)`` is the mask's mean and ``p`` the classifier's probabilities on the masked
    image ``m * x + (1 - m) * r`` (``r`` = the filler's reference; with the default
    ``Constant(0)`` this is ``m * x`` in input space, as the paper). Lower is better.
    The paper does not state whether ``p`` is a softmax or a sigmoid; its sanity rows
    (a sum over the present classes that stays <= 1 on unmasked images) match softmax,
    the default here.

    Parameters
    ----------
    forward_func : callable or nn.Module
        The classifier.
    inputs : Tensor
        ``(N, C, H, W)`` images in the classifier's input space.
    masks : Tensor
        ``(N, 1, H, W)`` / ``(N, H, W)`` masks in [0, 1] (1 = keep); normalise other
        maps first (:func:`~captum_ext.metrics.normalize_map`).
    labels : Tensor, int or list of int
        The label set Y of each example: ``(N, K)`` multi-hot, or one class per
        example (Captum-style target).
    filler : Filler, optional
        The reference ``r`` (default ``Constant(0)``). A hole-dependent filler gets the
        holes ``m < 0.5``.
    score : {"softmax", "sigmoid"}
        Probabilities of the classifier.
    min_area : float
        Floor of the area term (0.05).
    batch_size : int
        Images per forward pass.
    additional_forward_args : any, optional
        Extra arguments to ``forward_func``.
    generator : torch.Generator, optional
        Random source of random fillers.

    Returns
    -------
    Tensor
        ``(N,)`` mask saliency (natural log).

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    >>> mask_saliency(model, torch.rand(2, 3, 8, 8), torch.ones(2, 8, 8), [0, 1]).shape
    torch.Size([2])
    """
    inputs = check_images(inputs)
    masks = check_unit_mask(check_map(masks, "masks", inputs), "masks")
    check_model(forward_func, inputs)
    check_choice(score, "score", ("softmax", "sigmoid"))
    min_area = check_fraction(min_area, "min_area", closed=(False, True))
    label_sets = check_label_sets(labels, inputs)
    perturb = Perturber(check_filler(filler, default=Constant(0.0)), inputs, generator)
    reference = perturb.reference
    n = inputs.shape[0]

    def build(start: int, stop: int):
        index = torch.arange(start, stop, device=inputs.device)
        m = masks[start:stop].to(inputs.dtype)
        if reference is not None:
            r = reference[start:stop]
            return r + m * (inputs[start:stop] - r), index
        # A hole-dependent reference (inpainting) is computed for the binarised mask.
        filled = perturb(index, m < 0.5)
        return filled + m * (inputs[start:stop] - filled), index

    outputs = batched_outputs(forward_func, build, n, n, batch_size, additional_forward_args)
    present = label_matrix(label_sets, outputs.shape[1])
    log_p = log_probabilities(outputs, score).masked_fill(~present, -math.inf)
    area = masks.mean(dim=(1, 2, 3)).clamp_min(min_area).log().to(log_p)
    return area - log_p.logsumexp(dim=1)
