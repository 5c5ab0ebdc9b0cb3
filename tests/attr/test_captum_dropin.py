"""Drop-in for Captum: Captum's own calls, with the Captum class swapped for ours.

The call forms are those of Captum's docstrings and tutorials (positional and keyword)
for ``Occlusion`` (-> ``SlidingPatch``) and ``Lime`` (-> ``SuperpixelLime``),
``NoiseTunnel`` with ``baselines`` (it always passes a tuple), one-tensor tuple inputs
(a tuple comes back, as from Captum) and ``visualize_image_attr`` on every output. The
model is the one a new user would try: a torchvision ResNet-18 with random weights and 5
classes on 3 x 96 x 128 images, behind an ImageNet-normalising wrapper (pixels in) or
bare (normalised inputs in).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from captum.attr import Lime, NoiseTunnel, Occlusion
from captum.attr import visualization as viz
from torch import Tensor, nn
from torchvision.models import resnet18
from torchvision.transforms import Normalize

from captum_ext.attr import (
    DSSR,
    MP2,
    ExplainerAttribution,
    FGVis,
    RandomAttribution,
    SlidingPatch,
    SuperpixelLime,
    UpsampledLayerGradCam,
)
from captum_ext.fillers import ImageSpace
from captum_ext.fillers.image_space import IMAGENET_MEAN, IMAGENET_STD
from captum_ext.models.explainer_nets import build_explainer_net

H, W = 96, 128
WINDOW = (3, 48, 64)  # tiles 96 x 128 exactly: 2 x 2 windows


@pytest.fixture(scope="module")
def net() -> nn.Module:
    torch.manual_seed(0)
    return resnet18(num_classes=5).eval()


@pytest.fixture(scope="module")
def model(net) -> nn.Module:
    """The classifier on pixels: ImageNet normalisation, then the network."""
    return nn.Sequential(Normalize(IMAGENET_MEAN, IMAGENET_STD), net).eval()


@pytest.fixture(scope="module")
def pixels() -> Tensor:
    return torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def normalised(pixels) -> Tensor:
    return ImageSpace.imagenet().to_inputs(pixels)


def blocks(rows: int = 4, cols: int = 4) -> Tensor:
    """``(H, W)`` labels of a ``rows x cols`` grid of blocks (a tutorial-style feature mask)."""
    r = torch.arange(H) * rows // H
    c = torch.arange(W) * cols // W
    return r[:, None] * cols + c[None, :]


def visualize_all(attributions: Tensor | tuple, inputs: Tensor | tuple) -> None:
    """``visualize_image_attr`` on every example of an output, as Captum's tutorials do."""
    if isinstance(inputs, tuple):
        assert isinstance(attributions, tuple) and len(attributions) == len(inputs)
        attributions, inputs = attributions[0], inputs[0]
    assert isinstance(attributions, Tensor) and attributions.shape == inputs.shape
    for attr, image in zip(attributions, inputs):
        fig, _ = viz.visualize_image_attr(
            np.transpose(attr.detach().cpu().numpy(), (1, 2, 0)),
            np.transpose(image.detach().cpu().clamp(0, 1).numpy(), (1, 2, 0)),
            method="blended_heat_map",
            sign="all",
            show_colorbar=True,
            use_pyplot=False,
        )
        assert fig is not None


def same_structure(ours: Any, theirs: Any) -> None:
    assert type(ours) is type(theirs)
    if isinstance(theirs, tuple):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape
    else:
        assert ours.shape == theirs.shape


# ---------------------------------------------------------------- Occlusion -> SlidingPatch
OCCLUSION_CALLS = {
    # the positional call: inputs, sliding_window_shapes, strides, baselines, target
    "positional": lambda m, x: m.attribute(x, WINDOW, WINDOW, 0, 1),
    # every positional argument, to show_progress
    "positional, all": lambda m, x: m.attribute(x, WINDOW, WINDOW, 0.0, [3], None, 4, False),
    # the docstring's keyword form (with strides: Captum's default of 1 is too slow here)
    "docstring": lambda m, x: m.attribute(x, target=1, sliding_window_shapes=WINDOW, strides=48),
    # the TorchVision tutorial's keyword order
    "tutorial": lambda m, x: m.attribute(
        x, strides=(3, 48, 64), target=2, sliding_window_shapes=WINDOW, baselines=0
    ),
    "tensor baselines": lambda m, x: m.attribute(
        x, WINDOW, WINDOW, torch.full((1, 3, H, W), 0.5), torch.tensor([4])
    ),
    "tuple inputs": lambda m, x: m.attribute(
        (x,), sliding_window_shapes=(WINDOW,), strides=(WINDOW,), baselines=(0.5,), target=1
    ),
}


