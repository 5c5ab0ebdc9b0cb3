"""Scoring stacks of hole masks in large batched forward passes (SP, LIME).

A perturbation is a binary hole mask per example. Chunks of ``p`` perturbations for all
``N`` examples are laid out perturbation-major (row ``j * N + n``), the same layout as
Captum's ``_expand_additional_forward_args`` (``repeat``), filled in one batched call
of the filler (or Captum-style ``baselines``) and scored in one forward pass of
``N * p`` images.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple, Union

import torch
from captum._utils.common import _expand_additional_forward_args
from torch import Tensor
from tqdm.auto import tqdm

from captum_ext._utils.validation import check_positive_int, check_same_device, check_tensor
from captum_ext.fillers.base import Filler

ScoreFn = Callable[[Tensor, Tensor, Tuple[Any, ...]], Tensor]


def format_baselines(
    baselines: Union[None, float, int, Tensor], inputs: Tensor
) -> Optional[Tensor]:
    """Captum-style ``baselines`` as an ``(N or 1, C, H, W)`` tensor, or None.

    A number, or a tensor broadcastable to one image ``(C, H, W)`` or to the batch
    ``(N, C, H, W)``.

    Examples
    --------
    >>> format_baselines(0.5, torch.zeros(2, 3, 4, 4)).shape
    torch.Size([1, 3, 4, 4])
    """
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
        return baselines.to(inputs.dtype).expand(rows, c, h, w).contiguous()
    except RuntimeError:
        raise ValueError(
            f"`baselines` of shape {tuple(baselines.shape)} cannot be broadcast to the inputs "
            f"{tuple(inputs.shape)} (pass a number, a (C, H, W) or an (N, C, H, W) tensor)"
        ) from None


class PerturbationScorer:
    """Scores of ``N`` examples under stacks of hole masks.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(images, target, additional_forward_args) -> (B,)`` target scores
        (a method's ``_scores``).
    inputs : Tensor
        ``(N, C, H, W)`` images in input space.
    target : Tensor
        ``(N,)`` targets.
    additional_forward_args : tuple
        Extra forward arguments (tensors are repeated per perturbation, as in Captum).
    filler : Filler
        Fills the holes (ignored when ``baselines`` is given).
    baselines : Tensor, optional
        ``(N or 1, C, H, W)`` reference (Captum's ``baselines``).
    generator : torch.Generator, optional
        Random source of random fillers.
    """

    def __init__(
        self,
        score_fn: ScoreFn,
        inputs: Tensor,
        target: Tensor,
        additional_forward_args: Tuple[Any, ...],
        filler: Filler,
        baselines: Optional[Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        self.score_fn = score_fn
        self.inputs = inputs
        self.target = target
        self.additional = additional_forward_args
        self.filler = filler
        self.baselines = baselines
        self.generator = generator

    def _fill(self, images: Tensor, holes: Tensor, repeats: int) -> Tensor:
        if self.baselines is None:
            return self.filler(images, holes, generator=self.generator)
        reference = self.baselines.repeat(repeats if self.baselines.shape[0] > 1 else 1, 1, 1, 1)
        return torch.where(holes, reference, images)

    @torch.no_grad()
    def clean_scores(self) -> Tensor:
        """``(N,)`` scores of the unperturbed inputs."""
        return self.score_fn(self.inputs, self.target, self.additional)

    @torch.no_grad()
    def __call__(self, holes: Tensor) -> Tensor:
        """Scores ``(p, N)`` for hole masks ``(p, N, 1, H, W)`` (bool, True = remove)."""
        p, n = holes.shape[:2]
        images = self.inputs.repeat(p, 1, 1, 1)
        filled = self._fill(images, holes.reshape(p * n, *holes.shape[2:]), p)
        args = _expand_additional_forward_args(self.additional, p) if self.additional else ()
        return self.score_fn(filled, self.target.repeat(p), args).view(p, n)

    def scores(
        self,
        holes_for: Callable[[int, int], Tensor],
        count: int,
        perturbations_per_eval: int,
        show_progress: bool = False,
        desc: str = "perturbations",
    ) -> Tensor:
        """Scores ``(N, count)`` of ``count`` perturbations, ``perturbations_per_eval`` at a time.

        ``holes_for(start, stop)`` returns the ``(stop - start, N, 1, H, W)`` masks of
        perturbations ``start..stop-1``.
        """
        check_positive_int(perturbations_per_eval, "perturbations_per_eval")
        out = torch.empty(self.inputs.shape[0], count, device=self.inputs.device)
        starts = range(0, count, perturbations_per_eval)
        for start in tqdm(starts, desc=desc, disable=not show_progress):
            stop = min(start + perturbations_per_eval, count)
            out[:, start:stop] = self(holes_for(start, stop)).T.to(out.dtype)
        return out
