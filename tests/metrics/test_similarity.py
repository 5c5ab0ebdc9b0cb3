"""Map similarity: parity with scikit-image and scipy."""

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr
from skimage.feature import hog
from skimage.metrics import structural_similarity

from captum_ext.metrics import (
    hog_features,
    hog_pearson,
    map_ssim,
    mean_pairwise_similarity,
    spearman,
)


def map_pair(n=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, 1, size, size, generator=g, dtype=torch.float64)
    b = (a + 0.4 * torch.rand(n, 1, size, size, generator=g, dtype=torch.float64)).clamp(0, 1)
    return a, b


@pytest.mark.parametrize("win_size, data_range", [(5, 1.0), (7, 2.0)])
def test_ssim_matches_skimage(win_size, data_range):
    a, b = map_pair()
    ours = map_ssim(a, b, win_size=win_size, data_range=data_range)
    ref = [
        structural_similarity(
            a[i, 0].numpy(), b[i, 0].numpy(), win_size=win_size, data_range=data_range
        )
        for i in range(3)
    ]
    assert np.allclose(ours.numpy(), ref, atol=1e-10)
    assert torch.allclose(map_ssim(a, a), torch.ones(3, dtype=torch.float64))


def test_hog_matches_skimage_and_scipy():
    a, b = map_pair(size=48)
    cell = round(16 * 48 / 224)  # 3 px: Agarwal & Nguyen's 16 px at 224, scaled
    features = hog_features(a)
    ref = hog(a[0, 0].numpy(), pixels_per_cell=(cell, cell), cells_per_block=(3, 3))
    assert np.allclose(features[0].numpy(), ref)
    ours = hog_pearson(a, b)
    expected = [
        pearsonr(
            hog(a[i, 0].numpy(), pixels_per_cell=(cell, cell)),
            hog(b[i, 0].numpy(), pixels_per_cell=(cell, cell)),
        )[0]
        for i in range(3)
    ]
    assert np.allclose(ours.numpy(), expected, atol=1e-10)
    assert hog_features(a, pixels_per_cell=8).shape == (3, 81 * 4 * 4)


def test_spearman_matches_scipy_with_ties():
    a, b = map_pair(n=2, size=8)
    a = (a * 4).round() / 4  # many ties
    ours = spearman(a, b)
    ref = [spearmanr(a[i].flatten().numpy(), b[i].flatten().numpy())[0] for i in range(2)]
    assert np.allclose(ours.numpy(), ref, atol=1e-10)


def test_constant_maps_give_nan():
    a, b = map_pair(n=2, size=32)
    b[1] = 0.5
    assert torch.isnan(spearman(a, b)[1]) and not torch.isnan(spearman(a, b)[0])
    assert torch.isnan(hog_pearson(a, b)[1])


def test_channel_mean_and_pairwise_mean():
    a, b = map_pair(n=2, size=16)
    attributions = a.expand(-1, 3, -1, -1)
    assert torch.allclose(map_ssim(attributions, b), map_ssim(a, b))
    c = a.flip(-1)
    mean = mean_pairwise_similarity([a, b, c], spearman)
    assert torch.allclose(mean, (spearman(a, b) + spearman(a, c) + spearman(b, c)) / 3)


def test_bad_input():
    a, b = map_pair(n=2, size=16)
    with pytest.raises(ValueError, match="`maps_b` must cover"):
        map_ssim(a, b[:1])
    with pytest.raises(ValueError, match="`win_size` must be odd"):
        map_ssim(a, b, win_size=4)
    with pytest.raises(ValueError, match="`data_range` must be > 0"):
        map_ssim(a, b, data_range=0)
    with pytest.raises(ValueError, match="fewer than 3 cells"):
        hog_pearson(a, b, pixels_per_cell=8)
    with pytest.raises(ValueError, match="`maps_a` contains NaN"):
        spearman(a * float("nan"), b)
    with pytest.raises(TypeError, match="`maps_b` must be a floating-point"):
        spearman(a, b.long())
    with pytest.raises(ValueError, match="at least 2 map batches"):
        mean_pairwise_similarity([a])
    with pytest.raises(ValueError, match="same device"):
        spearman(a, b.to("meta"))