@pytest.mark.parametrize("call", OCCLUSION_CALLS.values(), ids=OCCLUSION_CALLS.keys())
def test_occlusion_calls_run_on_sliding_patch(model, pixels, call):
    theirs = call(Occlusion(model), pixels)
    ours = call(SlidingPatch(model), pixels)
    same_structure(ours, theirs)
    visualize_all(ours, (pixels,) if isinstance(ours, tuple) else pixels)


def test_positional_call_gives_occlusions_values(model, pixels):
    # Same arguments, Captum's per-pixel average of the window drops, raw model outputs.
    theirs = Occlusion(model).attribute(pixels, WINDOW, WINDOW, 0.25, 3)
    ours = SlidingPatch(model, score="logit").attribute(
        pixels, WINDOW, WINDOW, 0.25, 3, aggregate="average"
    )
    assert torch.allclose(ours, theirs, atol=1e-4)
    (tuple_ours,) = SlidingPatch(model, score="logit").attribute(
        (pixels,), (WINDOW,), (WINDOW,), (0.25,), 3, aggregate="average"
    )
    assert torch.equal(tuple_ours, ours)


# ------------------------------------------------------------------ Lime -> SuperpixelLime
def tutorial_mask() -> Tensor:
    return blocks().unsqueeze(0)  # (1, H, W): the tutorial's feature_mask.unsqueeze(0)


LIME_CALLS = {
    # the positional call: inputs, baselines, target
    "positional": lambda m, x: m.attribute(x, 0.0, 1, None, tutorial_mask(), 6),
    # every positional argument, to show_progress
    "positional, all": lambda m, x: m.attribute(
        x, 0.0, [2], None, tutorial_mask(), 6, 3, True, False
    ),
    # the docstring's feature-mask form
    "docstring": lambda m, x: m.attribute(x, target=1, feature_mask=tutorial_mask(), n_samples=6),
    # the image tutorial's form
    "tutorial": lambda m, x: m.attribute(
        x,
        target=4,
        feature_mask=tutorial_mask(),
        n_samples=6,
        perturbations_per_eval=4,
        show_progress=False,
    ),
    "tuple inputs": lambda m, x: m.attribute(
        (x,), baselines=(0.0,), target=1, feature_mask=(tutorial_mask().unsqueeze(0),), n_samples=6
    ),
}


@pytest.mark.parametrize("call", LIME_CALLS.values(), ids=LIME_CALLS.keys())
def test_lime_calls_run_on_superpixel_lime(model, pixels, call):
    theirs = call(Lime(model), pixels)
    ours = call(SuperpixelLime(model), pixels)
    same_structure(ours, theirs)
    visualize_all(ours, (pixels,) if isinstance(ours, tuple) else pixels)


def test_lime_positional_call_without_a_feature_mask(model, pixels):
    # The call: inputs, baselines, target (SLIC superpixels; Captum's Lime would
    # take every scalar as a feature, too slow to run alongside here).
    attr = SuperpixelLime(model, n_segments=20).attribute(pixels, 0.0, 1, None, None, 6)
    assert isinstance(attr, Tensor) and attr.shape == pixels.shape
    visualize_all(attr, pixels)


def test_lime_return_input_shape_false(model, pixels):
    theirs = Lime(model).attribute(pixels, 0.0, 1, None, tutorial_mask(), 6, 1, False)
    ours = SuperpixelLime(model).attribute(pixels, 0.0, 1, None, tutorial_mask(), 6, 1, False)
    assert ours.shape == theirs.shape == (1, 16)


def test_lime_default_on_an_imagenet_normalised_model(net, normalised):
    # No ImageSpace, no feature_mask: SLIC runs on each image rescaled to its range.
    lime = SuperpixelLime(net, n_segments=20)
    attr = lime.attribute(normalised, target=1, n_samples=6)
    assert attr.shape == normalised.shape and torch.isfinite(attr).all()
    segments = lime.superpixels(normalised)
    assert 1 < int(segments[0].max()) + 1 <= 40  # superpixels, not a single segment
    visualize_all(attr, normalised)


