"""Deletion and insertion curves and their AUC (Petsiuk et al., RISE, BMVC 2018).

Petsiuk, Das and Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box
Models", BMVC 2018, <https://arxiv.org/abs/1806.07421>.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from captum_ext._utils.forward import batched_outputs, check_model
from captum_ext._utils.scores import check_score, target_scores
from captum_ext._utils.validation import TargetLike, check_positive_int
from captum_ext.fillers.base import Filler, check_filler
from captum_ext.fillers.constant import Constant
from captum_ext.fillers.perturber import Perturber
from captum_ext.metrics._checks import check_images, check_map, check_targets

#: Steps of the curves: RISE removes 224 * 8 pixels per step at 224 x 224, i.e. 1/28;
#: a fraction rather than a pixel count keeps curves comparable across image sizes.
DEFAULT_STEPS = 28


class Curve(NamedTuple):
    """A deletion or insertion curve.

    Attributes
    ----------
    fractions : Tensor
        ``(S + 1,)`` fraction of the pixels removed (deletion) or inserted (insertion)
        at each point, from 0 to 1.
    scores : Tensor
        ``(N, S + 1)`` target score at each point.
    """

    fractions: Tensor
    scores: Tensor

    @property
    def auc(self) -> Tensor:
        """``(N,)`` area under each curve (trapezoid rule over the fraction)."""
        return curve_auc(self.fractions, self.scores)


def curve_auc(fractions: Tensor, scores: Tensor) -> Tensor:
    """Trapezoid-rule area under ``scores`` ``(N, S + 1)`` over ``fractions`` ``(S + 1,)``.

    Examples
    --------
    >>> curve_auc(torch.tensor([0.0, 0.5, 1.0]), torch.tensor([[1.0, 0.5, 0.0]]))
    tensor([0.5000])
    """
    return torch.trapezoid(scores, fractions.to(scores), dim=-1)


def _pixel_ranks(maps: Tensor) -> Tensor:
    """``(N, H*W)`` rank of every pixel, 0 = highest attribution (ties: raster order)."""
    flat = maps.flatten(1)
    order = torch.argsort(flat, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    positions = torch.arange(flat.shape[1], device=flat.device).expand_as(order)
    return ranks.scatter_(1, order, positions)


def _curve(
    mode: str,
    forward_func: Callable[..., Tensor],
    inputs: Tensor,
    attributions: Tensor,
    target: TargetLike,
    filler: Filler | None,
    steps: int,
    score: str,
    batch_size: int,
    additional_forward_args: Any,
    generator: torch.Generator | None,
    show_progress: bool,
) -> Curve:
    inputs = check_images(inputs)
    maps = check_map(attributions, "attributions", inputs)
    check_model(forward_func, inputs)
    check_positive_int(steps, "steps")
    check_score(score)
    targets = check_targets(target, inputs)
    n, _, h, w = inputs.shape
    pixels = h * w
    counts = torch.round(torch.arange(steps + 1, dtype=torch.float64) * pixels / steps).long()
    counts = counts.to(inputs.device)
    ranks = _pixel_ranks(maps).view(n, 1, h, w)
    perturb = Perturber(check_filler(filler, default=Constant(0.0)), inputs, generator)

    def build(start: int, stop: int):
        copy = torch.arange(start, stop, device=inputs.device)
        example, step = copy // (steps + 1), copy % (steps + 1)
        changed = ranks[example] < counts[step].view(-1, 1, 1, 1)  # top-k pixels
        holes = changed if mode == "deletion" else ~changed
        return perturb(example, holes), example

    outputs = batched_outputs(
        forward_func,
        build,
        n * (steps + 1),
        n,
        batch_size,
        additional_forward_args,
        show_progress,
        desc=mode,
    )
    check_targets(targets, inputs, outputs.shape[1])
    repeated = targets.repeat_interleave(steps + 1)
    scores = target_scores(outputs, repeated, score).view(n, steps + 1)
    return Curve(counts.to(scores) / pixels, scores)


def deletion_curve(
    forward_func: Callable[..., Tensor],
    inputs: Tensor,
    attributions: Tensor,
    target: TargetLike,
    *,
    filler: Filler | None = None,
    steps: int = DEFAULT_STEPS,
    score: str = "softmax",
    batch_size: int = 256,
    additional_forward_args: Any = None,
    generator: torch.Generator | None = None,
    show_progress: bool = False,
) -> Curve:
    """Deletion curve: remove the most important pixels first, track the target score.

    Point ``k`` (``k = 0..steps``) replaces the ``round(k * H * W / steps)`` pixels with
    the highest attribution by the filler's reference; a good attribution makes the
    score drop fast (low AUC). Pixels with equal attribution are taken in raster order.
    All ``N * (steps + 1)`` perturbed images go through the model in batches of
    ``batch_size``.

    Parameters
    ----------
    forward_func : callable or nn.Module
        The classifier, ``forward_func(images, *additional_forward_args) -> (N, K)``.
    inputs : Tensor
        ``(N, C, H, W)`` images in the classifier's input space.
    attributions : Tensor
        ``(N, C, H, W)`` attributions (averaged over channels) or ``(N, 1, H, W)`` /
        ``(N, H, W)`` maps; higher = more important.
    target : int, list of int or Tensor
        Target class per example (Captum semantics).
    filler : Filler, optional
        The substrate; default ``Constant(0)`` (the dataset mean colour in a normalised
        input space). Petsiuk et al. used a constant for deletion and a blurred image
        (``Blur``) for insertion; any filler works.
    steps : int
        Number of steps (default 28: 1/28 of the pixels per step, as RISE's 224 * 8 pixels
        at 224 x 224).
    score : {"softmax", "sigmoid", "logit"}
        How outputs become the tracked score (``sigmoid`` for multi-label models).
    batch_size : int
        Perturbed images per forward pass.
    additional_forward_args : any, optional
        Extra arguments to ``forward_func``; tensors with ``N`` rows follow their example.
    generator : torch.Generator, optional
        Random source of random fillers (drawn once per example).
    show_progress : bool
        Show a progress bar over the batches.

    Returns
    -------
    Curve
        ``fractions (steps + 1,)``, ``scores (N, steps + 1)`` and ``.auc (N,)``.

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    >>> x = torch.rand(2, 3, 8, 8)
    >>> curve = deletion_curve(model, x, torch.rand(2, 1, 8, 8), target=0, steps=4)
    >>> curve.scores.shape, curve.auc.shape
    (torch.Size([2, 5]), torch.Size([2]))
    """
    return _curve(
        "deletion",
        forward_func,
        inputs,
        attributions,
        target,
        filler,
        steps,
        score,
        batch_size,
        additional_forward_args,
        generator,
        show_progress,
    )


def insertion_curve(
    forward_func: Callable[..., Tensor],
    inputs: Tensor,
    attributions: Tensor,
    target: TargetLike,
    *,
    filler: Filler | None = None,
    steps: int = DEFAULT_STEPS,
    score: str = "softmax",
    batch_size: int = 256,
    additional_forward_args: Any = None,
    generator: torch.Generator | None = None,
    show_progress: bool = False,
) -> Curve:
    """Insertion curve: start from the substrate, insert the most important pixels first.

    Point ``k`` shows the ``round(k * H * W / steps)`` pixels with the highest
    attribution on the filler's reference (for hole-dependent fillers such as
    inpainting, the holes are the pixels not yet inserted); a good attribution makes
    the score rise fast (high AUC). Arguments as :func:`deletion_curve`.

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    >>> x = torch.rand(2, 3, 8, 8)
    >>> insertion_curve(model, x, torch.rand(2, 8, 8), target=[0, 1], steps=4).fractions
    tensor([0.0000, 0.2500, 0.5000, 0.7500, 1.0000])
    """
    return _curve(
        "insertion",
        forward_func,
        inputs,
        attributions,
        target,
        filler,
        steps,
        score,
        batch_size,
        additional_forward_args,
        generator,
        show_progress,
    )


def deletion_auc(
    forward_func: Callable[..., Tensor],
    inputs: Tensor,
    attributions: Tensor,
    target: TargetLike,
    **kwargs: Any,
) -> Tensor:
    """``(N,)`` area under the deletion curve (lower is better); see :func:`deletion_curve`.

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    >>> deletion_auc(model, torch.rand(2, 3, 8, 8), torch.rand(2, 8, 8), target=1).shape
    torch.Size([2])
    """
    return deletion_curve(forward_func, inputs, attributions, target, **kwargs).auc


def insertion_auc(
    forward_func: Callable[..., Tensor],
    inputs: Tensor,
    attributions: Tensor,
    target: TargetLike,
    **kwargs: Any,
) -> Tensor:
    """``(N,)`` area under the insertion curve (higher is better); see :func:`insertion_curve`.

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    >>> insertion_auc(model, torch.rand(2, 3, 8, 8), torch.rand(2, 8, 8), target=1).shape
    torch.Size([2])
    """
    return insertion_curve(forward_func, inputs, attributions, target, **kwargs).auc
