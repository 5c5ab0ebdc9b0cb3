"""LIME on superpixels (Ribeiro et al. 2016) and LIME-G (Agarwal & Nguyen 2020), batched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from captum.log import log_usage
from torch import Tensor

from captum_ext._utils.image_scale import scaled_length
from captum_ext._utils.validation import (
    TargetLike,
    check_inputs,
    check_int,
    check_non_negative,
    check_positive_int,
    check_same_device,
    unwrap_single,
)
from captum_ext.attr._base import InputsLike, MaskAttribution
from captum_ext.attr._perturbation import BaselinesLike, format_baselines, perturbation_scores
from captum_ext.fillers.base import Filler, check_filler
from captum_ext.fillers.constant import Constant
from captum_ext.fillers.image_space import ImageSpace

#: SLIC's smoothing sigma in the authors' code, in pixels at 224 x 224.
PAPER_SLIC_SIGMA = 3.0


def slic_superpixels(
    pixels: Tensor, n_segments: int = 50, compactness: float = 30.0, sigma: float | None = None
) -> Tensor:
    """SLIC superpixels of an ``(N, C, H, W)`` pixel batch, labels ``0..S_n-1`` per image.

    scikit-image's SLIC has no batched form: this loops over images around it. Labels
    are renumbered to be contiguous. ``sigma`` (SLIC's pre-smoothing, pixels) defaults
    to the authors' 3 pixels at 224 x 224 scaled with the image side.

    Returns
    -------
    Tensor
        ``(N, 1, H, W)`` int64 on the pixels' device.

    Examples
    --------
    >>> seg = slic_superpixels(torch.rand(2, 3, 32, 32), n_segments=10)
    >>> seg.shape, int(seg.min())
    (torch.Size([2, 1, 32, 32]), 0)
    """
    # Imported here: scikit-image loads SciPy, seconds that `import captum_ext.attr` should not pay.
    from skimage.segmentation import slic

    if sigma is None:
        sigma = scaled_length(PAPER_SLIC_SIGMA, *pixels.shape[-2:])
    images = pixels.detach().permute(0, 2, 3, 1).double().cpu().numpy()
    labels = []
    for image in images:
        segments = slic(
            image,
            n_segments=n_segments,
            compactness=compactness,
            sigma=sigma,
            start_label=0,
            channel_axis=-1,
        )
        labels.append(np.unique(segments, return_inverse=True)[1].reshape(segments.shape))
    return torch.from_numpy(np.stack(labels)).long().unsqueeze(1).to(pixels.device)


def check_feature_mask(feature_mask: object, inputs: Tensor) -> Tensor:
    """Validate a LIME ``feature_mask``: integer labels ``0..S_n-1`` per example.

    Captum's forms: a tensor broadcastable to the ``(N, C, H, W)`` inputs (``(H, W)``,
    ``(1, H, W)``, ``(1, 1, H, W)``, ``(N, 1, H, W)``, ``(N, C, H, W)``, ...), alone or
    in a one-element tuple, with the same label on every channel of a pixel (the
    methods attribute pixels). Also ``(N, H, W)``, one mask per example. Every label
    from 0 to the example's largest must occur.

    Returns
    -------
    Tensor
        ``(N, 1, H, W)`` int64.

    Examples
    --------
    >>> check_feature_mask(torch.arange(4).view(1, 2, 2), torch.zeros(3, 3, 2, 2)).shape
    torch.Size([3, 1, 2, 2])
    """
    feature_mask = unwrap_single(feature_mask, "feature_mask")
    if not isinstance(feature_mask, Tensor):
        raise TypeError(f"`feature_mask` must be a torch.Tensor, got {type(feature_mask).__name__}")
    if (
        feature_mask.is_floating_point()
        or feature_mask.is_complex()
        or feature_mask.dtype == torch.bool
    ):
        raise TypeError(f"`feature_mask` must hold integer labels, got dtype {feature_mask.dtype}")
    n, c, h, w = inputs.shape
    mask = feature_mask
    if mask.dim() == 3 and mask.shape[0] == n and n not in (1, c):
        mask = mask[:, None]  # (N, H, W): one mask per example
    try:
        mask = mask.expand(n, c, h, w)
    except RuntimeError:
        raise ValueError(
            f"`feature_mask` of shape {tuple(feature_mask.shape)} cannot be broadcast to the "
            f"inputs {tuple(inputs.shape)}; pass e.g. ({h}, {w}), (1, 1, {h}, {w}) or "
            f"({n}, 1, {h}, {w}) labels"
        ) from None
    check_same_device(inputs, mask, names=("inputs", "feature_mask"))
    if c > 1 and not bool((mask == mask[:, :1]).all()):
        raise ValueError(
            "`feature_mask` must give every channel of a pixel the same label (the method "
            "attributes pixels, not channels)"
        )
    mask = mask[:, :1].long()
    flat = mask.flatten(1)
    if int(flat.min()) < 0:
        raise ValueError(f"`feature_mask` labels must be 0..S-1, found {int(flat.min())}")
    count = int(flat.max()) + 1
    present = torch.zeros(n, count, dtype=torch.bool, device=mask.device)
    present.scatter_(1, flat, True)
    expected = torch.arange(count, device=mask.device) <= flat.amax(dim=1, keepdim=True)
    if not torch.equal(present, expected):
        bad = int((present != expected).any(dim=1).nonzero()[0])
        raise ValueError(
            f"`feature_mask` labels must be 0..S-1 with every label present; example {bad} "
            f"skips some of 0..{int(flat[bad].max())}"
        )
    return mask.contiguous()


def weighted_ridge(features: Tensor, targets: Tensor, weights: Tensor, alpha: float) -> Tensor:
    """Batched weighted ridge regression with an unpenalised intercept, in closed form.

    Minimises ``sum_i w_i (y_i - b - x_i . beta)^2 + alpha * |beta|^2`` per problem
    (scikit-learn's ``Ridge(alpha).fit(X, y, sample_weight=w)``): centre ``X`` and
    ``y`` by their weighted means, then solve ``(Xc' W Xc + alpha I) beta = Xc' W yc``.

    Parameters
    ----------
    features : Tensor
        ``(B, M, S)`` design matrices.
    targets : Tensor
        ``(B, M)``.
    weights : Tensor
        ``(B, M)`` non-negative sample weights.
    alpha : float
        L2 penalty (> 0 keeps constant columns at 0).

    Returns
    -------
    Tensor
        ``(B, S)`` coefficients (float64).

    Examples
    --------
    >>> x = torch.tensor([[[0.0], [1.0], [2.0]]]); y = 3 * x[..., 0] + 1
    >>> weighted_ridge(x, y, torch.ones(1, 3), alpha=1e-9).round(decimals=4)
    tensor([[3.]], dtype=torch.float64)
    """
    x, y, w = features.double(), targets.double(), weights.double()
    total = w.sum(dim=1, keepdim=True).clamp_min(1e-300)
    x_mean = (w[..., None] * x).sum(dim=1, keepdim=True) / total[..., None]
    y_mean = (w * y).sum(dim=1, keepdim=True) / total
    xc, yc = x - x_mean, y - y_mean
    xw = xc * w[..., None]
    gram = xw.transpose(1, 2) @ xc
    gram = gram + alpha * torch.eye(x.shape[2], dtype=x.dtype, device=x.device)
    rhs = (xw.transpose(1, 2) @ yc[..., None]).squeeze(2)
    return torch.linalg.solve(gram, rhs)


class SuperpixelLime(MaskAttribution):
    """LIME on superpixels, fully batched; LIME-G with an inpainting filler.

    SLIC superpixels (Achanta et al. 2012; n_segments 50, compactness 30 and a smoothing
    sigma of 3 pixels at 224 x 224 scaled with the image side, computed in pixel space) unless ``feature_mask`` is given; ``n_samples`` binary vectors, the
    first all-on, every other superpixel on with probability 0.5; off superpixels filled
    by the filler (``Constant(0)``: LIME; ``Inpaint(inpainter, space)``: LIME-G);
    sample weights ``exp(-d^2 / w^2)`` with ``d`` the cosine distance between the binary
    vector and all-ones (``d = 1`` for the all-off vector) and ``w = 0.25``; weighted
    ridge regression (``alpha = 1``, unpenalised intercept) of the target score on the
    binary vectors, solved in closed form in torch; each superpixel's coefficient is
    painted on its pixels. Values are regression coefficients of the score (roughly in
    [-1, 1] for probabilities); higher = more evidence for the target.

    Superpixels without ``feature_mask``: with an ``ImageSpace`` (``space``, or the
    filler's) SLIC runs on the pixels ``space.to_pixels(inputs)`` clipped to [0, 1]
    (the exact path; clipping only matters for noisy inputs such as
    ``captum.attr.NoiseTunnel``'s). Without one, SLIC runs on a copy of each image
    rescaled to [0, 1] by its own minimum and maximum, so normalised inputs (e.g.
    ImageNet-normalised ones) work by default; one affine map per image keeps the
    image's structure and the ratios of its colour distances, but not their scale,
    which SLIC's ``compactness`` is weighed against. Pass ``space`` for the paper's
    segmentation, or ``feature_mask`` (as with ``captum.attr.Lime``) for your own.

    Drop-in for ``captum.attr.Lime`` on images: ``attribute`` takes Lime's arguments
    in Lime's order (``inputs, baselines, target, additional_forward_args,
    feature_mask, n_samples, perturbations_per_eval, return_input_shape,
    show_progress``) with their meaning; ``seed`` and ``return_map`` come after,
    keyword-only. Defaults follow the paper where it has its own (1,000 samples, 50 per
    forward pass; Captum: 25 and 1). ``baselines=None`` uses the filler
    (``Constant(0)`` by default, Captum's 0).

    Differs from the reference ``lime_image``: the kernel is ``exp(-d^2/w^2)`` as the
    LIME paper defines it (``lime_image`` takes its square root) and the regression uses
    every superpixel (``lime_image`` keeps the top ``num_features`` after a feature
    selection step; the paper's text describes LASSO). The name avoids a clash with
    ``captum.attr.Lime``, of which this is a batched, image-specific special case.

    Batching: the perturbed images of all examples are built and scored in forward passes
    of ``N * perturbations_per_eval`` images (inpainting batched alike); only SLIC loops
    over images.

    Parameters
    ----------
    forward_func : callable or nn.Module
        The classifier.
    filler : Filler, optional
        How off superpixels are removed; default ``Constant(0)``.
    score : {"softmax", "sigmoid", "logit"}
        Score being explained.
    space : ImageSpace, optional
        The classifier's normalisation, used to run SLIC on pixels; default the
        filler's ``space`` if it has one, else the identity.
    n_segments, compactness : float
        SLIC parameters (paper defaults 50, 30; both independent of the image size).
    sigma : float, optional
        SLIC's Gaussian pre-smoothing in pixels; default the paper's 3 at 224 x 224,
        scaled with the image side (``3 * sqrt(H * W) / 224``, 0.86 at 64 x 64).
    kernel_width : float
        ``w`` of the sample weights (0.25).
    alpha : float
        Ridge penalty (1).

    References
    ----------
    M. T. Ribeiro, S. Singh and C. Guestrin, "Why Should I Trust You?: Explaining the
    Predictions of Any Classifier", ACM SIGKDD International Conference on Knowledge
    Discovery and Data Mining (KDD), 2016. <https://arxiv.org/abs/1602.04938>

    C. Agarwal and A. Nguyen, "Explaining Image Classifiers by Removing Input Features
    Using Generative Models", Asian Conference on Computer Vision (ACCV), 2020.
    <https://arxiv.org/abs/1910.04256>; the authors' code:
    <https://github.com/anguyen8/generative-attribution-methods>.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    >>> lime = SuperpixelLime(model)
    >>> lime.attribute(torch.rand(2, 3, 32, 32), target=0, n_samples=50).shape
    torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        *,
        filler: Filler | None = None,
        score: str = "softmax",
        space: ImageSpace | None = None,
        n_segments: int = 50,
        compactness: float = 30.0,
        sigma: float | None = None,
        kernel_width: float = 0.25,
        alpha: float = 1.0,
    ) -> None:
        super().__init__(forward_func, score=score)
        self.filler = check_filler(filler, default=Constant(0.0))
        if space is not None and not isinstance(space, ImageSpace):
            raise TypeError(f"`space` must be an ImageSpace, got {type(space).__name__}")
        self.space: ImageSpace | None = space or getattr(self.filler, "space", None)
        self.n_segments = check_positive_int(n_segments, "n_segments")
        self.compactness = check_non_negative(compactness, "compactness")
        self.sigma = None if sigma is None else check_non_negative(sigma, "sigma")
        self.kernel_width = check_non_negative(kernel_width, "kernel_width")
        if self.kernel_width == 0:
            raise ValueError("`kernel_width` must be > 0")
        self.alpha = check_non_negative(alpha, "alpha")

    @log_usage()
    def attribute(
        self,
        inputs: InputsLike,
        baselines: BaselinesLike = None,
        target: TargetLike = None,
        additional_forward_args: Any = None,
        feature_mask: None | Tensor | tuple[Tensor] = None,
        n_samples: int = 1000,
        perturbations_per_eval: int = 50,
        return_input_shape: bool = True,
        show_progress: bool = False,
        *,
        seed: int = 0,
        return_map: bool = False,
    ) -> Tensor | tuple[Tensor]:
        """LIME attribution of ``inputs`` (``captum.attr.Lime``'s order).

        Parameters
        ----------
        inputs : Tensor or tuple of one Tensor
            ``(N, C, H, W)`` images in the classifier's input space.
        baselines : number, Tensor or tuple of one of them, optional
            Captum-style constant reference used instead of the filler.
        target : int, list of int or Tensor
            Target class(es), Captum semantics.
        additional_forward_args : any, optional
            Extra arguments to ``forward_func``.
        feature_mask : Tensor or tuple of one Tensor, optional
            Integer superpixel labels ``0..S-1``, broadcastable to the inputs as in
            Captum (``(H, W)``, ``(1, 1, H, W)``, ``(N, 1, H, W)``, ...) or ``(N, H, W)``;
            a pixel's channels share its label. Default: SLIC (see the class docstring).
        n_samples : int
            Number of samples ``N`` (>= 2; the first is the unperturbed image).
        perturbations_per_eval : int
            Samples per example in one forward pass.
        return_input_shape : bool
            True: each superpixel's coefficient painted on its pixels (shaped like
            ``inputs``). False: the ``(N, S)`` coefficients (``S`` the most superpixels
            of an example; missing ones are 0), one tensor, as Captum's Lime returns its
            interpretable model's weights.
        show_progress : bool
            Show a progress bar.
        seed : int
            Seed of the samples (and of random fillers).
        return_map : bool
            Return the ``(N, 1, H, W)`` map instead of the channel-expanded attribution
            (ignored with ``return_input_shape=False``).

        Returns
        -------
        Tensor or tuple of one Tensor
            With ``return_input_shape=True``, shaped like ``inputs`` (or ``(N, 1, H, W)``)
            with the structure of ``inputs``.
        """
        if not return_input_shape:
            inputs, return_map = check_inputs(inputs), True
        return self._run(
            inputs,
            target,
            additional_forward_args,
            return_map,
            feature_mask=feature_mask,
            baselines=baselines,
            n_samples=n_samples,
            perturbations_per_eval=perturbations_per_eval,
            show_progress=show_progress,
            seed=seed,
            coefficients=not return_input_shape,
        )

    def superpixels(self, inputs: Tensor) -> Tensor:
        """The ``(N, 1, H, W)`` SLIC labels used when no ``feature_mask`` is given.

        Examples
        --------
        >>> from torch import nn
        >>> lime = SuperpixelLime(nn.Flatten(), n_segments=4)
        >>> x = torch.rand(1, 3, 16, 16)
        >>> torch.equal(lime.superpixels(x), lime.superpixels(x * 10 - 3))  # min-max rescaled
        True
        """
        if self.space is not None:
            pixels = self.space.to_pixels(inputs).clamp(0.0, 1.0)
        else:
            low = inputs.amin(dim=(1, 2, 3), keepdim=True)
            high = inputs.amax(dim=(1, 2, 3), keepdim=True)
            pixels = (inputs - low) / (high - low).clamp_min(torch.finfo(inputs.dtype).tiny)
        return slic_superpixels(pixels, self.n_segments, self.compactness, self.sigma)

    def _attribute_map(  # type: ignore[override]  # narrows **kwargs to its options
        self,
        inputs: Tensor,
        target: TargetLike,
        additional_forward_args: tuple[Any, ...],
        *,
        feature_mask: Tensor | None,
        baselines: BaselinesLike,
        n_samples: int,
        perturbations_per_eval: int,
        show_progress: bool,
        seed: int,
        coefficients: bool,
    ) -> Tensor:
        check_positive_int(n_samples, "n_samples", minimum=2)
        check_positive_int(perturbations_per_eval, "perturbations_per_eval")
        n, _, h, w = inputs.shape
        with torch.no_grad():
            num_classes = self._forward(inputs, additional_forward_args).shape[1]
        target_t = self._target(target, inputs, num_classes)
        filler = format_baselines(baselines, inputs) or self.filler
        if feature_mask is None:
            segments = self.superpixels(inputs)
        else:
            segments = check_feature_mask(feature_mask, inputs)
        counts = segments.flatten(1).amax(dim=1) + 1  # (N,) superpixels per example
        width = int(counts.max())
        real = torch.arange(width, device=inputs.device) < counts[:, None]  # (N, S)

        generator = torch.Generator().manual_seed(check_int(seed, "seed"))
        draws = torch.rand(n, n_samples, width, generator=generator).to(inputs.device) < 0.5
        draws[:, 0] = True
        samples = draws & real[:, None]  # (N, M, S); padded superpixels are always off

        flat_segments = segments.flatten(1)  # (N, HW)

        def holes_for(start: int, stop: int) -> Tensor:
            chunk = samples[:, start:stop]  # (N, p, S)
            index = flat_segments[:, None].expand(-1, stop - start, -1)
            keep = chunk.gather(2, index)  # (N, p, HW)
            return (~keep).transpose(0, 1).reshape(stop - start, n, 1, h, w)

        scores = perturbation_scores(
            self.forward_func,
            inputs,
            target_t,
            additional_forward_args,
            filler,
            self.score,
            holes_for,
            n_samples,
            perturbations_per_eval,
            generator,
            show_progress,
            "SuperpixelLime",
        )
        on = samples.sum(dim=2).double()
        distance = 1 - torch.sqrt(on / counts[:, None].double())  # cosine distance to all-ones
        weights = torch.exp(-(distance**2) / self.kernel_width**2)
        weights_of = weighted_ridge(samples.double(), scores, weights, self.alpha).to(inputs.dtype)
        if coefficients:
            return weights_of.masked_fill(~real, 0.0)
        return weights_of.gather(1, flat_segments).view(n, 1, h, w)