# --------------------------------------------------------------------------- NoiseTunnel
def test_noise_tunnel_with_baselines_on_sliding_patch(model, pixels):
    tunnel = NoiseTunnel(SlidingPatch(model))
    kwargs = dict(nt_type="smoothgrad", nt_samples=2, stdevs=0.1, baselines=0.0, target=1)
    attr = tunnel.attribute(pixels, sliding_window_shapes=WINDOW, strides=WINDOW, **kwargs)
    assert attr.shape == pixels.shape
    visualize_all(attr, pixels)
    tensor_baselines = dict(kwargs, baselines=torch.zeros(1, 3, H, W))
    out = tunnel.attribute(
        (pixels,), sliding_window_shapes=WINDOW, strides=WINDOW, **tensor_baselines
    )
    assert isinstance(out, tuple) and out[0].shape == pixels.shape
    visualize_all(out, (pixels,))


def test_noise_tunnel_with_baselines_on_superpixel_lime(model, net, pixels, normalised):
    kwargs = dict(nt_type="smoothgrad", nt_samples=2, baselines=0.0, target=1, n_samples=6)
    # Pixels in [0, 1] leave the range under noise; without a feature mask SLIC still runs.
    attr = NoiseTunnel(SuperpixelLime(model, n_segments=20)).attribute(pixels, stdevs=0.2, **kwargs)
    assert attr.shape == pixels.shape and torch.isfinite(attr).all()
    visualize_all(attr, pixels)
    # An ImageNet-normalised model with its ImageSpace: noisy pixels are clipped for SLIC.
    lime = SuperpixelLime(net, space=ImageSpace.imagenet(), n_segments=20)
    attr = NoiseTunnel(lime).attribute(normalised, stdevs=1.0, **kwargs)
    assert attr.shape == normalised.shape and torch.isfinite(attr).all()
    visualize_all(attr, normalised)
    # Captum's feature-mask form under the tunnel (it expands the mask per sample).
    out = NoiseTunnel(SuperpixelLime(net)).attribute(
        (normalised,), feature_mask=(tutorial_mask(),), stdevs=1.0, **kwargs
    )
    assert isinstance(out, tuple) and out[0].shape == normalised.shape


# ------------------------------------------------------- every method: tuple in, tuple out
def every_method(model: nn.Module):
    explainer = build_explainer_net("unet", num_classes=5, width=4, depth=1).eval()
    return {
        "SlidingPatch": (SlidingPatch(model), dict(sliding_window_shapes=WINDOW, strides=WINDOW)),
        "SuperpixelLime": (SuperpixelLime(model), dict(feature_mask=tutorial_mask(), n_samples=4)),
        "FGVis": (FGVis(model, iterations=1), {}),
        "DSSR": (DSSR(model, iterations=1), {}),
        "MP2": (MP2(model, grid_size=4), dict(stop_prob=0.0, max_iterations=1)),
        "RandomAttribution": (RandomAttribution(model), {}),
        "ExplainerAttribution": (ExplainerAttribution(model, explainer=explainer), {}),
        # without the ReLU: a random network's clamped map can be all 0, which
        # visualize_image_attr refuses to scale
        "UpsampledLayerGradCam": (
            UpsampledLayerGradCam(model, model[1].layer4, relu_attributions=False),
            {},
        ),
    }


METHODS = [
    "SlidingPatch",
    "SuperpixelLime",
    "FGVis",
    "DSSR",
    "MP2",
    "RandomAttribution",
    "ExplainerAttribution",
    "UpsampledLayerGradCam",
]


@pytest.mark.parametrize("name", METHODS)
def test_every_method_keeps_the_structure_of_inputs(model, pixels, name):
    method, kwargs = every_method(model)[name]
    x = pixels
    single = method.attribute(x, target=2, **kwargs)
    wrapped = method.attribute((x,), target=2, **kwargs)
    assert isinstance(single, Tensor) and single.shape == x.shape
    assert isinstance(wrapped, tuple) and len(wrapped) == 1
    assert torch.allclose(wrapped[0], single, atol=1e-6)
    visualize_all(wrapped, (x,))


