"""MP2 and MP2-G: greedy deletion masks (Agarwal & Nguyen 2020, Sec. 3.5), batched."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from captum.log import log_usage
from torch import Tensor
from tqdm.auto import tqdm

from captum_ext._utils.forward import select_args
from captum_ext._utils.scores import target_scores
from captum_ext._utils.validation import TargetLike, check_choice, check_int, check_positive_int
from captum_ext.attr._base import InputsLike, MaskAttribution
from captum_ext.fillers.base import Filler, check_filler, remove
from captum_ext.fillers.blur import Blur

RANKS = ("descent", "abs")


class MP2(MaskAttribution):
    """Greedy binary deletion mask on a coarse grid (MP2; MP2-G with an inpainter).

    Agarwal & Nguyen's MP2 (Sec. 3.5), a greedy Meaningful Perturbation (Fong & Vedaldi
    2017). A binary mask ``M`` on a ``grid_size x grid_size`` grid (1 = removed) starts
    empty and is upsampled (nearest) to ``H x W``; the removed image is
    ``x * (1 - M) + f * M`` with ``f`` the filler's reference: a Gaussian blur of ``x``
    (sigma 10 pixels at 224 x 224, MP2) or the inpainter's fill of the current binary mask (MP2-G,
    ``Inpaint(inpainter, space)``; recomputed every iteration). Each iteration takes the
    gradient of the target score with respect to the grid at the current binary mask and
    removes the ``cells_per_step`` not-yet-removed cells whose removal decreases the
    score most (most negative gradient; ``rank="abs"`` for the paper's literal "highest
    gradient norm"). An example stops when its score is ``<= stop_prob`` (default
    ``1 / num_classes``, the paper's "random chance") or every cell is removed; the
    batch runs until all examples have stopped, stopped examples leave the forward
    passes.

    Attribution: a cell removed at iteration ``t`` of ``T`` gets ``1 - (t - 1) / T``
    (earlier = more important), cells never removed 0, resized (nearest) to ``H x W``;
    values in [0, 1]. ``binary=True`` returns the removed cells as 1 instead.

    Two departures give every map a meaning. Cells whose gradients tie (a saturated
    softmax or sigmoid has an exactly zero gradient everywhere) are ordered by the
    gradient of the target's logit, then at random (from ``seed``), never by position
    (which drew a band along the top rows). An example whose score is already
    ``<= stop_prob`` has nothing to delete: a ``UserWarning`` names it, and its map ranks
    every cell by the first step's gradient, ``cells_per_step`` cells per rank, as if the
    cells were removed in that order without re-evaluating (``binary=True``: the first
    step's cells).

    MP2-G's reference: removed cells get the inpainter's fill of the current binary
    mask (the paper's ``f = G(m_b, x)``); every kept cell gets the fill it would receive
    if it were removed next, from inpainting the current mask plus one of four
    interleaved sets of kept cells (cells of equal row and column parity, never
    adjacent, so each is filled from its own surroundings): four more inpainter calls
    per iteration. Departs from the literal reading, the fill of the current mask for
    kept cells too, under which a kept cell's reference is the image itself, its
    gradient is exactly zero and cells go in raster order.

    The paper's blur sigma of 10 pixels is set for 224 x 224 images and scales with the
    image side by default (2.9 pixels at 64 x 64). The 28 x 28 grid does not: scaled to
    keep 8-pixel cells (8 x 8 at 64 x 64, 12 x 12 at 96 x 96) it lost pointing on both
    shapes-world classifiers (docs/methods/mp2.md), so the grid is a count of cells, capped
    at the image (``min(grid_size, H) x min(grid_size, W)``, every cell at least one
    pixel).

    Differs from the paper: additional forward arguments
    that are tensors with one row per example are subset along with the examples still
    running.

    Parameters
    ----------
    forward_func : callable or nn.Module
        The classifier.
    filler : Filler, optional
        Reference of removed cells; default ``Blur()`` (sigma 10 pixels at 224 x 224,
        scaled with the image).
    score : {"softmax", "sigmoid", "logit"}
        Score being deleted.
    grid_size : int
        Side of the mask grid (the paper's 28).
    cells_per_step : int
        Cells removed per iteration (2).
    rank : {"descent", "abs"}
        How cells are chosen from the gradient.

    References
    ----------
    C. Agarwal and A. Nguyen, "Explaining Image Classifiers by Removing Input Features
    Using Generative Models", Asian Conference on Computer Vision (ACCV), 2020.
    <https://arxiv.org/abs/1910.04256>; the authors' code:
    <https://github.com/anguyen8/generative-attribution-methods>.

    R. C. Fong and A. Vedaldi, "Interpretable Explanations of Black Boxes by Meaningful
    Perturbation", IEEE International Conference on Computer Vision (ICCV), 2017.
    <https://arxiv.org/abs/1704.03296>

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    >>> mp2 = MP2(model, grid_size=8)
    >>> mp2.attribute(torch.rand(2, 3, 32, 32), target=1, stop_prob=0.0).shape
    torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        *,
        filler: Filler | None = None,
        score: str = "softmax",
        grid_size: int = 28,
        cells_per_step: int = 2,
        rank: str = "descent",
    ) -> None:
        super().__init__(forward_func, score=score)
        self.filler = check_filler(filler, default=Blur())
        self.grid_size = check_positive_int(grid_size, "grid_size")
        self.cells_per_step = check_positive_int(cells_per_step, "cells_per_step")
        self.rank = check_choice(rank, "rank", RANKS)

    @log_usage()
    def attribute(
        self,
        inputs: InputsLike,
        target: TargetLike = None,
        additional_forward_args: Any = None,
        *,
        stop_prob: float | None = None,
        max_iterations: int | None = None,
        binary: bool = False,
        show_progress: bool = False,
        seed: int = 0,
        return_map: bool = False,
    ) -> InputsLike:
        """MP2 attribution of ``inputs``.

        Parameters
        ----------
        inputs : Tensor or tuple of one Tensor
            ``(N, C, H, W)`` images in the classifier's input space (a tuple gives a
            tuple back).
        target : int, list of int or Tensor
            Target class(es), Captum semantics.
        additional_forward_args : any, optional
            Extra arguments to ``forward_func``.
        stop_prob : float, optional
            Stop an example once its score is at most this (default ``1 / num_classes``).
        max_iterations : int, optional
            Cap on the iterations (default: until every cell is removed).
        binary : bool
            Return the binary mask of removed cells instead of the graded map.
        show_progress : bool
            Show a progress bar (one step per iteration).
        seed : int
            Seed of random fillers.
        return_map : bool
            Return the ``(N, 1, H, W)`` map instead of the channel-expanded attribution.
        """
        return self._run(
            inputs,
            target,
            additional_forward_args,
            return_map,
            stop_prob=stop_prob,
            max_iterations=max_iterations,
            binary=binary,
            show_progress=show_progress,
            seed=seed,
        )

    def _attribute_map(  # type: ignore[override]  # narrows **kwargs to its options
        self,
        inputs: Tensor,
        target: TargetLike,
        additional_forward_args: tuple[Any, ...],
        *,
        stop_prob: float | None,
        max_iterations: int | None,
        binary: bool,
        show_progress: bool,
        seed: int,
    ) -> Tensor:
        n, _, h, w = inputs.shape
        device = inputs.device
        with torch.no_grad():
            num_classes = self._forward(inputs, additional_forward_args).shape[1]
        target_t = self._target(target, inputs, num_classes)
        if stop_prob is None:
            stop_prob = 1.0 / num_classes
        elif (
            isinstance(stop_prob, bool)
            or not isinstance(stop_prob, (int, float))
            or not math.isfinite(stop_prob)
        ):
            raise TypeError(f"`stop_prob` must be a finite number, got {stop_prob!r}")
        gh, gw = min(self.grid_size, h), min(self.grid_size, w)
        cells = gh * gw
        limit = math.ceil(cells / self.cells_per_step)
        if max_iterations is not None:
            limit = min(limit, check_positive_int(max_iterations, "max_iterations"))
        generator = torch.Generator().manual_seed(check_int(seed, "seed"))
        static_reference = None
        if not self.filler.needs_holes:
            static_reference = self.filler.reference(inputs, generator=generator)

        removed_at = torch.zeros(n, cells, dtype=torch.long, device=device)  # 0 = kept
        iterations = torch.zeros(n, dtype=torch.long, device=device)
        ranked_only = torch.zeros(n, dtype=torch.bool, device=device)  # nothing to delete
        ties = torch.Generator().manual_seed(seed)
        active = torch.arange(n, device=device)
        k = min(self.cells_per_step, cells)
        progress = tqdm(total=limit, desc="MP2", disable=not show_progress)
        for t in range(limit + 1):
            x, order = inputs[active], removed_at[active]
            grid = (order > 0).to(inputs.dtype).view(-1, 1, gh, gw).requires_grad_(True)
            holes = F.interpolate(grid, size=(h, w), mode="nearest")
            if static_reference is None:
                reference = self._hole_filler_reference(
                    x, holes.detach() > 0.5, order.view(-1, 1, gh, gw) > 0, generator
                )
            else:
                reference = static_reference[active]
            logits = self._forward(
                remove(x, 1 - holes, reference), select_args(additional_forward_args, active, n)
            )
            scores = target_scores(logits, target_t[active], self.score)
            done = (scores.detach() <= stop_prob) | (order > 0).all(dim=1)
            if t == limit:
                done[:] = True
            iterations[active[done]] = t
            # At t = 0 the examples already at stop_prob are ranked by this first step.
            step = ~done | (t == 0)
            if not step.any():
                break
            first = done[step]  # rows of `step` that only get the first step's ranking
            ranking = self._ranking(
                scores[step],
                logits.gather(1, target_t[active].view(-1, 1))[step],
                grid,
                step,
                removed=order[step] > 0,
                places=cells if bool(first.any()) else k,
                generator=ties,
            )
            rows = active[step]
            if bool(first.any()):
                ranked = rows[first]
                ranked_only[ranked] = True
                places = torch.arange(cells, device=device).expand(int(first.sum()), cells)
                position = torch.empty_like(places).scatter_(1, ranking[first], places)
                removed_at[ranked] = position // k + 1
                iterations[ranked] = math.ceil(cells / k)
            if done.all():
                break
            # The step's k cells (fewer may be left).
            running, picked = rows[~first], ranking[~first][:, :k]
            valid = ~(order[step][~first].gather(1, picked) > 0)
            index = torch.arange(running.shape[0], device=device)[:, None].expand_as(picked)
            removed_at[running[index[valid]], picked[valid]] = t + 1
            active = active[~done]
            progress.update(1)
        progress.close()
        if bool(ranked_only.any()):
            warnings.warn(
                f"MP2: the target's score is already <= stop_prob ({stop_prob:g}) for "
                f"example(s) {ranked_only.nonzero().flatten().tolist()}, so nothing is "
                "deleted; their maps rank every cell by the first step's gradient "
                "(binary=True: the first step's cells)",
                UserWarning,
                stacklevel=4,
            )

        if binary:
            values = torch.where(ranked_only[:, None], removed_at == 1, removed_at > 0)
            values = values.to(inputs.dtype)
        else:
            total = iterations.clamp_min(1).to(inputs.dtype)[:, None]
            values = torch.where(
                removed_at > 0,
                1 - (removed_at.to(inputs.dtype) - 1) / total,
                torch.zeros((), dtype=inputs.dtype, device=device),
            )
        return F.interpolate(values.view(n, 1, gh, gw), size=(h, w), mode="nearest")

    def _ranking(
        self,
        scores: Tensor,
        logits: Tensor,
        grid: Tensor,
        rows: Tensor,
        *,
        removed: Tensor,
        places: int,
        generator: torch.Generator,
    ) -> Tensor:
        """``(B, cells)`` cells of ``rows`` in removal order, removed cells last.

        The key is the gradient of the score (steepest descent, or its magnitude with
        ``rank="abs"``). Where it ties across the first ``places`` places (a saturated
        softmax or sigmoid has an exactly zero gradient), the gradient of the target's
        logit, then a random draw, break the ties: never the position.
        """

        def key(output: Tensor, retain: bool) -> Tensor:
            (gradient,) = torch.autograd.grad(output.sum(), grid, retain_graph=retain)
            gradient = gradient.flatten(1)[rows]
            gradient = -gradient if self.rank == "descent" else gradient.abs()
            return gradient.masked_fill(removed, -math.inf)

        primary = key(scores, retain=self.score != "logit")
        top = primary.topk(min(places + 1, primary.shape[1]), dim=1).values
        tied = (top[:, :-1] == top[:, 1:]) & torch.isfinite(top[:, 1:])
        if not bool(tied.any()):
            return primary.argsort(dim=1, descending=True)
        keys = [primary] + ([key(logits, retain=False)] if self.score != "logit" else [])
        # Stable sorts from the last key to the first, over a random order.
        noise = torch.rand(primary.shape, generator=generator).to(primary.device)
        order = noise.argsort(dim=1)
        for value in reversed(keys):
            moved = value.gather(1, order).argsort(dim=1, descending=True, stable=True)
            order = order.gather(1, moved)
        return order

    def _hole_filler_reference(
        self, inputs: Tensor, holes: Tensor, removed: Tensor, generator: torch.Generator
    ) -> Tensor:
        """Reference of a hole-dependent filler (MP2-G): see the class docstring.

        ``holes`` is the ``(B, 1, H, W)`` bool mask of removed pixels, ``removed`` the
        ``(B, 1, gh, gw)`` bool mask of removed cells.
        """
        gh, gw = removed.shape[-2:]
        reference = self.filler.reference(inputs, holes, generator=generator)
        rows = torch.arange(gh, device=inputs.device).view(gh, 1) % 2
        cols = torch.arange(gw, device=inputs.device).view(1, gw) % 2
        for parity in ((0, 0), (0, 1), (1, 0), (1, 1)):
            candidates = ((rows == parity[0]) & (cols == parity[1])) & ~removed
            if not bool(candidates.any()):
                continue
            candidate_holes = (
                F.interpolate(candidates.float(), size=holes.shape[-2:], mode="nearest") > 0.5
            )
            filled = self.filler.reference(inputs, holes | candidate_holes, generator=generator)
            reference = torch.where(candidate_holes, filled, reference)
        return reference
