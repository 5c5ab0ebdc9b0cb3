"""Training losses of the learned Explainer (Stalder et al. 2022, eq. 1-8).

Each term is its own function on plain tensors; :class:`ExplainerLoss` combines them
(with the frozen classifier's two forward passes) and :class:`RTISLoss` is the paper's
baseline objective (Dabkowski & Gal 2017, adapted to multi-label targets). Both are
called as ``loss(images, labels, mask_logits, classifier)`` and return a dict of named
terms whose ``"loss"`` entry is the total.

"The reference code" below is the authors' implementation,
<https://github.com/stevenstalder/NN-Explainer>.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from captum_ext._utils.scores import as_logits
from captum_ext._utils.validation import check_choice, check_non_negative, check_tensor
from captum_ext.fillers.base import Filler, check_filler, remove
from captum_ext.fillers.blur import blur
from captum_ext.fillers.constant import Constant
from captum_ext.fillers.noise import random_like

Classifier = Callable[[Tensor], Tensor]


# --------------------------------------------------------------------------- masks
def aggregate_masks(class_masks: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Target mask ``m = max_{c in Y} s_c`` and non-target mask ``n = max_{c not in Y} s_c``.

    Parameters
    ----------
    class_masks : Tensor
        ``(N, K, H, W)`` per-class masks ``s_c`` in [0, 1].
    labels : Tensor
        ``(N, K)`` multi-hot labels (``> 0.5`` = in ``Y``).

    Returns
    -------
    m, n : Tensor
        ``(N, 1, H, W)`` each; ``m = 0`` for an image with no target and ``n = 0`` for an
        image whose every class is a target.

    Examples
    --------
    >>> s = torch.tensor([0.2, 0.7, 0.4]).view(1, 3, 1, 1)
    >>> m, n = aggregate_masks(s, torch.tensor([[1.0, 0.0, 1.0]]))
    >>> m.item(), n.item()
    (0.4000000059604645, 0.699999988079071)
    """
    is_target = (labels > 0.5)[:, :, None, None]
    zero = class_masks.new_zeros(())
    m = torch.where(is_target, class_masks, zero).amax(dim=1, keepdim=True)
    n = torch.where(is_target, zero, class_masks).amax(dim=1, keepdim=True)
    return m, n