# ----------------------------------------------------------------------------- bad input
def test_more_than_one_input_tensor_is_a_clear_error(model, pixels):
    for method, kwargs in [
        (SlidingPatch(model), dict(sliding_window_shapes=WINDOW)),
        (SuperpixelLime(model), dict(feature_mask=tutorial_mask(), n_samples=4)),
        (RandomAttribution(model), {}),
        (UpsampledLayerGradCam(model, model[1].layer4), {}),
    ]:
        with pytest.raises(TypeError, match=r"`inputs` must be a single \(N, C, H, W\) tensor"):
            method.attribute((pixels, pixels), target=1, **kwargs)


@pytest.mark.parametrize(
    "call, error, match",
    [
        # Occlusion's order: a target where the window goes
        (lambda m, x: m.attribute(x, 0, target=1), ValueError, "sliding_window_shapes"),
        (lambda m, x: m.attribute(x, "big", 8), TypeError, "sliding_window_shapes"),
        (lambda m, x: m.attribute(x, WINDOW, 2.5), TypeError, "strides"),
        (lambda m, x: m.attribute(x, WINDOW, WINDOW, "zero", 1), TypeError, "baselines"),
        (lambda m, x: m.attribute(x, WINDOW, WINDOW, (0.0, 0.0), 1), ValueError, "baselines"),
        (lambda m, x: m.attribute(x, WINDOW, WINDOW, 0, 1.5), TypeError, "target"),
        (
            lambda m, x: m.attribute(x, WINDOW, WINDOW, 0, 1, None, 4, False, "grid"),
            TypeError,
            "positional",
        ),
        (lambda m, x: m.attribute((x, x), WINDOW, WINDOW, 0, 1), TypeError, "inputs"),
        (
            lambda m, x: m.attribute(x, (WINDOW, WINDOW), WINDOW, 0, 1),
            TypeError,
            "sliding_window_shapes",
        ),
    ],
)
def test_bad_occlusion_style_calls(model, pixels, call, error, match):
    with pytest.raises(error, match=match):
        call(SlidingPatch(model), pixels)


@pytest.mark.parametrize(
    "call, error, match",
    [
        # Lime's order: a target where the baselines go
        (lambda m, x: m.attribute(x, "zero", 1), TypeError, "baselines"),
        (lambda m, x: m.attribute(x, (0.0, 1.0), 1), ValueError, "baselines"),
        (lambda m, x: m.attribute(x, 0.0, 1, None, 0.5), TypeError, "feature_mask"),
        (
            lambda m, x: m.attribute(x, 0.0, 1, None, (blocks(), blocks())),
            ValueError,
            "feature_mask",
        ),
        (lambda m, x: m.attribute(x, 0.0, 1, None, blocks()[:50]), ValueError, "feature_mask"),
        (
            lambda m, x: m.attribute(
                x, 0.0, 1, None, torch.stack([blocks(), blocks() * 0, blocks()])
            ),
            ValueError,
            "feature_mask",
        ),
        (lambda m, x: m.attribute(x, 0.0, 1, None, None, 2.5), TypeError, "n_samples"),
        (
            lambda m, x: m.attribute(x, 0.0, 1, None, None, 4, 2, True, False, 0),
            TypeError,
            "positional",
        ),
    ],
)
def test_bad_lime_style_calls(model, pixels, call, error, match):
    with pytest.raises(error, match=match):
        call(SuperpixelLime(model), pixels)


@pytest.mark.parametrize(
    "build",
    [
        lambda m: SlidingPatch(m, None),
        lambda m: SuperpixelLime(m, None),
        lambda m: FGVis(m, "deletion"),
        lambda m: DSSR(m, "dssr+"),
        lambda m: MP2(m, None),
        lambda m: ExplainerAttribution(m, nn.Identity()),
        lambda m: UpsampledLayerGradCam(m, None, None, "bilinear"),
    ],
)
def test_constructor_arguments_after_forward_func_are_keyword_only(model, build):
    with pytest.raises(TypeError, match="positional"):
        build(model)


@pytest.mark.parametrize("method", [FGVis, DSSR, MP2, RandomAttribution, ExplainerAttribution])
def test_attribute_arguments_after_additional_forward_args_are_keyword_only(model, pixels, method):
    instance = (
        method(model, explainer=nn.Identity()) if method is ExplainerAttribution else method(model)
    )
    with pytest.raises(TypeError, match="positional"):
        instance.attribute(pixels, 1, None, 0)
