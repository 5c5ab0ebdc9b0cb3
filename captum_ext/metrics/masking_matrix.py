"""Class-specific masking matrix of Stalder et al. Table 1."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from captum_ext._utils.forward import batched_outputs, check_model
from captum_ext._utils.scores import check_score, to_scores
from captum_ext._utils.validation import check_same_device, check_tensor
from captum_ext.fillers.base import Filler, check_filler
from captum_ext.fillers.constant import Constant
from captum_ext.fillers.perturber import Perturber
from captum_ext.metrics._checks import check_images

#: Stalder et al.'s nine thresholds 0.1, 0.2, ..., 0.9.
DEFAULT_THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(1, 10))


def class_masking_matrix(
    forward_func: Callable[..., Tensor],
    inputs: Tensor,
    class_masks: Tensor,
    labels: Tensor,
    *,
    classes: Sequence[int] | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    filler: Filler | None = None,
    score: str = "softmax",
    batch_size: int = 256,
    additional_forward_args: Any = None,
    generator: torch.Generator | None = None,
    show_progress: bool = False,
) -> Tensor:
    """Mean target score when images are masked with each class's thresholded mask.

    Row ``i`` is the target class ``classes[i]``, over the images that contain it.
    Column 0 ("none") is the target's score on the unmasked images; column ``j + 1``
    is its score when the image keeps only the pixels where the mask of class
    ``classes[j]`` is above a threshold (everything else replaced by the filler's
    reference), averaged over the thresholds and the images. Good class-specific masks
    give a high diagonal and a low off-diagonal. Stalder et al. use softmax scores
    even for multi-label classifiers, to measure a class against all others.

    Parameters
    ----------
    forward_func : callable or nn.Module
        The classifier.
    inputs : Tensor
        ``(N, C, H, W)`` images in the classifier's input space.
    class_masks : Tensor
        ``(N, K, H, W)`` per-class masks in [0, 1] (e.g. the Explainer's all-class
        masks, or per-class maps normalised with
        :func:`~captum_ext.metrics.normalize_map`).
    labels : Tensor
        ``(N, K)`` multi-hot labels (bool or {0, 1}).
    classes : sequence of int, optional
        The classes of the rows and columns (default all K).
    thresholds : sequence of float
        Mask thresholds (default 0.1, ..., 0.9); a pixel is kept where the mask is
        ``> threshold``.
    filler : Filler, optional
        Reference for the masked-out pixels (default ``Constant(0)``).
    score : {"softmax", "sigmoid", "logit"}
        Score of the target (softmax, as the paper).
    batch_size : int
        Masked images per forward pass.
    additional_forward_args : any, optional
        Extra arguments to ``forward_func``.
    generator : torch.Generator, optional
        Random source of random fillers.
    show_progress : bool
        Show a progress bar.

    Returns
    -------
    Tensor
        ``(T, T + 1)`` with ``T = len(classes)``: column 0 "none", then one column per
        mask class. Rows of classes absent from every image are NaN.

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3))
    >>> x, masks = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    >>> labels = torch.tensor([[1, 0, 1], [0, 1, 0]])
    >>> class_masking_matrix(model, x, masks, labels, classes=[0, 2]).shape
    torch.Size([2, 3])
    """
    inputs = check_images(inputs)
    check_model(forward_func, inputs)
    check_score(score)
    n, _, h, w = inputs.shape
    class_masks = check_tensor(class_masks, "class_masks", ndim=4)
    if class_masks.shape[0] != n or class_masks.shape[2:] != inputs.shape[2:]:
        raise ValueError(
            f"`class_masks` must have shape ({n}, K, {h}, {w}), got {tuple(class_masks.shape)}"
        )
    check_same_device(inputs, class_masks, names=("inputs", "class_masks"))
    if float(class_masks.min()) < 0 or float(class_masks.max()) > 1:
        raise ValueError("`class_masks` must have values in [0, 1]; normalise maps first")
    num_classes = class_masks.shape[1]
    if not isinstance(labels, Tensor):
        raise TypeError(f"`labels` must be a torch.Tensor, got {type(labels).__name__}")
    if labels.shape != (n, num_classes):
        raise ValueError(
            f"`labels` must have shape ({n}, {num_classes}), got {tuple(labels.shape)}"
        )
    check_same_device(inputs, labels, names=("inputs", "labels"))
    classes = list(range(num_classes)) if classes is None else [int(c) for c in classes]
    if not classes or min(classes) < 0 or max(classes) >= num_classes:
        raise ValueError(
            f"`classes` must be non-empty class indices < {num_classes}, got {classes}"
        )
    if not thresholds or any(not 0 <= float(t) < 1 for t in thresholds):
        raise ValueError(f"`thresholds` must be non-empty values in [0, 1), got {list(thresholds)}")

    device = inputs.device
    cls = torch.tensor(classes, device=device)
    present = labels[:, cls] != 0  # (N, T)
    used = present.any(dim=1).nonzero().flatten()  # only images with a row class
    x, masks, present = inputs[used], class_masks[used][:, cls], present[used]
    thr = torch.tensor([float(t) for t in thresholds], device=device, dtype=masks.dtype)
    t_count, a_count = len(classes), thr.numel()
    per_image = 1 + t_count * a_count  # the clean image, then (mask class, threshold)
    perturb = Perturber(check_filler(filler, default=Constant(0.0)), x, generator)

    def build(start: int, stop: int):
        copy = torch.arange(start, stop, device=device)
        example, slot = copy // per_image, copy % per_image
        which = (slot - 1).clamp_min(0)
        mask = masks[example, which // a_count].unsqueeze(1)  # (B, 1, H, W)
        holes = (mask <= thr[which % a_count].view(-1, 1, 1, 1)) & (slot > 0).view(-1, 1, 1, 1)
        return perturb(example, holes), used[example]

    total = used.numel() * per_image
    outputs = (
        batched_outputs(
            forward_func,
            build,
            total,
            n,
            batch_size,
            additional_forward_args,
            show_progress,
            desc="masking matrix",
        )
        if total
        else torch.zeros(0, num_classes, device=device)
    )
    scores = to_scores(outputs, score)[:, cls].view(used.numel(), per_image, t_count)
    none = scores[:, 0, :]  # (N', T): score of each row class on the clean image
    masked = scores[:, 1:, :].reshape(used.numel(), t_count, a_count, t_count).mean(dim=2)
    # masked[n, j, i]: score of row class i with the mask of column class j.
    weight = present.to(scores.dtype)  # (N', T)
    count = weight.sum(dim=0)  # (T,)
    none_col = (none * weight).sum(dim=0) / count
    cells = torch.einsum("nji,ni->ij", masked, weight) / count.view(-1, 1)
    return torch.cat([none_col.view(-1, 1), cells], dim=1)


def masking_matrix_ratio(matrix: Tensor) -> Tensor:
    """Mean diagonal over mean off-diagonal of a :func:`class_masking_matrix` (Table 1's criterion).

    Column 0 ("none") is left out; NaN cells (classes absent from every image) are
    skipped. Higher is more class-specific: 1 when a class's mask keeps every class as
    well as its own (class-agnostic masks).

    Parameters
    ----------
    matrix : Tensor
        ``(T, T + 1)`` output of :func:`class_masking_matrix`.

    Returns
    -------
    Tensor
        A scalar (NaN when no diagonal or no off-diagonal cell is defined).

    Examples
    --------
    >>> matrix = torch.tensor([[0.9, 0.8, 0.2], [0.7, 0.1, 0.6]])
    >>> masking_matrix_ratio(matrix)  # (0.8 + 0.6) / 2 over (0.2 + 0.1) / 2
    tensor(4.6667)
    """
    if matrix.dim() != 2 or matrix.shape[1] != matrix.shape[0] + 1:
        raise ValueError(f"`matrix` must have shape (T, T + 1), got {tuple(matrix.shape)}")
    cells = matrix[:, 1:]
    eye = torch.eye(cells.shape[0], dtype=torch.bool, device=cells.device)
    valid = ~torch.isnan(cells)
    return cells[eye & valid].mean() / cells[~eye & valid].mean()
