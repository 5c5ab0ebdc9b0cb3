"""The papers' pixel-valued defaults (set at 224 x 224) scale with the image size."""

import pytest
import torch

from captum_ext._utils.image_scale import scaled_length, scaled_pixel_weight, scaled_size
from captum_ext.attr import DSSR, MP2, FGVis, SlidingPatch, SuperpixelLime
from captum_ext.attr.superpixel_lime import slic_superpixels
from captum_ext.fillers import Blur


def test_scaling_rules_by_hand():
    # lengths per side, rounded, at least 1 px; the paper's value at 224
    assert scaled_size(29, 224, 224) == (29, 29) and scaled_size(3, 224, 224) == (3, 3)
    assert scaled_size(29, 64, 64) == (8, 8) and scaled_size(3, 64, 64) == (1, 1)
    assert scaled_size(12, 64, 32) == (3, 2) and scaled_size(16, 8, 8) == (1, 1)
    assert scaled_length(10.0, 64, 64) == pytest.approx(10 * 64 / 224)
    assert scaled_length(3.0, 56, 224) == pytest.approx(3 * 112 / 224)  # geometric-mean side
    # a weight of a sum over pixels: x 224^2 / (H W)
    assert scaled_pixel_weight(1e-7, 224, 224) == pytest.approx(1e-7)
    assert scaled_pixel_weight(1e-7, 64, 64) == pytest.approx(1e-7 * 12.25)


def test_sliding_patch_default_window_and_stride(tiny_model):
    x = torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    sp = SlidingPatch(tiny_model)
    default = sp.attribute(x, target=1, return_map=True)
    (kh, kw), (sh, sw) = scaled_size(29, 40, 48), scaled_size(3, 40, 48)
    assert (kh, kw, sh, sw) == (5, 6, 1, 1)
    explicit = sp.attribute(x, (kh, kw), (sh, sw), target=1, return_map=True)
    assert torch.equal(default, explicit)
    # the paper's window unscaled would differ
    assert not torch.equal(default, sp.attribute(x, 29, 3, target=1, return_map=True))
    # a window given without strides: stride 1, as in Captum's Occlusion
    assert torch.equal(
        sp.attribute(x, 7, target=1, return_map=True),
        sp.attribute(x, 7, 1, target=1, return_map=True),
    )
    # a stride given with the default window: that stride
    assert torch.equal(
        sp.attribute(x, strides=2, target=1, return_map=True),
        sp.attribute(x, (5, 6), 2, target=1, return_map=True),
    )


def test_mp2_default_blur_scales_and_grid_does_not(tiny_model):
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    kwargs = {"target": 1, "stop_prob": 0.0, "max_iterations": 3, "return_map": True}
    default = MP2(tiny_model).attribute(x, **kwargs)
    explicit = MP2(tiny_model, grid_size=28, filler=Blur(10 * 64 / 224)).attribute(x, **kwargs)
    assert torch.equal(default, explicit)
    assert not torch.equal(default, MP2(tiny_model, filler=Blur(10.0)).attribute(x, **kwargs))


def test_fgvis_default_lambda_scales_with_pixel_count(tiny_model):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    method = FGVis(tiny_model, iterations=5)
    default = method.attribute(x, target=1, return_map=True)
    assert torch.allclose(method.chosen_lambda, torch.full((2,), 1e-7 * 49.0))
    explicit = FGVis(tiny_model, iterations=5, lambda_=1e-7 * 49.0).attribute(
        x, target=1, return_map=True
    )
    assert torch.equal(default, explicit)
    searched = FGVis(tiny_model, iterations=2, lambda_search=True)
    searched.attribute(x, target=1)
    assert float(searched.chosen_lambda.max()) <= 1e-4 * 49.0 * (1 + 1e-6)


def test_lime_default_slic_sigma(tiny_model):
    pixels = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    lime = SuperpixelLime(tiny_model, n_segments=20)
    expected = slic_superpixels(pixels, n_segments=20, sigma=3.0 * 48 / 224)
    assert torch.equal(lime.superpixels(pixels), expected)
    assert not torch.equal(expected, slic_superpixels(pixels, n_segments=20, sigma=3.0))


def test_dssr_default_kernels(tiny_model):
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    kwargs = {"target": 1, "return_map": True}
    default = DSSR(tiny_model, iterations=3).attribute(x, **kwargs)
    explicit = DSSR(tiny_model, iterations=3, k1=3, k2=5).attribute(x, **kwargs)
    assert torch.equal(default, explicit)
