"""Scoring stacks of hole masks in large batched forward passes (SP, LIME).

A perturbation is a binary hole mask per example. Perturbations are laid out
perturbation-major (copy ``j * N + n`` is perturbation ``j`` of example ``n``) and go
through the batched machinery the metrics share (:class:`~captum_ext.fillers.perturber.Perturber`
fills a chunk of copies in one filler call, :func:`~captum_ext._utils.forward.batched_outputs`
scores ``N * perturbations_per_eval`` copies per forward pass).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from captum_ext._utils.forward import batched_outputs
from captum_ext._utils.scores import target_scores
from captum_ext._utils.validation import (
    check_positive_int,
    check_same_device,
    check_tensor,
    unwrap_single,
)
from captum_ext.fillers.base import Filler
from captum_ext.fillers.perturber import Perturber

#: ``holes_for(start, stop)`` -> ``(stop - start, N, 1, H, W)`` bool masks of perturbations.
HolesFor = Callable[[int, int], Tensor]


class BaselineFiller(Filler):
    """Captum-style ``baselines`` as a filler: a fixed ``(N or 1, C, H, W)`` reference."""

    def __init__(self, baselines: Tensor) -> None:
        self.baselines = baselines

    def reference(self, inputs, holes=None, *, generator=None) -> Tensor:
        return self.baselines.expand_as(inputs)


BaselinesLike = None | float | int | Tensor | tuple[float | int | Tensor]


def format_baselines(baselines: BaselinesLike, inputs: Tensor) -> BaselineFiller | None:
    """Captum-style ``baselines`` as a :class:`BaselineFiller`; None stays None.

    What Captum accepts for one input tensor: a number, a tensor broadcastable to
    ``(C, H, W)`` or ``(N, C, H, W)``, or a one-element tuple of either (the form
    ``captum.attr.NoiseTunnel`` always passes).

    Examples
    --------
    >>> format_baselines(0.5, torch.zeros(2, 3, 4, 4)).baselines.shape
    torch.Size([1, 3, 4, 4])
    >>> format_baselines((torch.zeros(2, 3, 4, 4),), torch.zeros(2, 3, 4, 4)).baselines.shape
    torch.Size([2, 3, 4, 4])
    """
    baselines = unwrap_single(baselines, "baselines")
    if baselines is None:
        return None
    if isinstance(baselines, bool) or not isinstance(baselines, (int, float, Tensor)):
        raise TypeError(f"`baselines` must be a number or a tensor, got {type(baselines).__name__}")
    n, c, h, w = inputs.shape
    if not isinstance(baselines, Tensor):
        baselines = torch.tensor(float(baselines), dtype=inputs.dtype, device=inputs.device)
    check_tensor(baselines, "baselines")
    check_same_device(inputs, baselines, names=("inputs", "baselines"))
    rows = n if baselines.dim() == 4 else 1
    try:
        expanded = baselines.to(inputs.dtype).expand(rows, c, h, w).contiguous()
    except RuntimeError:
        raise ValueError(
            f"`baselines` of shape {tuple(baselines.shape)} cannot be broadcast to the inputs "
            f"{tuple(inputs.shape)} (pass a number, a (C, H, W) or an (N, C, H, W) tensor)"
        ) from None
    return BaselineFiller(expanded)


def perturbation_scores(
    forward_func: Callable[..., Tensor],
    inputs: Tensor,
    target: Tensor,
    additional_forward_args: tuple[Any, ...],
    filler: Filler,
    score: str,
    holes_for: HolesFor,
    count: int,
    perturbations_per_eval: int,
    generator: torch.Generator | None = None,
    show_progress: bool = False,
    desc: str = "perturbations",
) -> Tensor:
    """Target scores ``(N, count)`` of ``count`` perturbations of each example.

    Parameters
    ----------
    forward_func : callable
        The classifier.
    inputs : Tensor
        ``(N, C, H, W)`` images in input space.
    target : Tensor
        ``(N,)`` targets.
    additional_forward_args : tuple
        Extra forward arguments (tensors with ``N`` rows follow their example).
    filler : Filler
        Fills the holes (a :class:`BaselineFiller` for Captum-style baselines).
    score : str
        ``softmax``, ``sigmoid`` or ``logit``.
    holes_for : callable
        ``holes_for(start, stop)`` returns the ``(stop - start, N, 1, H, W)`` masks of
        perturbations ``start..stop-1``.
    count : int
        Number of perturbations per example.
    perturbations_per_eval : int
        Perturbations per example in one forward pass (``N *`` this many images).
    generator : torch.Generator, optional
        Random source of random fillers.
    show_progress : bool
        Show a progress bar.
    desc : str
        Its label.
    """
    check_positive_int(perturbations_per_eval, "perturbations_per_eval")
    n = inputs.shape[0]
    fill = Perturber(filler, inputs, generator)

    def build(start: int, stop: int) -> tuple[Tensor, Tensor]:
        # chunks hold whole perturbations: start and stop are multiples of n
        index = torch.arange(start, stop, device=inputs.device) % n
        return fill.tiled(holes_for(start // n, stop // n)), index

    logits = batched_outputs(
        forward_func,
        build,
        count * n,
        n,
        n * perturbations_per_eval,
        additional_forward_args,
        show_progress,
        desc,
    )
    scores = target_scores(logits, target.repeat(count), score)
    return scores.view(count, n).T