# --------------------------------------------------------------------------- terms
def classification_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Eq. 2: multi-label BCE of ``F(m * x)`` against the labels, mean over classes, ``(N,)``.

    Examples
    --------
    >>> classification_loss(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))
    tensor([0.6931])
    """
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(dim=1)


def negative_entropy(logits: Tensor, eps: float = 1e-16) -> Tensor:
    """Eq. 3: ``mean_c p log p`` with ``p = softmax(F((1 - m) * x))`` clamped at ``eps``, ``(N,)``.

    Minimal (``-log(K) / K``) for a uniform prediction.

    Examples
    --------
    >>> negative_entropy(torch.zeros(1, 4))  # uniform: (1/4) * log(1/4)
    tensor([-0.3466])
    """
    p = logits.softmax(dim=1).clamp_min(eps)
    return (p * p.log()).mean(dim=1)


def mask_area(masks: Tensor) -> Tensor:
    """``A(m)``: the mean of each mask over its pixels, ``(N,)`` for ``(N, 1, H, W)`` masks.

    Examples
    --------
    >>> mask_area(torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]]))
    tensor([0.5000])
    """
    return masks.flatten(1).mean(dim=1)


def area_bound(masks: Tensor, min_area: float, max_area: float) -> Tensor:
    """Eq. 4-5: the area bound ``B(s)`` of each mask, shape ``masks.shape[:-2]``.

    The mask's values are sorted in descending order (``q_mask``) and compared with
    ``q_min`` (``floor(Z * a)`` ones, then zeros) and ``q_max`` (``floor(Z * b)`` ones):
    ``B = mean(relu(q_min - q_mask)) + mean(relu(q_mask - q_max))``, ``Z = H * W`` of
    the mask itself.

    Parameters
    ----------
    masks : Tensor
        ``(..., H, W)`` masks in [0, 1].
    min_area, max_area : float
        ``a`` and ``b``, fractions of the image with ``0 <= a <= b <= 1``.

    Examples
    --------
    >>> s = torch.zeros(4, 4); s[0, :2] = 1.0  # 2 of 16 pixels on
    >>> area_bound(s, 0.25, 0.5)  # q_min asks for 4 ones: 2 missing -> 2 / 16
    tensor(0.1250)
    """
    if not 0.0 <= min_area <= max_area <= 1.0:
        raise ValueError(
            f"area bounds must satisfy 0 <= min_area <= max_area <= 1, got {min_area}, {max_area}"
        )
    flat = masks.flatten(-2)
    z = flat.shape[-1]
    q_mask = flat.sort(dim=-1, descending=True).values
    rank = torch.arange(z, device=masks.device)
    q_min = (rank < math.floor(z * min_area)).to(flat.dtype)
    q_max = (rank < math.floor(z * max_area)).to(flat.dtype)
    return F.relu(q_min - q_mask).mean(dim=-1) + F.relu(q_mask - q_max).mean(dim=-1)


def total_variation(masks: Tensor, power: int = 1) -> Tensor:
    """Eq. 7: anisotropic forward-difference TV of each mask, divided by ``Z = H * W``.

    ``TV(x) = (sum |x[i,j] - x[i+1,j]|^p + sum |x[i,j] - x[i,j+1]|^p) / Z``, differences
    taken inside the image only. ``power=1`` is the Explainer's TV, ``power=2`` RTIS's.

    Parameters
    ----------
    masks : Tensor
        ``(..., H, W)``.
    power : int
        Exponent ``p`` of the differences.

    Returns
    -------
    Tensor
        Shape ``masks.shape[:-2]``.

    Examples
    --------
    >>> total_variation(torch.tensor([[0.0, 1.0], [0.0, 1.0]]))  # two unit jumps / 4
    tensor(0.5000)
    """
    dy = (masks[..., 1:, :] - masks[..., :-1, :]).abs().pow(power).sum(dim=(-2, -1))
    dx = (masks[..., :, 1:] - masks[..., :, :-1]).abs().pow(power).sum(dim=(-2, -1))
    return (dy + dx) / (masks.shape[-2] * masks.shape[-1])


def class_area_bound(
    class_masks: Tensor, labels: Tensor, min_area: float, max_area: float, reduction: str = "mean"
) -> Tensor:
    """The last term of eq. 6: ``B(s_c)`` over the target classes of each image, ``(N,)``.

    Parameters
    ----------
    class_masks : Tensor
        ``(N, K, H, W)`` masks.
    labels : Tensor
        ``(N, K)`` multi-hot labels.
    min_area, max_area : float
        ``a``, ``b`` of :func:`area_bound`.
    reduction : {"mean", "sum"}
        Average over the targets (eq. 6) or sum (the reference code). An image with no
        target gets 0.

    Examples
    --------
    >>> s = torch.zeros(1, 2, 2, 2); s[0, 0] = 1.0
    >>> class_area_bound(s, torch.tensor([[1.0, 1.0]]), 0.5, 0.5)  # (0.5 + 0.5) / 2
    tensor([0.5000])
    """
    check_choice(reduction, "reduction", ("mean", "sum"))
    is_target = (labels > 0.5).to(class_masks.dtype)
    per_class = area_bound(class_masks, min_area, max_area) * is_target
    total = per_class.sum(dim=1)
    if reduction == "sum":
        return total
    return total / is_target.sum(dim=1).clamp_min(1.0)


# --------------------------------------------------------------------------- losses
def _check_batch(images: Tensor, labels: Tensor, mask_logits: Tensor) -> None:
    check_tensor(images, "images", ndim=4)
    check_tensor(labels, "labels", ndim=2)
    check_tensor(mask_logits, "mask_logits", ndim=4, finite=False)
    n, _, h, w = images.shape
    if labels.shape[0] != n or mask_logits.shape[0] != n:
        raise ValueError(
            f"batch sizes differ: images {n}, labels {labels.shape[0]}, "
            f"mask_logits {mask_logits.shape[0]}"
        )
    if tuple(mask_logits.shape[1:]) != (labels.shape[1], h, w):
        raise ValueError(
            f"`mask_logits` must have shape ({n}, {labels.shape[1]}, {h}, {w}) (one map per "
            f"class at the image size), got {tuple(mask_logits.shape)}"
        )


def _classify_pair(classifier: Classifier, first: Tensor, second: Tensor, num_classes: int):
    """Classifier logits of two batches, computed in one call (eval mode: no batch statistics)."""
    logits = as_logits(classifier(torch.cat([first, second])), "classifier")
    if logits.shape[1] != num_classes:
        raise ValueError(
            f"the classifier returned {logits.shape[1]} classes but the labels have {num_classes}"
        )
    return logits.split(first.shape[0])


def class_specific_loss(
    images: Tensor,
    labels: Tensor,
    class_masks: Tensor,
    classifier: Classifier,
    filler: Filler,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Each target channel alone keeps its class and nothing else, ``(N,)``.

    For every (image, target class ``c``) pair the image is masked with that class's own
    mask, ``s_c x = s_c * x + (1 - s_c) * r``, and the classifier's outputs are compared
    with the one-hot label of ``c``: ``BCE(F(s_c x), onehot(c))`` averaged over the
    classes. The loss is averaged over an image's targets (0 for an image without one).
    It is Table 1's criterion of Stalder et al. (the class-specific masking matrix: the
    diagonal high, the off-diagonal low) written as a training term; the paper's loss
    has no such term (see ``docs/methods/explainer.md``, "Departures").

    Parameters
    ----------
    images : Tensor
        ``(N, C, H, W)`` images in the classifier's input space.
    labels : Tensor
        ``(N, K)`` multi-hot labels.
    class_masks : Tensor
        ``(N, K, H, W)`` masks ``s_c`` in [0, 1].
    classifier : callable
        The frozen classifier, called once on all pairs.
    filler : Filler
        Reference ``r`` of the removal operator (its holes: ``s_c < 0.5``).
    generator : torch.Generator, optional
        Random source of random fillers.

    Examples
    --------
    >>> from torch import nn
    >>> classifier = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))
    >>> from captum_ext.fillers import Constant
    >>> class_specific_loss(torch.randn(2, 3, 4, 4), torch.tensor([[1.0, 1, 0], [0, 0, 0]]),
    ...                     torch.rand(2, 3, 4, 4), classifier, Constant(0.0)).shape
    torch.Size([2])
    """
    img, cls = (labels > 0.5).nonzero(as_tuple=True)
    per_image = class_masks.new_zeros(labels.shape[0])
    if img.numel() == 0:
        return per_image + class_masks.sum() * 0.0
    keep = class_masks[img, cls].unsqueeze(1)
    pair_images = images[img]
    reference = filler.reference(pair_images, keep.detach() < 0.5, generator=generator)
    logits = as_logits(classifier(remove(pair_images, keep, reference)), "classifier")
    one_hot = F.one_hot(cls, labels.shape[1]).to(logits.dtype)
    per_pair = classification_loss(logits, one_hot)
    totals = per_image.index_add(0, img, per_pair.to(per_image.dtype))
    counts = per_image.index_add(0, img, torch.ones_like(per_pair, dtype=per_image.dtype))
    return totals / counts.clamp_min(1.0)


