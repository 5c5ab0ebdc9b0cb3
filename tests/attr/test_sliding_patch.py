"""SlidingPatch (SP / SP-G): Captum Occlusion parity, the paper's grid map, batching, bad input."""

import pytest
import torch
import torch.nn.functional as F
from captum.attr import Occlusion
from torch import nn

from captum_ext.attr import SlidingPatch
from captum_ext.fillers import Constant, ImageSpace, Inpaint
from captum_ext.inpainters import OpenCVInpainter


class SumModel(nn.Module):
    """Logit k = sum of channel 0 weighted by a fixed map (exactly linear)."""

    def __init__(self, weights):
        super().__init__()
        self.register_buffer("weights", weights)

    def forward(self, x):
        s = (x[:, 0] * self.weights).flatten(1).sum(dim=1)
        return torch.stack([s, -s], dim=1)


@pytest.mark.parametrize("window, stride", [(5, 3), (8, 4), (29, 3)])
def test_average_equals_captum_occlusion(tiny_model, window, stride):
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ours = SlidingPatch(tiny_model).attribute(
        x,
        target=[0, 1, 3],
        sliding_window_shapes=window,
        strides=stride,
        aggregate="average",
        baselines=0.25,
        perturbations_per_eval=7,
    )
    probs = nn.Sequential(tiny_model, nn.Softmax(dim=1))
    theirs = Occlusion(probs).attribute(
        x,
        target=[0, 1, 3],
        sliding_window_shapes=(3, window, window),
        strides=(3, stride, stride),
        baselines=0.25,
        perturbations_per_eval=7,
    )
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_constant_filler_equals_baselines(tiny_model, images):
    a = SlidingPatch(tiny_model, filler=Constant(0.3)).attribute(
        images, target=1, sliding_window_shapes=5
    )
    b = SlidingPatch(tiny_model).attribute(images, target=1, sliding_window_shapes=5, baselines=0.3)
    assert torch.equal(a, b)


def test_grid_map_is_the_resized_window_grid():
    weights = torch.rand(12, 12, generator=torch.Generator().manual_seed(0))
    model = SumModel(weights)
    x = torch.ones(1, 3, 12, 12)
    grid_map = SlidingPatch(model, score="logit").attribute(
        x, target=0, sliding_window_shapes=4, strides=2, return_map=True
    )
    # Removing a window (fill 0) drops the logit by the window's weight sum.
    drops = torch.tensor(
        [[weights[i : i + 4, j : j + 4].sum() for j in range(0, 9, 2)] for i in range(0, 9, 2)]
    )
    expected = F.interpolate(drops[None, None], size=(12, 12), mode="bilinear", align_corners=False)
    assert grid_map.shape == (1, 1, 12, 12)
    assert torch.allclose(grid_map, expected, atol=1e-5)


def test_average_leaves_uncovered_pixels_at_zero():
    model = SumModel(torch.ones(10, 10))
    out = SlidingPatch(model, score="logit").attribute(
        torch.ones(1, 3, 10, 10),
        target=0,
        sliding_window_shapes=4,
        strides=3,
        aggregate="average",
        return_map=True,
    )
    # Windows at 0, 3, 6 cover rows/cols 0..9: everything covered, each drop 16.
    assert torch.allclose(out, torch.full_like(out, 16.0))
    out = SlidingPatch(model, score="logit").attribute(
        torch.ones(1, 3, 10, 10),
        target=0,
        sliding_window_shapes=4,
        strides=4,
        aggregate="average",
        return_map=True,
    )
    assert torch.all(out[..., 8:, :] == 0) and torch.all(out[..., :8, :8] == 16)


class SpyInpainter:
    def __init__(self):
        self.batches = []

    def __call__(self, images, holes):
        self.batches.append(images.shape[0])
        return OpenCVInpainter("telea")(images, holes)


def test_sp_g_inpaints_in_batches_of_n_times_perturbations_per_eval(tiny_model, images):
    spy = SpyInpainter()
    sp_g = SlidingPatch(tiny_model, filler=Inpaint(spy))
    attr = sp_g.attribute(
        images, target=2, sliding_window_shapes=6, strides=5, perturbations_per_eval=4
    )
    # 16 x 16 image, window 6, stride 5: 3 x 3 = 9 windows -> chunks of 4, 4, 1 for N=3
    assert spy.batches == [12, 12, 3]
    plain = SlidingPatch(tiny_model).attribute(images, target=2, sliding_window_shapes=6, strides=5)
    assert attr.shape == images.shape and not torch.allclose(attr, plain)


def test_sp_g_in_normalised_space(tiny_model, images):
    space = ImageSpace(0.5, 0.25)
    out = SlidingPatch(tiny_model, filler=Inpaint(OpenCVInpainter(), space)).attribute(
        space.to_inputs(images), target=0, sliding_window_shapes=5, strides=4
    )
    assert out.shape == images.shape and torch.isfinite(out).all()


