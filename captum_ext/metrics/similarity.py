"""Similarity between two attribution maps (Agarwal & Nguyen 2020 Sec. 4.4, after Bansal et al.).

Used to measure how much a method's maps change with a hyperparameter or a random
seed: SSIM, Pearson correlation of HOG features and Spearman rank correlation, the
three scikit-image-based scores of the reference code (SSIM with a 5 x 5 window, HOG
with 16 px cells at 224 x 224), the authors' implementation at
<https://github.com/anguyen8/generative-attribution-methods>.
Maps are compared as given; normalise them first
(e.g. :func:`~captum_ext.metrics.normalize_map`, then ``data_range=1``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from captum_ext._utils.validation import check_positive_int
from captum_ext.metrics._checks import check_map

#: HOG cell size of the reference code at 224 x 224.
HOG_CELL_AT_224 = 16


def _pair(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    a = check_map(a, "maps_a")
    b = check_map(b, "maps_b", a, like_name="maps_a")
    if a.shape != b.shape:
        raise ValueError(
            f"`maps_b` must have the shape of `maps_a` {tuple(a.shape)}, got {tuple(b.shape)}"
        )
    return a, b


def _flat_constant(x: Tensor) -> Tensor:
    return (x == x[:, :1]).all(dim=1)


def _pearson_rows(a: Tensor, b: Tensor) -> Tensor:
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (NaN if flat)."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1))


def map_ssim(
    maps_a: Tensor, maps_b: Tensor, *, win_size: int = 5, data_range: float = 1.0
) -> Tensor:
    """Structural similarity of two batches of maps, as ``skimage.metrics.structural_similarity``.

    Uniform ``win_size`` x ``win_size`` window, sample covariance, ``K1 = 0.01``,
    ``K2 = 0.03``, averaged over the windows that lie inside the image (scikit-image's
    defaults; Agarwal & Nguyen's code uses ``win_size=5``). Computed in float64 with
    batched pooling.

    Parameters
    ----------
    maps_a, maps_b : Tensor
        ``(N, 1, H, W)`` / ``(N, H, W)`` maps, or ``(N, C, H, W)`` attributions
        (averaged over channels).
    win_size : int
        Odd window side, ``<= min(H, W)``.
    data_range : float
        Value range of the maps (1 for maps in [0, 1], 2 for maps in [-1, 1]).

    Returns
    -------
    Tensor
        ``(N,)`` SSIM in [-1, 1].

    Examples
    --------
    >>> a = torch.rand(2, 16, 16)
    >>> map_ssim(a, a)
    tensor([1., 1.])
    """
    a, b = _pair(maps_a, maps_b)
    check_positive_int(win_size, "win_size")
    if win_size % 2 == 0 or win_size > min(a.shape[-2:]):
        raise ValueError(
            f"`win_size` must be odd and <= the map side {min(a.shape[-2:])}, got {win_size}"
        )
    if not data_range > 0:
        raise ValueError(f"`data_range` must be > 0, got {data_range}")
    x, y = a.double(), b.double()

    def mean(t: Tensor) -> Tensor:
        return F.avg_pool2d(t, win_size, stride=1)

    ux, uy = mean(x), mean(y)
    cov_norm = win_size**2 / (win_size**2 - 1)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return ssim.mean(dim=(1, 2, 3)).to(a.dtype)


def hog_features(maps: Tensor, pixels_per_cell: int | None = None) -> Tensor:
    """HOG descriptors ``(N, D)`` of ``(N, 1, H, W)`` maps (``skimage.feature.hog``).

    9 orientations, 3 x 3 cells per block, L2-Hys. ``pixels_per_cell`` defaults to
    Agarwal & Nguyen's 16 px at 224, scaled to the map size (at least 1 px). scikit-image
    has no batched HOG, so the maps are described one by one on the CPU.

    Examples
    --------
    >>> hog_features(torch.rand(2, 32, 32)).shape
    torch.Size([2, 15876])
    """
    maps = check_map(maps, "maps")
    h, w = maps.shape[-2:]
    cell = pixels_per_cell or max(1, round(HOG_CELL_AT_224 * min(h, w) / 224))
    check_positive_int(cell, "pixels_per_cell")
    if min(h, w) // cell < 3:
        raise ValueError(
            f"`pixels_per_cell`={cell} leaves fewer than 3 cells (one HOG block) on a {h} x {w} map"
        )
    # Imported here: scikit-image loads SciPy, too slow for `import captum_ext.metrics`.
    from skimage.feature import hog

    arrays = maps[:, 0].detach().double().cpu().numpy()
    features = np.stack(
        [hog(m, pixels_per_cell=(cell, cell), cells_per_block=(3, 3)) for m in arrays]
    )
    return torch.from_numpy(features).to(maps.device)


def hog_pearson(maps_a: Tensor, maps_b: Tensor, *, pixels_per_cell: int | None = None) -> Tensor:
    """Pearson correlation of the HOG features of two batches of maps, ``(N,)``.

    NaN where a descriptor is constant (e.g. a flat map), as ``scipy.stats.pearsonr``.

    Examples
    --------
    >>> a = torch.rand(2, 32, 32)
    >>> hog_pearson(a, 2 * a)
    tensor([1., 1.])
    """
    a, b = _pair(maps_a, maps_b)
    fa, fb = hog_features(a, pixels_per_cell), hog_features(b, pixels_per_cell)
    r = _pearson_rows(fa, fb)
    flat = _flat_constant(fa) | _flat_constant(fb)
    return torch.where(flat, torch.nan, r).to(a.dtype)


def spearman(maps_a: Tensor, maps_b: Tensor) -> Tensor:
    """Spearman rank correlation over the pixels of two batches of maps, ``(N,)``.

    Ties get their average rank (as ``scipy.stats.spearmanr``); NaN where a map is
    constant.

    Examples
    --------
    >>> a = torch.rand(2, 8, 8)
    >>> spearman(a, a.exp()).allclose(torch.ones(2))
    True
    """
    a, b = _pair(maps_a, maps_b)
    from scipy.stats import rankdata  # average ranks of ties; SciPy is slow to import

    fa, fb = a.flatten(1).double(), b.flatten(1).double()
    ranks = [torch.from_numpy(rankdata(f.cpu().numpy(), axis=1)).to(f.device) for f in (fa, fb)]
    r = _pearson_rows(*ranks)
    flat = _flat_constant(fa) | _flat_constant(fb)
    return torch.where(flat, torch.nan, r).to(a.dtype)


def mean_pairwise_similarity(
    maps: Sequence[Tensor], metric: Callable[[Tensor, Tensor], Tensor] = map_ssim
) -> Tensor:
    """Mean of ``metric`` over all ``k (k - 1) / 2`` pairs of ``k`` map batches, ``(N,)``.

    The sensitivity protocol of Agarwal & Nguyen: ``k`` maps of the same images
    (different patch sizes, seeds, ...), similarity averaged over the pairs.

    Examples
    --------
    >>> a = torch.rand(2, 16, 16)
    >>> mean_pairwise_similarity([a, a, a])
    tensor([1., 1.])
    """
    maps = list(maps)
    if len(maps) < 2:
        raise ValueError(f"`maps` must hold at least 2 map batches, got {len(maps)}")
    scores = [metric(x, y) for x, y in itertools.combinations(maps, 2)]
    return torch.stack(scores).mean(dim=0)