def _zero_terms(mask_logits: Tensor, names: tuple[str, ...]) -> dict[str, Tensor]:
    # Keeps the graph connected (a valid backward) for a batch without any target.
    zero = mask_logits.sum() * 0.0
    return {name: zero for name in ("loss",) + names}


class MaskLoss(nn.Module):
    """Interface of the Explainer training losses.

    ``loss(images, labels, mask_logits, classifier, generator=None)`` returns a dict of
    weighted terms (names in :attr:`TERMS`) and their sum under ``"loss"``.
    """

    TERMS: tuple[str, ...] = ()

    def forward(
        self,
        images: Tensor,
        labels: Tensor,
        mask_logits: Tensor,
        classifier: Classifier,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        raise NotImplementedError


class ExplainerLoss(MaskLoss):
    """The Explainer's loss (Stalder et al. 2022, eq. 1-8, with the reference code's weights).

    ``L = BCE(F(m x), y) + l_e * mean(p log p)[F((1 - m) x)]
    + l_m * A(m) + l_n * A(n) + l_ac * B_Y(S) + l_tv * (TV(m) + TV(n))``, each term
    averaged over the images of the batch that have at least one target (images
    without a target are skipped). ``m x`` is the removal operator
    ``m * x + (1 - m) * r`` with the filler's reference ``r`` (``Constant(0)``: the
    reference code's ``m * x`` on normalised images,
    <https://github.com/stevenstalder/NN-Explainer>).

    Parameters
    ----------
    l_e, l_tv, l_ac, l_m, l_n : float
        Weights of the entropy, TV, area-bound, target-area and non-target-area terms
        (defaults: the reference code's VOC / VGG-16 values; the paper's ``l_a`` is
        split into ``l_m``, ``l_n``, ``l_ac`` as in that code).
    min_area, max_area : float
        ``a`` and ``b`` of the area bound.
    bound_reduction : {"mean", "sum"}
        How ``B`` is reduced over an image's targets: mean (eq. 6, default) or sum
        (the reference code).
    filler : Filler, optional
        Reference of the removal operator (default ``Constant(0)``). A hole-dependent
        filler (``Inpaint``) gets its own reference for the kept image (holes ``m < 0.5``)
        and for the complement (holes ``m >= 0.5``).
    removal_filler : Filler, optional
        Reference of the complement image ``(1 - m) x`` only, the one whose class must
        be gone (default: ``filler``). An inpainter here removes an object without
        leaving its silhouette, so the masks need no halo around the object to hide
        its shape; the kept images keep ``filler`` (inpainting most of an image from a
        small kept region makes images the classifier has never seen). A departure
        from the paper, documented in ``docs/methods/explainer.md``.
    l_c : float
        Weight of :func:`class_specific_loss` (each target channel alone keeps its class
        and excludes the others). 0, the default, is the paper's loss; when positive the
        term is logged as ``class_specific`` and costs one more classifier pass per
        (image, target) pair. A departure from the paper, documented in
        ``docs/methods/explainer.md``.

    Examples
    --------
    >>> from torch import nn
    >>> classifier = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    >>> terms = ExplainerLoss()(torch.randn(2, 3, 8, 8), torch.tensor([[1., 0, 0, 1], [0, 1, 0, 0]]),
    ...                         torch.randn(2, 4, 8, 8), classifier)
    >>> sorted(terms)
    ['area_bound', 'area_nontarget', 'area_target', 'classification', 'entropy', 'loss', 'tv']
    """

    TERMS = ("classification", "entropy", "area_target", "area_nontarget", "area_bound", "tv")

    def __init__(
        self,
        l_e: float = 1.0,
        l_tv: float = 1.0,
        l_ac: float = 1.0,
        l_m: float = 0.1,
        l_n: float = 0.3,
        min_area: float = 0.05,
        max_area: float = 0.3,
        bound_reduction: str = "mean",
        filler: Filler | None = None,
        l_c: float = 0.0,
        removal_filler: Filler | None = None,
    ) -> None:
        super().__init__()
        self.weights = {
            "classification": 1.0,
            "entropy": check_non_negative(l_e, "l_e"),
            "area_target": check_non_negative(l_m, "l_m"),
            "area_nontarget": check_non_negative(l_n, "l_n"),
            "area_bound": check_non_negative(l_ac, "l_ac"),
            "tv": check_non_negative(l_tv, "l_tv"),
            "class_specific": check_non_negative(l_c, "l_c"),
        }
        if not 0.0 <= min_area <= max_area <= 1.0:
            raise ValueError(
                "`min_area` and `max_area` must satisfy 0 <= min_area <= max_area <= 1, got "
                f"{min_area} and {max_area}"
            )
        self.min_area, self.max_area = float(min_area), float(max_area)
        self.bound_reduction = check_choice(bound_reduction, "bound_reduction", ("mean", "sum"))
        self.filler = check_filler(filler, default=Constant(0.0))
        self.removal_filler = check_filler(removal_filler, default=self.filler)
        if self.weights["class_specific"] > 0:
            self.TERMS = type(self).TERMS + ("class_specific",)

    def forward(
        self,
        images: Tensor,
        labels: Tensor,
        mask_logits: Tensor,
        classifier: Classifier,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Loss terms (already weighted) and their sum under ``"loss"``.

        Parameters
        ----------
        images : Tensor
            ``(N, C, H, W)`` in the classifier's input space.
        labels : Tensor
            ``(N, K)`` multi-hot labels.
        mask_logits : Tensor
            ``(N, K, H, W)`` Explainer logits ``S``.
        classifier : callable
            The frozen classifier; called once on ``[m x; (1 - m) x]`` (and once on the
            per-class images when ``l_c > 0``).
        generator : torch.Generator, optional
            Random source of random fillers.
        """
        _check_batch(images, labels, mask_logits)
        keep = (labels > 0.5).any(dim=1)
        if not bool(keep.any()):
            return _zero_terms(mask_logits, self.TERMS)
        if not bool(keep.all()):
            images, labels, mask_logits = images[keep], labels[keep], mask_logits[keep]
        class_masks = mask_logits.sigmoid()
        m, n = aggregate_masks(class_masks, labels)
        kept_holes = m.detach() < 0.5
        reference = self.filler.reference(images, kept_holes, generator=generator)
        # A hole-dependent reference (inpainting) is only valid for its own holes: the
        # complement image removes the other pixels and needs its own.
        complement_reference = (
            reference
            if self.removal_filler is self.filler and not self.filler.needs_holes
            else self.removal_filler.reference(images, ~kept_holes, generator=generator)
        )
        logits_kept, logits_removed = _classify_pair(
            classifier,
            remove(images, m, reference),
            remove(images, 1 - m, complement_reference),
            labels.shape[1],
        )
        raw = {
            "classification": classification_loss(logits_kept, labels),
            "entropy": negative_entropy(logits_removed),
            "area_target": mask_area(m),
            "area_nontarget": mask_area(n),
            "area_bound": class_area_bound(
                class_masks, labels, self.min_area, self.max_area, self.bound_reduction
            ),
            "tv": total_variation(m[:, 0]) + total_variation(n[:, 0]),
        }
        if self.weights["class_specific"] > 0:
            raw["class_specific"] = class_specific_loss(
                images, labels, class_masks, classifier, self.filler, generator
            )
        terms = {name: self.weights[name] * value.mean() for name, value in raw.items()}
        terms["loss"] = torch.stack(list(terms.values())).sum()
        return terms


def color_noise(
    images: Tensor,
    std: float = 0.11,
    offset: float = 0.33,
    generator: torch.Generator | None = None,
) -> Tensor:
    """RTIS's colour alternative: Gaussian noise (``std``) plus a per-channel offset ``U(-offset, offset)``.

    Drawn in the classifier's input space, as in the reference code.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> color_noise(torch.zeros(2, 3, 8, 8), generator=g).shape
    torch.Size([2, 3, 8, 8])
    """
    noise = std * random_like(images, "normal", generator)
    shift = random_like(images[:, :, :1, :1], "uniform", generator)
    return noise + (2 * shift - 1) * offset


class RTISLoss(MaskLoss):
    """The RTIS baseline objective (Dabkowski & Gal 2017) as adapted by Stalder et al.

    ``L = l_tv * TV2(m) + l_area * A(m) - mean_{y=1} log sigmoid(F(x_pres))
    + l_destroy * (mean_{y=1} sigmoid(F(x_destr)))^power`` with
    ``x_pres = m x + (1 - m) alt`` and ``x_destr = (1 - m) x + m alt``; ``alt`` is the
    image blurred with ``sigma`` or :func:`color_noise`, chosen per batch with equal
    probability. The ``mean_{y=1}`` runs over every (image, target class) pair of the
    batch. Images without a target are skipped.

    Parameters
    ----------
    l_tv, l_area, l_destroy, power : float
        Weights of the paper (10, 1, 5, 0.3).
    sigma : float
        Blur of the blurred alternative, in pixels.
    noise_std, noise_offset : float
        Parameters of the colour alternative.

    Examples
    --------
    >>> from torch import nn
    >>> classifier = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    >>> terms = RTISLoss()(torch.randn(2, 3, 8, 8), torch.tensor([[1., 0, 0, 1], [0, 1, 0, 0]]),
    ...                    torch.randn(2, 4, 8, 8), classifier, torch.Generator().manual_seed(0))
    >>> sorted(terms)
    ['area_target', 'destroyer', 'loss', 'preserver', 'tv']
    """

    TERMS = ("tv", "area_target", "preserver", "destroyer")

    def __init__(
        self,
        l_tv: float = 10.0,
        l_area: float = 1.0,
        l_destroy: float = 5.0,
        power: float = 0.3,
        sigma: float = 10.0,
        noise_std: float = 0.11,
        noise_offset: float = 0.33,
    ) -> None:
        super().__init__()
        self.l_tv = check_non_negative(l_tv, "l_tv")
        self.l_area = check_non_negative(l_area, "l_area")
        self.l_destroy = check_non_negative(l_destroy, "l_destroy")
        self.power = check_non_negative(power, "power")
        self.sigma = check_non_negative(sigma, "sigma")
        self.noise_std = check_non_negative(noise_std, "noise_std")
        self.noise_offset = check_non_negative(noise_offset, "noise_offset")

    def alternative(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The batch's alternative image: blurred or colour noise (one coin flip per batch)."""
        coin = torch.rand((), generator=generator, device=generator.device if generator else "cpu")
        if float(coin) < 0.5:
            return blur(images, self.sigma)
        return color_noise(images, self.noise_std, self.noise_offset, generator)

    def forward(
        self,
        images: Tensor,
        labels: Tensor,
        mask_logits: Tensor,
        classifier: Classifier,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Loss terms (weighted) and their sum under ``"loss"``; arguments as :class:`ExplainerLoss`."""
        _check_batch(images, labels, mask_logits)
        keep = (labels > 0.5).any(dim=1)
        if not bool(keep.any()):
            return _zero_terms(mask_logits, self.TERMS)
        if not bool(keep.all()):
            images, labels, mask_logits = images[keep], labels[keep], mask_logits[keep]
        m, _ = aggregate_masks(mask_logits.sigmoid(), labels)
        alt = self.alternative(images, generator)
        logits_pres, logits_destr = _classify_pair(
            classifier, remove(images, m, alt), remove(images, 1 - m, alt), labels.shape[1]
        )
        is_target = labels > 0.5
        terms = {
            "tv": self.l_tv * total_variation(m[:, 0], power=2).mean(),
            "area_target": self.l_area * mask_area(m).mean(),
            "preserver": -F.logsigmoid(logits_pres)[is_target].mean(),
            "destroyer": self.l_destroy * logits_destr.sigmoid()[is_target].mean().pow(self.power),
        }
        terms["loss"] = torch.stack(list(terms.values())).sum()
        return terms