def test_additional_forward_args_are_repeated_per_perturbation(images):
    class Scaled(nn.Module):
        def forward(self, x, scale):
            return x.flatten(1)[:, :4] * scale[:, None]

    scale = torch.tensor([1.0, 2.0, 3.0])
    out = SlidingPatch(Scaled(), score="logit").attribute(
        images,
        target=0,
        additional_forward_args=(scale,),
        sliding_window_shapes=3,
        strides=2,
        aggregate="average",
        perturbations_per_eval=5,
        return_map=True,
    )
    # Only the window over pixel (0, 0) changes logit 0: drop = scale * x[0, 0, 0].
    assert torch.allclose(out[:, 0, 0, 0], scale * images[:, 0, 0, 0], atol=1e-6)


def test_works_under_no_grad_and_restores_model(tiny_model, images):
    tiny_model.train()
    with torch.no_grad(), pytest.warns(UserWarning, match="train mode"):
        out = SlidingPatch(tiny_model).attribute(images, target=0, sliding_window_shapes=5)
    assert out.shape == images.shape and tiny_model.training


class Shifty:
    def __call__(self, images, holes):
        return images * 0.5


class Cropping:
    def __call__(self, images, holes):
        return images[..., 1:]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(sliding_window_shapes=17), ValueError, "sliding_window_shapes"),
        (dict(sliding_window_shapes=(3, 20)), ValueError, "sliding_window_shapes"),
        (dict(sliding_window_shapes=(1, 3, 3)), ValueError, "channels"),
        (dict(sliding_window_shapes=2.5), TypeError, "sliding_window_shapes"),
        (dict(strides=0), ValueError, "strides"),
        (dict(aggregate="max"), ValueError, "aggregate"),
        (dict(perturbations_per_eval=0), ValueError, "perturbations_per_eval"),
        (dict(baselines=torch.zeros(2, 3, 16, 16)), ValueError, "baselines"),
        (dict(baselines="grey"), TypeError, "baselines"),
        (dict(target=4), ValueError, "target"),
        (dict(target=None), ValueError, "target"),
    ],
)
def test_bad_arguments(tiny_model, images, kwargs, error, match):
    kwargs = {"target": 0, "sliding_window_shapes": 5, **kwargs}
    with pytest.raises(error, match=match):
        SlidingPatch(tiny_model).attribute(images, **kwargs)


@pytest.mark.parametrize(
    "inputs, error, match",
    [
        (torch.rand(3, 16, 16), ValueError, "inputs"),
        (torch.randint(0, 2, (1, 3, 16, 16)), TypeError, "inputs"),
        (torch.full((1, 3, 16, 16), float("inf")), ValueError, "inputs"),
    ],
)
def test_bad_inputs(tiny_model, inputs, error, match):
    with pytest.raises(error, match=match):
        SlidingPatch(tiny_model).attribute(inputs, target=0, sliding_window_shapes=5)


def test_bad_inpainters_and_devices(tiny_model, images):
    with pytest.raises(ValueError, match="outside the holes"):
        SlidingPatch(tiny_model, filler=Inpaint(Shifty())).attribute(
            images, target=0, sliding_window_shapes=5
        )
    with pytest.raises(ValueError, match="returned"):
        SlidingPatch(tiny_model, filler=Inpaint(Cropping())).attribute(
            images, target=0, sliding_window_shapes=5
        )
    with pytest.raises(ValueError, match="images"):  # normalised inputs, no ImageSpace given
        SlidingPatch(tiny_model, filler=Inpaint(OpenCVInpainter())).attribute(
            images * 4 - 2, target=0, sliding_window_shapes=5
        )
    with pytest.raises(TypeError, match="filler"):
        SlidingPatch(tiny_model, filler=0.0)
    with pytest.raises(ValueError, match="device"):
        SlidingPatch(tiny_model.to("meta")).attribute(images, target=0, sliding_window_shapes=5)


def test_sp_g_on_grey_images_equals_sp_g_on_their_rgb_copies():
    torch.manual_seed(0)
    grey_model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def rgb_model(x):
        return grey_model(x.mean(dim=1, keepdim=True))

    x = torch.rand(2, 1, 16, 16)
    filler = Inpaint(OpenCVInpainter("telea"))
    kwargs = dict(sliding_window_shapes=5, strides=3, return_map=True)
    grey = SlidingPatch(grey_model, filler=filler).attribute(x, target=1, **kwargs)
    rgb = SlidingPatch(rgb_model, filler=filler).attribute(
        x.expand(-1, 3, -1, -1), target=1, **kwargs
    )
    assert grey.shape == (2, 1, 16, 16)
    assert grey.abs().amax() > 0
    assert torch.allclose(grey, rgb, atol=1e-5)
