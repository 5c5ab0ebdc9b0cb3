"""FGVis: fine-grained mask explanations with an adversarial defence (Wagner et al. 2019)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from captum.log import log_usage
from torch import Tensor
from tqdm.auto import tqdm

from captum_ext._utils.image_scale import scaled_pixel_weight
from captum_ext._utils.scores import target_scores
from captum_ext._utils.validation import (
    TargetLike,
    check_choice,
    check_int,
    check_non_negative,
    check_positive_int,
)
from captum_ext.attr._activation_filter import ActivationGradientFilter
from captum_ext.attr._base import InputsLike, MaskAttribution
from captum_ext.fillers.base import Filler, check_filler, remove
from captum_ext.fillers.constant import Constant
from captum_ext.fillers.noise import random_like

#: game -> (mask initialisation range, objective, whether the output is 1 - m).
GAMES: dict[str, tuple[tuple[float, float], str, bool]] = {
    "preservation": ((0.99, 1.0), "keep", False),
    "generation": ((0.0, 0.01), "keep", False),
    "deletion": ((0.99, 1.0), "delete", True),
    "repression": ((0.0, 0.01), "delete", True),
}

#: The supplement's line search at 224 x 224: 13 values log-spaced from 1e-4 down to 1e-10.
LAMBDA_SEARCH = tuple(10.0 ** (-4.0 - 0.5 * k) for k in range(13))
#: The default lambda at 224 x 224, the middle of the search range.
PAPER_LAMBDA = 1e-7


def validated_reference(filler: Filler, inputs: Tensor, generator: torch.Generator) -> Tensor:
    """The filler's reference for ``inputs``, checked to have their shape.

    Fillers whose reference depends on a hole mask (inpainting) get the whole image as
    hole: FGVis's reference is fixed for the whole optimisation.
    """
    holes = None
    if filler.needs_holes:
        holes = torch.ones_like(inputs[:, :1], dtype=torch.bool)
    reference = filler.reference(inputs, holes, generator=generator)
    if not isinstance(reference, Tensor) or reference.shape != inputs.shape:
        shape = tuple(reference.shape) if isinstance(reference, Tensor) else type(reference)
        raise ValueError(
            f"`filler` {filler!r} returned a reference of shape {shape} for inputs of "
            f"shape {tuple(inputs.shape)}; it must return the inputs' shape"
        )
    return reference.to(inputs.dtype).detach()


class FGVis(MaskAttribution):
    """Fine-grained visual explanations by mask optimisation (Wagner et al., CVPR 2019).

    A per-pixel mask ``m`` in [0, 1] forms ``x_tilde = m * x + (1 - m) * r`` with a
    reference ``r`` (default ``Constant(0)``: the dataset mean colour in a normalised
    input space) and is optimised in one of four games:

    ============  ==============  ==========================================  ========
    game          init of m       minimised objective                         output
    ============  ==============  ==========================================  ========
    preservation  U(0.99, 1)      ``lambda * ||m||_1 + CE(F(x_tilde), c)``    m
    generation    U(0, 0.01)      same as preservation                        m
    deletion      U(0.99, 1)      ``lambda * ||1 - m||_1 + p_c(F(x_tilde))``  1 - m
    repression    U(0, 0.01)      same as deletion                            1 - m
    ============  ==============  ==========================================  ========

    ``||.||_1`` sums over pixels. Each iteration is an SGD step (lr 0.1) on every
    example's mask with its gradient divided by its own maximum absolute value,
    followed by a clamp to [0, 1]; 500 iterations by default. Values of the returned
    map are in [0, 1]; higher = more evidence for the target.

    With ``defense=True`` (default) the gradient at every call of an elementwise
    activation module (``nn.ReLU``, ``nn.GELU``, ``nn.SiLU``, ``nn.Hardswish``,
    ``nn.Sigmoid``, ...) is set to 0 where the perturbed activation leaves
    ``[min(0, a0), max(0, a0)]``, ``a0`` being the clean image's activation (per call
    and per example; forward pass unchanged); in the generation and repression games,
    which start from the reference rather than the clean image, the gradient that moves
    an out-of-bound activation back towards its bound is kept. The model must contain
    activation modules; activation functions called without one (``F.relu``) cannot be
    bounded, and a warning says how many there were.

    The score (``score=``) decides what ``CE`` and ``p_c`` are: ``"softmax"`` (the
    paper: cross-entropy and the softmax probability), ``"sigmoid"`` for multi-label
    classifiers (``-log sigmoid(z_c)`` and ``sigmoid(z_c)``) and ``"logit"``
    (``-z_c`` and ``z_c``). A probability that is exactly 1 in floating point (a
    confident multi-label classifier's softmax on a one-object image) has a zero
    gradient: the deletion mask never moves and the map is 0, and FGVis warns. For such
    classifiers pass ``score="logit"`` with a ``lambda_`` of the size of a pixel's logit
    gradient (0.05 on the 64 x 64 shapes classifiers).

    Differs from the paper: with ``score="sigmoid"`` the lambda-search stopping
    rule asks whether the target is predicted (``sigmoid > 0.5``) instead of whether
    it is the top-1 class, the multi-label reading of "top-1". In the generation and
    repression games the defence also passes the gradient that lowers an out-of-bound
    activation: with the paper's pure indicator, activations that start outside their
    bounds drift further out, and the generation game still hallucinated 6 of 34
    classes on the shipped shapes-world classifier (0 of 34 with the restoring gate;
    see ``captum_ext/attr/_activation_filter.py``).

    Parameters
    ----------
    forward_func : callable or nn.Module
        The classifier, returning ``(N, num_classes)`` logits.
    game : {"preservation", "generation", "deletion", "repression"}
        Which game to play (default ``"deletion"``, the paper's choice for
        class-discriminative explanations).
    filler : Filler, optional
        The reference ``r`` (default ``Constant(0)``). Random fillers draw once per call
        from the call's ``seed``. A filler that needs a hole mask gets the whole image as
        hole.
    lambda_ : float, optional
        Weight of the L1 term when ``lambda_search`` is off. Default: 1e-7 at 224 x 224
        (the middle of the supplement's search range) times ``224^2 / (H * W)``: the L1
        term sums over pixels, so this keeps its weight against the score at every
        image size (1.2e-6 at 64 x 64). A value given is used as is.
    lambda_search : bool
        Per-example line search of the supplement: try 13 values log-spaced from 1e-4
        down to 1e-10 (at 224 x 224, scaled by ``224^2 / (H * W)`` as the default) and keep, for each example, the first whose result changes the
        top-1 class (deletion, repression) or makes the target the top-1 class
        (preservation, generation). Examples that never stop keep the last (smallest) result.
    iterations : int
        SGD iterations per lambda (default 500).
    lr : float
        SGD learning rate (default 0.1).
    defense : bool
        Gradient filtering at every call of an elementwise activation module (default
        True).
    score : {"softmax", "sigmoid", "logit"}
        See above (default ``"softmax"``).

    Attributes
    ----------
    chosen_lambda : Tensor
        After a call, the ``(N,)`` lambda each example's result was obtained with.

    Notes
    -----
    Examples never interact: every example has its own mask, its own gradient
    normalisation and its own stopping decision, and examples that stopped are left
    out of later forward passes. The mask noise is one draw of shape ``(N, 1, H, W)``,
    so an image gets the same initial mask alone and first in a batch. Batch
    independence assumes the model treats examples independently (eval mode).

    References
    ----------
    J. Wagner, J. M. Köhler, T. Gindele, L. Hetzel, J. T. Wiedemer and S. Behnke,
    "Interpretable and Fine-Grained Visual Explanations for Convolutional Neural
    Networks", IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR),
    2019. <https://arxiv.org/abs/1908.02686>

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from captum_ext.attr import FGVis
    >>> model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
    ...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    >>> x = torch.randn(2, 3, 16, 16)
    >>> attr = FGVis(model, game="preservation", iterations=5).attribute(x, target=[0, 2])
    >>> attr.shape, bool(attr.min() >= 0 and attr.max() <= 1)
    (torch.Size([2, 3, 16, 16]), True)
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        *,
        game: str = "deletion",
        filler: Filler | None = None,
        lambda_: float | None = None,
        lambda_search: bool = False,
        iterations: int = 500,
        lr: float = 0.1,
        defense: bool = True,
        score: str = "softmax",
    ) -> None:
        super().__init__(forward_func, score=score)
        self.game = check_choice(game, "game", GAMES)
        self.filler = check_filler(filler, default=Constant(0.0))
        self.lambda_ = None if lambda_ is None else check_non_negative(lambda_, "lambda_")
        self.lambda_search = bool(lambda_search)
        self.iterations = check_positive_int(iterations, "iterations")
        self.lr = check_non_negative(lr, "lr")
        if self.lr == 0:
            raise ValueError("`lr` must be > 0, got 0")
        self.defense = bool(defense)
        self.chosen_lambda: Tensor | None = None

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
        """FGVis attribution of ``inputs``.

        Parameters
        ----------
        inputs : Tensor or tuple of one Tensor
            ``(N, C, H, W)`` images in the classifier's input space (a tuple gives a
            tuple back).
        target : int, list of int or Tensor
            Target class(es), Captum semantics (required for multi-output models).
        additional_forward_args : any, optional
            Extra arguments to ``forward_func``.
        seed : int
            Seed of the mask initialisation and of random fillers; the same seed gives
            the same result.
        show_progress : bool
            Show a progress bar over the iterations.
        return_map : bool
            Return the ``(N, 1, H, W)`` map instead of the channel-expanded attribution.

        Returns
        -------
        Tensor
            The mask (preservation, generation) or ``1 - mask`` (deletion, repression),
            values in [0, 1], shaped like ``inputs`` (or ``(N, 1, H, W)``).
        """
        return self._run(
            inputs,
            target,
            additional_forward_args,
            return_map,
            seed=seed,
            show_progress=show_progress,
        )

    # ------------------------------------------------------------------ internals
    def _attribute_map(  # type: ignore[override]  # narrows **kwargs to its options
        self,
        inputs: Tensor,
        target: TargetLike,
        additional_forward_args: tuple[Any, ...],
        *,
        seed: int,
        show_progress: bool,
    ) -> Tensor:
        generator = torch.Generator().manual_seed(check_int(seed, "seed"))
        reference = validated_reference(self.filler, inputs, generator)
        (low, high), _, output_is_complement = GAMES[self.game]
        # One noise field shared by the batch: an image's result does not depend on its
        # position in the batch (nor on the batch size).
        noise = random_like(inputs[:1, :1], "uniform", generator)
        init = (low + (high - low) * noise).expand(inputs.shape[0], -1, -1, -1)

        with contextlib.ExitStack() as stack:
            gate = None
            if self.defense:
                # m ~ 0 at the start: x_tilde ~ r, outside the clean image's bounds
                starts_from_reference = high < 0.5
                gate = stack.enter_context(
                    ActivationGradientFilter(self._guarded_modules(), restore=starts_from_reference)
                )
            clean = self._clean_outputs(gate, inputs, additional_forward_args)
            target = self._target(target, inputs, clean.shape[1])
            mask = self._search(
                inputs,
                reference,
                target,
                clean,
                init,
                additional_forward_args,
                gate,
                show_progress,
            )
        if self.game == "deletion":
            self._warn_if_frozen(mask, clean, target, low)
        return 1.0 - mask if output_is_complement else mask

    def _warn_if_frozen(self, mask: Tensor, clean: Tensor, target: Tensor, low: float) -> None:
        """Warn about examples whose deletion mask never left its initialisation.

        A confident classifier's probability can be exactly 1 in floating point; its
        gradient is then exactly 0, the L1 term holds the mask at 1 and the map is 0.
        """
        frozen = mask.amin(dim=(1, 2, 3)) >= low
        if not bool(frozen.any()):
            return
        scores = [
            round(float(v), 6) for v in target_scores(clean[frozen], target[frozen], self.score)
        ]
        assert self.chosen_lambda is not None
        lambdas = sorted({float(v) for v in self.chosen_lambda[frozen]})
        if self.score != "logit" and 1.0 in scores:
            advice = (
                "A probability of exactly 1 has a zero gradient: for a classifier this "
                "confident, pass score='logit' with a lambda_ of the size of a pixel's "
                "logit gradient (e.g. 0.05 at 64 x 64; see the FGVis page of the docs)"
            )
        else:
            advice = "Pass a smaller lambda_, or lambda_search=True"
        warnings.warn(
            f"FGVis: the deletion mask of example(s) {frozen.nonzero().flatten().tolist()} "
            f"never moved (their maps are 0): on no pixel does the gradient of the target's "
            f"{self.score} score exceed lambda ({', '.join(f'{v:.3g}' for v in lambdas)}). "
            f"Their clean scores: {scores}. {advice}",
            UserWarning,
            stacklevel=6,
        )

    def _clean_outputs(
        self,
        gate: ActivationGradientFilter | None,
        inputs: Tensor,
        additional_forward_args: tuple[Any, ...],
    ) -> Tensor:
        """Logits of the clean inputs; with the defence, also records the activation bounds."""

        def run():
            return self._forward(inputs, additional_forward_args)

        if gate is not None:
            return gate.record(run)
        with torch.no_grad():
            return run()

    def _search(
        self,
        inputs: Tensor,
        reference: Tensor,
        target: Tensor,
        clean: Tensor,
        init: Tensor,
        additional_forward_args: tuple[Any, ...],
        gate: ActivationGradientFilter | None,
        show_progress: bool,
    ) -> Tensor:
        """Run the game for each lambda, dropping the examples that stopped."""
        scale = scaled_pixel_weight(1.0, *inputs.shape[-2:])
        if self.lambda_search:
            lambdas: tuple[float, ...] = tuple(lam * scale for lam in LAMBDA_SEARCH)
        else:
            lambdas = (PAPER_LAMBDA * scale if self.lambda_ is None else self.lambda_,)
        num_examples = inputs.shape[0]
        clean_top1 = clean.argmax(dim=1)
        result = init.clone()
        chosen = torch.empty(num_examples, dtype=inputs.dtype, device=inputs.device)
        rows = torch.arange(num_examples, device=inputs.device)
        total = len(lambdas) * self.iterations
        with tqdm(total=total, desc="FGVis", disable=not show_progress) as progress:
            for stage, lam in enumerate(lambdas):
                if gate is not None:
                    gate.select(rows)
                args = select_rows(additional_forward_args, rows, num_examples)
                x, r = inputs[rows], reference[rows]
                mask = self._optimise(x, r, target[rows], init[rows], lam, args, gate, progress)
                result[rows] = mask
                chosen[rows] = lam
                if stage == len(lambdas) - 1:
                    break
                with torch.no_grad():
                    logits = self._forward(remove(x, mask, r), args)
                done = self._stopped(logits, target[rows], clean_top1[rows])
                rows = rows[~done]  # one synchronisation per lambda
                if rows.numel() == 0:
                    break
        self.chosen_lambda = chosen
        return result

    def _perturbed_forward(
        self, x: Tensor, args: tuple[Any, ...], gate: ActivationGradientFilter | None
    ) -> Tensor:
        if gate is None:
            return self._forward(x, args)
        return gate.forward(lambda: self._forward(x, args))

    def _optimise(
        self,
        inputs: Tensor,
        reference: Tensor,
        target: Tensor,
        init: Tensor,
        lam: float,
        args: tuple[Any, ...],
        gate: ActivationGradientFilter | None,
        progress: tqdm,
    ) -> Tensor:
        """``iterations`` SGD steps on the masks of the examples in one group."""
        mask = init.clone().requires_grad_(True)
        keep_game = GAMES[self.game][1] == "keep"
        tiny = torch.finfo(inputs.dtype).tiny
        for _ in range(self.iterations):
            logits = self._perturbed_forward(remove(inputs, mask, reference), args, gate)
            loss = self._objective(logits, target, mask, lam, keep_game)
            (grad,) = torch.autograd.grad(loss.sum(), mask)
            scale = grad.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(tiny)
            with torch.no_grad():
                mask.sub_(grad / scale, alpha=self.lr).clamp_(0.0, 1.0)
            progress.update()
        return mask.detach()

    def _objective(
        self, logits: Tensor, target: Tensor, mask: Tensor, lam: float, keep_game: bool
    ) -> Tensor:
        """Per-example loss ``(N,)`` of the game."""
        if keep_game:
            sparsity = mask.sum(dim=(1, 2, 3))
            if self.score == "softmax":
                fit = F.cross_entropy(logits, target, reduction="none")
            elif self.score == "sigmoid":
                fit = -F.logsigmoid(logits.gather(1, target[:, None]).squeeze(1))
            else:
                fit = -logits.gather(1, target[:, None]).squeeze(1)
        else:
            sparsity = (1.0 - mask).sum(dim=(1, 2, 3))
            fit = target_scores(logits, target, self.score)
        return lam * sparsity + fit

    def _stopped(self, logits: Tensor, target: Tensor, clean_top1: Tensor) -> Tensor:
        """The lambda-search stopping rule, per example (bool ``(N,)``)."""
        keep_game = GAMES[self.game][1] == "keep"
        if self.score == "sigmoid":
            predicted = logits.gather(1, target[:, None]).squeeze(1) > 0
            return predicted if keep_game else ~predicted
        top1 = logits.argmax(dim=1)
        return top1 == target if keep_game else top1 != clean_top1


def select_rows(args: tuple[Any, ...], rows: Tensor, num_examples: int) -> tuple[Any, ...]:
    """Restrict the per-example tensors among ``additional_forward_args`` to ``rows``.

    Tensors whose first dimension is the batch size are indexed (Captum's convention for
    per-example additional arguments); everything else is passed unchanged.

    Examples
    --------
    >>> select_rows((torch.arange(3), 7), torch.tensor([2, 0]), 3)
    (tensor([2, 0]), 7)
    """
    if rows.numel() == num_examples:
        return args
    return tuple(
        a.index_select(0, rows.to(a.device))
        if isinstance(a, Tensor) and a.dim() > 0 and a.shape[0] == num_examples
        else a
        for a in args
    )
