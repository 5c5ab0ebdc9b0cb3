"""DSSR / DSSR+: discriminative smallest supporting regions (Gu 2020)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from captum.log import log_usage
from torch import Tensor
from tqdm.auto import tqdm

from captum_ext._utils.image_scale import scaled_size
from captum_ext._utils.scores import target_scores
from captum_ext._utils.validation import (
    TargetLike,
    check_choice,
    check_int,
    check_non_negative,
    check_positive_int,
)
from captum_ext.attr._base import InputsLike, MaskAttribution
from captum_ext.attr.fgvis import validated_reference
from captum_ext.fillers.base import Filler, check_filler, remove
from captum_ext.fillers.image_space import ImageSpace
from captum_ext.fillers.noise import UniformNoise

KernelSize = int | tuple[int, int]

#: The paper's pooling kernels at 224 x 224: max-pool k1 = 12, average-pool k2 = 16.
PAPER_K1, PAPER_K2 = 12, 16


def check_kernel(value: KernelSize, name: str) -> tuple[int, int]:
    """Check a pooling kernel given as an int or a pair of ints (each >= 1)."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"`{name}` must be an int or a pair of ints, got {value!r}")
    return check_positive_int(pair[0], name), check_positive_int(pair[1], name)


class DSSR(MaskAttribution):
    """Discriminative SSR explanations, DSSR (eq. 4) and DSSR+ (eq. 5, default), Gu 2020.

    The mask ``m`` in [0, 1] marks the *removable background*:
    ``x_{r,m} = m * x + (1 - m) * r`` keeps the pixels where ``m = 1``, ``x_{r,1-m}``
    keeps the rest. ``r`` is uniform noise ``U(0, 1)`` in pixel space, drawn once per
    call from the call's ``seed`` and shared by both terms, so that they differ only in
    which pixels are kept.

    * **DSSR+** (``variant="dssr+"``): the free parameter ``m`` has size
      ``(H + k2 - 1) x (W + k2 - 1)``, ``m_bar = avgpool(m, k2, stride 1)`` is ``H x W``
      and the minimised loss is
      ``f(x_{r,m_bar})_c - f(x_{r,1-m_bar})_c - lambda * ||1 - maxpool(1 - m, k1, 1, k1 // 2)||_1``.
    * **DSSR** (``variant="dssr"``): ``m`` is ``H x W``, ``m_bar = m`` and the loss is
      ``f(x_{r,m})_c - f(x_{r,1-m})_c - lambda * ||m||_1``.

    ``f`` is the score of ``score=`` (probabilities: softmax by default, sigmoid for
    multi-label classifiers). ``m`` starts at 0 and is optimised with Adam (lr 0.1,
    300 iterations), clamped to [0, 1] after each step. ``lambda`` is two-stage per
    example: ``lambda_low = lambda_high / 10`` while ``f(x_{r,1-m_bar})_c <= theta *
    f(x)_c`` and ``lambda_high = 10 / (H * W)`` otherwise. The returned map is
    ``1 - m_bar`` (the salient region), values in [0, 1].

    Differs from the paper: eq. 5 as printed swaps the two score terms relative to
    eq. 4, which would reward an all-salient mask under its own regulariser, so both
    variants use eq. 4's order. The kernels k1 = 12 and k2 = 16 are
    the paper's values at 224 x 224 and scale with the image side (per side, so
    non-square images get rectangular kernels); the max-pool padding is ``k1 // 2``
    (the paper's 6 at k1 = 12).

    Parameters
    ----------
    forward_func : callable or nn.Module
        The classifier, returning ``(N, num_classes)`` logits.
    variant : {"dssr+", "dssr"}
        Eq. 5 (default) or eq. 4.
    space : ImageSpace, optional
        The classifier's normalisation (the noise reference is drawn in pixel space);
        identity by default.
    filler : Filler, optional
        Replaces the uniform-noise reference (default ``UniformNoise(space)``).
    iterations : int
        Adam iterations (default 300).
    lr : float
        Adam learning rate (default 0.1).
    theta : float
        Threshold of the two-stage lambda (default 0.9).
    lambda_high : float, optional
        Default ``10 / (H * W)``; ``lambda_low`` is a tenth of it.
    k1, k2 : int or (int, int), optional
        Max-pool and average-pool kernels of DSSR+ (default scaled with the image).
    score : {"softmax", "sigmoid", "logit"}
        Score ``f`` (default ``"softmax"``).

    References
    ----------
    X. Gu, "Discriminative Model-Agnostic Vision Explainer for Differentiable
    Classifiers", preprint, 2020.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from captum_ext.attr import DSSR
    >>> model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
    ...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    >>> attr = DSSR(model, iterations=3).attribute(torch.rand(2, 3, 32, 32), target=1)
    >>> attr.shape, bool(attr.min() >= 0 and attr.max() <= 1)
    (torch.Size([2, 3, 32, 32]), True)
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        *,
        variant: str = "dssr+",
        space: ImageSpace | None = None,
        filler: Filler | None = None,
        iterations: int = 300,
        lr: float = 0.1,
        theta: float = 0.9,
        lambda_high: float | None = None,
        k1: KernelSize | None = None,
        k2: KernelSize | None = None,
        score: str = "softmax",
    ) -> None:
        super().__init__(forward_func, score=score)
        self.variant = check_choice(variant, "variant", ("dssr+", "dssr"))
        if space is not None and not isinstance(space, ImageSpace):
            raise TypeError(f"`space` must be an ImageSpace, got {type(space).__name__}")
        self.filler = check_filler(filler, default=UniformNoise(space))
        self.iterations = check_positive_int(iterations, "iterations")
        self.lr = check_non_negative(lr, "lr")
        if self.lr == 0:
            raise ValueError("`lr` must be > 0, got 0")
        self.theta = check_non_negative(theta, "theta")
        self.lambda_high = (
            None if lambda_high is None else check_non_negative(lambda_high, "lambda_high")
        )
        self.k1 = None if k1 is None else check_kernel(k1, "k1")
        self.k2 = None if k2 is None else check_kernel(k2, "k2")

    @log_usage()
    def attribute(
        self,
        inputs: InputsLike,
        target: TargetLike = None,
        additional_forward_args: Any = None,
        *,
        seed: int = 0,
        show_progress: bool = False,
        return_map: bool = False,
    ) -> InputsLike:
        """DSSR attribution of ``inputs``.

        Parameters
        ----------
        inputs : Tensor or tuple of one Tensor
            ``(N, C, H, W)`` images in the classifier's input space (a tuple gives a
            tuple back).
        target : int, list of int or Tensor
            Target class(es), Captum semantics (required for multi-output models).
        additional_forward_args : any, optional
            Extra arguments to ``forward_func`` (batch-sized tensors are repeated for
            the stacked forward pass).
        seed : int
            Seed of the reference (and of random fillers); the same seed gives the same
            result.
        show_progress : bool
            Show a progress bar over the iterations.
        return_map : bool
            Return the ``(N, 1, H, W)`` map instead of the channel-expanded attribution.

        Returns
        -------
        Tensor
            ``1 - m_bar`` in [0, 1], shaped like ``inputs`` (or ``(N, 1, H, W)``).
        """
        return self._run(
            inputs,
            target,
            additional_forward_args,
            return_map,
            seed=seed,
            show_progress=show_progress,
        )

    def _attribute_map(  # type: ignore[override]  # narrows **kwargs to its options
        self,
        inputs: Tensor,
        target: TargetLike,
        additional_forward_args: tuple[Any, ...],
        *,
        seed: int,
        show_progress: bool,
    ) -> Tensor:
        n, _, h, w = inputs.shape
        generator = torch.Generator().manual_seed(check_int(seed, "seed"))
        with torch.no_grad():
            clean = self._forward(inputs, additional_forward_args)
        target = self._target(target, inputs, clean.shape[1])
        reference = validated_reference(self.filler, inputs, generator)
        lambda_high = 10.0 / (h * w) if self.lambda_high is None else self.lambda_high
        threshold = self.theta * target_scores(clean, target, self.score)

        plus = self.variant == "dssr+"
        k1 = self.k1 or scaled_size(PAPER_K1, h, w)
        k2 = self.k2 or scaled_size(PAPER_K2, h, w)
        # DSSR+: the (H + k2 - 1) x (W + k2 - 1) parameter avg-pools to exactly H x W.
        grow = (k2[0] - 1, k2[1] - 1) if plus else (0, 0)
        mask = torch.zeros(
            n, 1, h + grow[0], w + grow[1], device=inputs.device, dtype=inputs.dtype
        ).requires_grad_(True)
        optimizer = torch.optim.Adam([mask], lr=self.lr)
        stacked_inputs = torch.cat([inputs, inputs])
        stacked_reference = torch.cat([reference, reference])
        stacked_target = torch.cat([target, target])
        stacked_args = repeat_rows(additional_forward_args, n)

        for _ in tqdm(range(self.iterations), desc="DSSR", disable=not show_progress):
            m_bar = F.avg_pool2d(mask, k2, stride=1) if plus else mask
            keep = torch.cat([m_bar, 1.0 - m_bar])  # x_{r,m_bar} then x_{r,1-m_bar}
            logits = self._forward(remove(stacked_inputs, keep, stacked_reference), stacked_args)
            scores = target_scores(logits, stacked_target, self.score)
            background, salient = scores[:n], scores[n:]
            kept = min_pool(mask, k1) if plus else mask
            lam = torch.where(salient.detach() <= threshold, lambda_high / 10, lambda_high)
            loss = background - salient - lam * kept.sum(dim=(1, 2, 3))
            (mask.grad,) = torch.autograd.grad(loss.sum(), mask)
            optimizer.step()
            with torch.no_grad():
                mask.clamp_(0.0, 1.0)
        with torch.no_grad():
            m_bar = F.avg_pool2d(mask, k2, stride=1) if plus else mask
        salient_map = 1.0 - m_bar.detach()
        warn_if_collapsed(salient_map)
        return salient_map


def warn_if_collapsed(salient_map: Tensor) -> None:
    """Warn when some masks ended as all background (an all-zero salient map).

    The regulariser's per-pixel gradient is ``lambda``; when the target score's gradient
    is far smaller (a saturated probability, or a classifier that scores the target
    class on the reference itself, so that no mask can delete it) Adam grows the
    background everywhere and the map is 0.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_if_collapsed(torch.tensor([[[[0.0]]], [[[0.5]]]]))
    >>> print(str(caught[0].message).split(".")[0])
    DSSR: 1 of 2 masks converged to all background (an all-zero map) for examples [0]
    """
    collapsed = torch.nonzero(salient_map.flatten(1).amax(dim=1) <= 0).flatten().tolist()
    if not collapsed:
        return
    shown = str(collapsed[:10])[:-1] + (", ...]" if len(collapsed) > 10 else "]")
    warnings.warn(
        f"DSSR: {len(collapsed)} of {salient_map.shape[0]} masks converged to all "
        f"background (an all-zero map) for examples {shown}. The target score's "
        "gradient was far below lambda: a saturated score (a very confident classifier) "
        "or a classifier that sees the target class in the reference itself (then "
        "replacing the object by the reference cannot delete the class; check the "
        "classifier's output on the reference). A reference that carries no evidence "
        "for the class (see captum_ext.metrics.reference_entropy; e.g. "
        "filler=Constant(0.0), the mean colour), a classifier trained with object-free "
        "negatives, or a smaller lambda_high avoids it.",
        UserWarning,
        stacklevel=2,
    )


def min_pool(mask: Tensor, kernel: tuple[int, int]) -> Tensor:
    """``1 - maxpool(1 - m, k1, stride 1, padding k1 // 2)``, the DSSR+ regulariser's map.

    Examples
    --------
    >>> m = torch.tensor([[[[1.0, 1.0, 0.0]]]])
    >>> min_pool(m, (1, 2))
    tensor([[[[1., 1., 0., 0.]]]])
    """
    padding = (kernel[0] // 2, kernel[1] // 2)
    return 1.0 - F.max_pool2d(1.0 - mask, kernel, stride=1, padding=padding)


def repeat_rows(args: tuple[Any, ...], num_examples: int) -> tuple[Any, ...]:
    """Repeat batch-sized tensors among ``additional_forward_args`` for a stacked batch.

    Examples
    --------
    >>> repeat_rows((torch.tensor([1, 2]), "x"), 2)
    (tensor([1, 2, 1, 2]), 'x')
    """
    return tuple(
        torch.cat([a, a])
        if isinstance(a, Tensor) and a.dim() > 0 and a.shape[0] == num_examples
        else a
        for a in args
    )
