"""DSSR / DSSR+: first Adam step against a hand-written loss, shapes, reference, errors."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from captum_ext.attr import DSSR
from captum_ext.fillers import Filler, ImageSpace, UniformNoise
from tests.conftest import TinyCNN


def linear_model(size=12):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, 3)).eval()


def hand_first_step(model, x, r, target, lam_high, theta, variant, k1, k2, lr=0.1):
    """DSSR (eq. 4) or DSSR+ (eq. 5 in eq. 4's term order) written out; first Adam step."""
    n, _, h, w = x.shape
    grow = k2 - 1 if variant == "dssr+" else 0
    m = torch.zeros(n, 1, h + grow, w + grow, requires_grad=True)
    # average pooling as a convolution with a k2 x k2 box of 1/k2^2
    box = torch.full((1, 1, k2, k2), 1.0 / k2**2)
    m_bar = F.conv2d(m, box) if variant == "dssr+" else m

    def score(z):
        return model(z)[torch.arange(n), target]  # score="logit"

    background = score(m_bar * x + (1 - m_bar) * r)
    salient = score((1 - m_bar) * x + m_bar * r)
    if variant == "dssr+":  # 1 - maxpool(1 - m) == -maxpool(-m) with -inf padding
        kept = -F.max_pool2d(-m, k1, stride=1, padding=k1 // 2)
    else:
        kept = m
    lam = torch.where(salient <= theta * score(x), lam_high / 10, lam_high)
    loss = background - salient - lam.detach() * kept.sum(dim=(1, 2, 3))
    (g,) = torch.autograd.grad(loss.sum(), m)
    # Adam's first step is -lr * g / (|g| + eps)
    m1 = (-lr * g / (g.abs() + 1e-8)).clamp(0, 1)
    m1_bar = F.conv2d(m1, box) if variant == "dssr+" else m1
    return 1 - m1_bar, lam


@pytest.mark.parametrize("variant", ["dssr", "dssr+"])
def test_first_step_matches_hand_computation(variant):
    model = linear_model()
    x = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    r = torch.rand(3, 3, 12, 12, generator=torch.Generator().manual_seed(5))
    target = torch.tensor([0, 1, 2])
    # a lambda comparable with the score gradient, so that the stage decides pixels
    lam_high, theta = 0.05, 0.5
    method = DSSR(
        model,
        variant=variant,
        iterations=1,
        score="logit",
        lambda_high=lam_high,
        theta=theta,
        k1=3,
        k2=4,
    )
    got = method.attribute(x, target=target, seed=5, return_map=True)
    expected, lam = hand_first_step(model, x, r, target, lam_high, theta, variant, 3, 4)
    assert got.shape == (3, 1, 12, 12)
    torch.testing.assert_close(got, expected)
    if variant == "dssr":
        assert len(set(lam.tolist())) == 2, "both lambda stages should occur"
        # with the other stage everywhere the map differs
        flipped = DSSR(
            model, variant=variant, iterations=1, score="logit", lambda_high=lam_high, theta=100.0
        ).attribute(x, target=target, seed=5, return_map=True)
        assert not torch.equal(flipped, got)


def test_contract_range_determinism_and_batch_prefix(tiny_model, images):
    space = ImageSpace(0.5, 0.25)
    method = DSSR(tiny_model, space=space, iterations=4)
    attr = method.attribute(images, target=[0, 1, 2])
    assert attr.shape == images.shape and attr.min() >= 0 and attr.max() <= 1
    assert torch.equal(
        attr, DSSR(tiny_model, space=space, iterations=4).attribute(images, target=[0, 1, 2])
    )
    first = method.attribute(images[:1], target=0, return_map=True)
    torch.testing.assert_close(first, attr[:1, :1], atol=1e-5, rtol=0)
    rect = method.attribute(torch.rand(2, 3, 20, 36), target=1, return_map=True)
    assert rect.shape == (2, 1, 20, 36)


class CountingNoise(UniformNoise):
    calls = 0

    def reference(self, inputs, holes=None, *, generator=None):
        CountingNoise.calls += 1
        return super().reference(inputs, holes, generator=generator)


def test_reference_drawn_once_per_call(tiny_model, images):
    method = DSSR(tiny_model, filler=CountingNoise(), iterations=5)
    method.attribute(images, target=1)
    assert CountingNoise.calls == 1
    a = method.attribute(images, target=1, seed=1)
    b = method.attribute(images, target=1, seed=2)
    assert not torch.equal(a, b)


def test_model_state_restored(images):
    model = TinyCNN().train()
    DSSR(model, iterations=2).attribute(images, target=3)
    assert model.training and all(p.requires_grad and p.grad is None for p in model.parameters())


class WrongShape(Filler):
    def reference(self, inputs, holes=None, *, generator=None):
        return inputs[:1]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"iterations": 0}, ValueError, "iterations"),
        ({"variant": "dssr++"}, ValueError, "variant"),
        ({"lambda_high": -1.0}, ValueError, "lambda_high"),
        ({"theta": -0.5}, ValueError, "theta"),
        ({"k1": 0}, ValueError, "k1"),
        ({"k2": (3, 3, 3)}, ValueError, "k2"),
        ({"space": (0.5, 0.25)}, TypeError, "space"),
        ({"filler": 0}, TypeError, "filler"),
    ],
)
def test_bad_constructor_arguments(tiny_model, kwargs, error, match):
    with pytest.raises(error, match=match):
        DSSR(tiny_model, **kwargs)


def test_bad_call_arguments(tiny_model, images):
    method = DSSR(tiny_model, iterations=1)
    with pytest.raises(ValueError, match="target"):
        method.attribute(images, target=-1)
    with pytest.raises(ValueError, match="target"):
        method.attribute(images, target=[0, 1])
    with pytest.raises(TypeError, match="inputs"):
        method.attribute(images.to(torch.int32), target=0)
    for seed in (1.5, True):
        with pytest.raises(TypeError, match="seed"):
            method.attribute(images, target=0, seed=seed)
    with pytest.raises(ValueError, match="inputs"):
        method.attribute(images.flatten(2), target=0)
    with pytest.raises(ValueError, match="filler"):
        DSSR(tiny_model, filler=WrongShape(), iterations=1).attribute(images, target=0)


@pytest.mark.parametrize("variant", ["dssr", "dssr+"])
def test_warns_when_a_mask_collapses_to_all_background(variant):
    model = linear_model(24)
    with torch.no_grad():
        model[1].bias[1] = 200.0  # class 1's sigmoid is saturated: its gradient is exactly 0
        evidence = torch.zeros(3, 24, 24)
        evidence[:, :2, :2] = 0.5  # class 0 reads only the top-left 2 x 2 patch
        model[1].weight[0] = evidence.flatten()
        model[1].bias[0] = -4.5
    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    x[:, :, :2, :2] = 1.0
    method = DSSR(model, variant=variant, score="sigmoid", iterations=15)
    with pytest.warns(UserWarning, match=r"1 of 2 masks .* for examples \[0\]"):
        maps = method.attribute(x, target=[1, 0], return_map=True)
    assert maps[0].max() == 0
    assert torch.equal(maps[1, 0, :2, :2], torch.ones(2, 2))  # the live mask finds the patch


def test_no_collapse_warning_on_a_live_mask(tiny_model, images):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DSSR(tiny_model, iterations=3).attribute(images, target=1)
