"""Losses of the learned inpainter: masked L1 and a texture (local-statistics) loss.

An L1 loss alone pulls the fill to the conditional mean of the missing pixels: a
smooth patch. On a textured background such a patch keeps the removed object's
silhouette visible, which a shape classifier reads. The texture loss matches, inside
each image's (dilated) hole, the mean, standard deviation and covariance of a fixed
bank of local features: the colour and its finite differences at several scales.
Matching the spread of the differences asks the fill to have the background's gradient
energy (grain, contrast) and their covariance its orientation (stripes), rather than to
be flat; including a band around the hole penalises seams. This is a cheap,
pretrained-network-free stand-in for the Gram-matrix style loss of Liu et al. (2018),
which needs an ImageNet VGG.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def masked_l1(prediction: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Mean absolute error over the pixels where ``weight`` (``(N, 1, H, W)``) is 1.

    Examples
    --------
    >>> w = torch.tensor([[[[1.0, 0.0]]]])
    >>> masked_l1(torch.tensor([[[[1.0, 5.0]]]]), torch.zeros(1, 1, 1, 2), w)
    tensor(1.)
    """
    channels = prediction.shape[1]
    total = (weight * (prediction - target).abs()).sum()
    return total / (weight.sum() * channels).clamp_min(1.0)


def local_features(images: Tensor, scales: Sequence[int] = (1, 2, 4)) -> Tensor:
    """Colour and its horizontal/vertical differences at each scale, ``(N, 3 + 6 * S, H, W)``.

    Differences are central, with replicate padding, ``(x[i + s] - x[i - s]) / 2``.

    Examples
    --------
    >>> ramp = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 3, 5, 5)
    >>> local_features(ramp, scales=(1,))[0, 3, 2, 2].item()  # d/dx of the ramp
    1.0
    """
    features = [images]
    for s in scales:
        padded = F.pad(images, (s, s, s, s), mode="replicate")
        dx = (padded[..., s:-s, 2 * s :] - padded[..., s:-s, : -2 * s]) / 2
        dy = (padded[..., 2 * s :, s:-s] - padded[..., : -2 * s, s:-s]) / 2
        features += [dx, dy]
    return torch.cat(features, dim=1)


def gradient_energy(images: Tensor, holes: Tensor) -> Tensor:
    """Mean squared one-pixel (central) difference inside the holes, a scalar over the batch.

    The ratio of a fill's gradient energy to the true image's measures how much texture
    the fill has (a flat fill is far below 1).

    Examples
    --------
    >>> ramp = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 3, 4, 4)
    >>> gradient_energy(ramp, torch.ones(1, 1, 4, 4)).item()  # dx^2: 0.25, 1, 1, 0.25; dy = 0
    0.3125
    """
    diffs = local_features(images, scales=(1,))[:, images.shape[1] :]
    weight = holes.to(diffs.dtype).expand_as(diffs[:, :1])
    return (weight * diffs.pow(2)).sum() / (weight.sum() * diffs.shape[1]).clamp_min(1.0)


def masked_moments(features: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image weighted mean ``(N, F)`` and covariance ``(N, F, F)`` of ``(N, F, H, W)`` features.

    Examples
    --------
    >>> f = torch.tensor([[[[0.0, 2.0]]]])
    >>> mean, cov = masked_moments(f, torch.ones(1, 1, 1, 2))
    >>> mean.item(), cov.item()
    (1.0, 1.0)
    """
    w = weight.flatten(2)  # (N, 1, P)
    count = w.sum(dim=2, keepdim=True).clamp_min(1.0)
    flat = features.flatten(2)  # (N, F, P)
    mean = (flat * w).sum(dim=2, keepdim=True) / count
    centred = (flat - mean) * w.sqrt()
    cov = centred @ centred.transpose(1, 2) / count
    return mean.squeeze(2), cov


def texture_loss(
    prediction: Tensor,
    target: Tensor,
    holes: Tensor,
    band: int = 2,
    scales: Sequence[int] = (1, 2, 4),
) -> Tensor:
    """Distance between the local statistics of ``prediction`` and ``target`` in the holes.

    Both images' features (:func:`local_features`) are summarised over each image's holes
    dilated by ``band`` pixels by their means, standard deviations and covariance. The
    loss is the mean absolute difference of the means, plus that of the standard
    deviations (the texture's contrast and grain, in pixel units like an L1 loss), plus
    10 times that of the covariances (orientation: how the differences co-vary).

    Parameters
    ----------
    prediction, target : Tensor
        ``(N, 3, H, W)`` images; ``prediction`` is normally the composite (prediction in
        the holes, target elsewhere).
    holes : Tensor
        ``(N, 1, H, W)`` hole mask (1 = hole).
    band : int
        Dilation of the holes, in pixels (includes the seam).
    scales : sequence of int
        Scales of the finite differences.

    Examples
    --------
    >>> x = torch.rand(2, 3, 16, 16); holes = torch.zeros(2, 1, 16, 16); holes[..., 4:12, 4:12] = 1
    >>> texture_loss(x, x, holes).item()
    0.0
    """
    weight = holes.float()
    if band > 0:
        weight = F.max_pool2d(weight, 2 * band + 1, stride=1, padding=band)
    mean_p, cov_p = masked_moments(local_features(prediction, scales), weight)
    mean_t, cov_t = masked_moments(local_features(target, scales), weight)
    std_p = cov_p.diagonal(dim1=1, dim2=2).clamp_min(1e-8).sqrt()
    std_t = cov_t.diagonal(dim1=1, dim2=2).clamp_min(1e-8).sqrt()
    return (
        (mean_p - mean_t).abs().mean()
        + (std_p - std_t).abs().mean()
        + 10 * (cov_p - cov_t).abs().mean()
    )
