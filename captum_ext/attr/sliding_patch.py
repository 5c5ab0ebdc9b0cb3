"""Sliding-Patch occlusion (SP, Zeiler & Fergus 2014) and SP-G (Agarwal & Nguyen 2020)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from captum.log import log_usage
from torch import Tensor

from captum_ext._utils.image_scale import scaled_size
from captum_ext._utils.scores import target_scores
from captum_ext._utils.validation import TargetLike, check_choice, check_int
from captum_ext.attr._base import InputsLike, MaskAttribution
from captum_ext.attr._perturbation import BaselinesLike, format_baselines, perturbation_scores
from captum_ext.fillers.base import Filler, check_filler
from captum_ext.fillers.constant import Constant

SizeLike = int | Sequence[int]
AGGREGATES = ("grid", "average")
#: The paper's window and stride at 224 x 224 (Agarwal & Nguyen 2020, Sec. 3.3).
PAPER_WINDOW, PAPER_STRIDE = 29, 3


def _pair(value: SizeLike, name: str, channels: int) -> tuple[int, int]:
    """``k``, ``(kh, kw)`` or Captum's ``(C, kh, kw)`` (whole channel stack) -> ``(kh, kw)``.

    Captum's per-input form for tuple inputs, a one-element tuple of one of these
    (``((C, kh, kw),)``), is unwrapped.
    """
    if isinstance(value, tuple) and len(value) == 1 and isinstance(value[0], (tuple, list, int)):
        value = value[0]
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be an int or a tuple of ints, got bool")
    if isinstance(value, int):
        pair = (value, value)
    elif isinstance(value, (tuple, list)) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        if len(value) == 3:
            if value[0] != channels and name == "sliding_window_shapes":
                raise ValueError(
                    f"`{name}` {tuple(value)}: a window must span all {channels} channels"
                )
            value = value[1:]
        if len(value) != 2:
            raise ValueError(f"`{name}` must be an int, (h, w) or (C, h, w), got {tuple(value)}")
        pair = (value[0], value[1])
    else:
        raise TypeError(f"`{name}` must be an int or a tuple of ints, got {type(value).__name__}")
    if min(pair) < 1:
        raise ValueError(f"`{name}` must be >= 1, got {pair}")
    return pair


class SlidingPatch(MaskAttribution):
    """Sliding-Patch occlusion: the score drop when a square patch is removed.

    For every position of a ``k x k`` window (stride ``s``, only windows fully inside
    the image) the patch is filled by the filler and ``A = s(x) - s(x_tilde)`` recorded
    (Zeiler & Fergus 2014). With the default ``Constant(0)`` filler (the dataset's mean
    colour in a normalised input space) this is SP; with
    ``Inpaint(inpainter, space)`` it is SP-G (Agarwal & Nguyen 2020, Sec. 3.3).

    Output map (``aggregate``):

    * ``"grid"`` (the paper's): the window-grid map, one value per window (at its
      centre), bilinearly resized to ``H x W`` (``F.interpolate``, ``align_corners=False``).
      As in the paper, the grid is stretched over the whole image.
    * ``"average"``: each pixel gets the mean of ``A`` over the windows covering it,
      as ``captum.attr.Occlusion`` does; pixels no window covers get 0. With a
      constant fill and a window grid that tiles the image exactly (``(H - k) % s == 0``)
      this equals Captum's Occlusion with the same window, stride and baseline.

    Values are score differences: in [-1, 1] for ``score="softmax"``/``"sigmoid"``;
    higher = more evidence for the target.

    Differs from Captum's Occlusion: only windows fully inside the image are used (Captum
    adds a last window cut off by the border when the stride does not divide ``H - k``)
    and uncovered pixels are 0 (Captum divides 0 by 0).

    Drop-in for ``captum.attr.Occlusion``: ``attribute`` takes Occlusion's arguments in
    Occlusion's order (``inputs, sliding_window_shapes, strides, baselines, target,
    additional_forward_args, perturbations_per_eval, show_progress``) with their
    meaning; ``aggregate``, ``seed`` and ``return_map`` come after, keyword-only. Only
    the defaults differ, where the paper's method has its own: the paper's 29-pixel window
    and stride of 3 at 224 x 224, scaled with the image side (per side, rounded, at
    least 1: an 8-pixel window and a stride of 1 at 64 x 64), where Captum requires the
    window and strides by 1; 32 windows per forward pass (Captum: 1). Given a window,
    ``strides=None`` means 1, as in Captum. ``inputs`` may be one tensor or a one-tensor
    tuple (the output has the same structure).

    All windows of all examples are scored in forward passes of ``N *
    perturbations_per_eval`` images; inpainting is batched the same way.

    Parameters
    ----------
    forward_func : callable or nn.Module
        The classifier.
    filler : Filler, optional
        How a patch is removed; default ``Constant(0)``.
    score : {"softmax", "sigmoid", "logit"}
        Score being attributed.

    References
    ----------
    M. D. Zeiler and R. Fergus, "Visualizing and Understanding Convolutional Networks",
    European Conference on Computer Vision (ECCV), 2014.
    <https://arxiv.org/abs/1311.2901>

    C. Agarwal and A. Nguyen, "Explaining Image Classifiers by Removing Input Features
    Using Generative Models", Asian Conference on Computer Vision (ACCV), 2020.
    <https://arxiv.org/abs/1910.04256>; the authors' code:
    <https://github.com/anguyen8/generative-attribution-methods>.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    >>> sp = SlidingPatch(model)
    >>> sp.attribute(torch.rand(2, 3, 40, 40), target=1, sliding_window_shapes=9).shape
    torch.Size([2, 3, 40, 40])

    Occlusion's positional call (window, strides, baselines, target):

    >>> sp.attribute(torch.rand(2, 3, 40, 40), (3, 10, 10), (3, 10, 10), 0.0, 1).shape
    torch.Size([2, 3, 40, 40])
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        *,
        filler: Filler | None = None,
        score: str = "softmax",
    ) -> None:
        super().__init__(forward_func, score=score)
        self.filler = check_filler(filler, default=Constant(0.0))

    @log_usage()
    def attribute(
        self,
        inputs: InputsLike,
        sliding_window_shapes: SizeLike | None = None,
        strides: SizeLike | None = None,
        baselines: BaselinesLike = None,
        target: TargetLike = None,
        additional_forward_args: Any = None,
        perturbations_per_eval: int = 32,
        show_progress: bool = False,
        *,
        aggregate: str = "grid",
        seed: int = 0,
        return_map: bool = False,
    ) -> InputsLike:
        """Sliding-patch attribution of ``inputs`` (``captum.attr.Occlusion``'s order).

        Parameters
        ----------
        inputs : Tensor or tuple of one Tensor
            ``(N, C, H, W)`` images in the classifier's input space.
        sliding_window_shapes : int or tuple, optional
            Patch size ``k``, ``(kh, kw)`` or Captum's ``(C, kh, kw)``; default the
            paper's 29 pixels at 224 x 224, scaled with the image side.
        strides : int, tuple or None
            Stride ``s``, ``(sh, sw)`` or Captum's ``(C, sh, sw)``. None: with the
            default window, the paper's 3 pixels at 224 x 224 scaled with the image
            side; with a given window, 1, as in Captum.
        baselines : number, Tensor or tuple of one of them, optional
            Captum-style constant reference (a number or a tensor broadcastable to the
            inputs) used instead of the filler.
        target : int, list of int or Tensor
            Target class(es), Captum semantics.
        additional_forward_args : any, optional
            Extra arguments to ``forward_func``.
        perturbations_per_eval : int
            Windows per example in one forward pass (forward batches of ``N *
            perturbations_per_eval`` images).
        show_progress : bool
            Show a progress bar.
        aggregate : {"grid", "average"}
            Paper's resized window grid, or Captum's per-pixel average.
        seed : int
            Seed of random fillers.
        return_map : bool
            Return the ``(N, 1, H, W)`` map instead of the channel-expanded attribution.

        Returns
        -------
        Tensor or tuple of one Tensor
            Shaped like ``inputs`` (or ``(N, 1, H, W)``), with the structure of ``inputs``.
        """
        return self._run(
            inputs,
            target,
            additional_forward_args,
            return_map,
            sliding_window_shapes=sliding_window_shapes,
            strides=strides,
            baselines=baselines,
            aggregate=aggregate,
            perturbations_per_eval=perturbations_per_eval,
            show_progress=show_progress,
            seed=seed,
        )

    def _attribute_map(  # type: ignore[override]  # narrows **kwargs to its options
        self,
        inputs: Tensor,
        target: TargetLike,
        additional_forward_args: tuple[Any, ...],
        *,
        sliding_window_shapes: SizeLike | None,
        strides: SizeLike | None,
        baselines: BaselinesLike,
        aggregate: str,
        perturbations_per_eval: int,
        show_progress: bool,
        seed: int,
    ) -> Tensor:
        n, c, h, w = inputs.shape
        if sliding_window_shapes is None:
            kh, kw = scaled_size(PAPER_WINDOW, h, w)
            sh, sw = (
                scaled_size(PAPER_STRIDE, h, w) if strides is None else _pair(strides, "strides", c)
            )
        else:
            kh, kw = _pair(sliding_window_shapes, "sliding_window_shapes", c)
            sh, sw = _pair(1 if strides is None else strides, "strides", c)
        check_choice(aggregate, "aggregate", AGGREGATES)
        if kh > h or kw > w:
            raise ValueError(
                f"`sliding_window_shapes` ({kh}, {kw}) is larger than the images ({h}, {w})"
            )
        with torch.no_grad():
            logits = self._forward(inputs, additional_forward_args)
        target_t = self._target(target, inputs, logits.shape[1])
        clean = target_scores(logits, target_t, self.score)
        filler = format_baselines(baselines, inputs) or self.filler
        tops = torch.arange(0, h - kh + 1, sh, device=inputs.device)
        lefts = torch.arange(0, w - kw + 1, sw, device=inputs.device)
        gy, gx = tops.numel(), lefts.numel()
        rows = torch.arange(h, device=inputs.device)
        cols = torch.arange(w, device=inputs.device)

        def holes_for(start: int, stop: int) -> Tensor:
            idx = torch.arange(start, stop, device=inputs.device)
            top, left = tops[idx // gx], lefts[idx % gx]
            in_rows = (rows >= top[:, None]) & (rows < top[:, None] + kh)  # (p, H)
            in_cols = (cols >= left[:, None]) & (cols < left[:, None] + kw)  # (p, W)
            holes = in_rows[:, :, None] & in_cols[:, None, :]
            return holes[:, None, None].expand(-1, n, 1, h, w)

        scores = perturbation_scores(
            self.forward_func,
            inputs,
            target_t,
            additional_forward_args,
            filler,
            self.score,
            holes_for,
            gy * gx,
            perturbations_per_eval,
            torch.Generator().manual_seed(check_int(seed, "seed")),
            show_progress,
            "SlidingPatch",
        )
        drops = clean[:, None] - scores
        grid = drops.view(n, 1, gy, gx)
        if aggregate == "grid":
            return F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)
        box = torch.ones(1, 1, kh, kw, device=inputs.device, dtype=grid.dtype)
        total = F.conv_transpose2d(grid, box, stride=(sh, sw))
        count = F.conv_transpose2d(torch.ones_like(grid[:1]), box, stride=(sh, sw))
        pad = (0, w - total.shape[-1], 0, h - total.shape[-2])
        total, count = F.pad(total, pad), F.pad(count, pad)
        return torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total))
