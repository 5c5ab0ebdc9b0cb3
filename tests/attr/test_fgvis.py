"""FGVis: the games against hand-computed SGD steps, the defence, lambda search, state, errors."""

import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from captum_ext.attr import FGVis
from captum_ext.attr.fgvis import LAMBDA_SEARCH
from captum_ext.fillers import Constant, Filler, ImageSpace, UniformNoise
from tests.conftest import TinyCNN


def linear_model(num_classes=3, channels=3, size=8):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, num_classes)).eval()


def hand_step(model, x, r, init, target, lam, game, lr=0.1):
    """One SGD step written from the paper's four games, independent of FGVis's code."""
    m = init.clone().requires_grad_(True)
    logits = model(m * x + (1 - m) * r)
    if game in ("preservation", "generation"):
        loss = lam * m.sum() - torch.log_softmax(logits, 1)[torch.arange(len(x)), target].sum()
    else:
        loss = lam * (1 - m).sum() + torch.softmax(logits, 1)[torch.arange(len(x)), target].sum()
    (g,) = torch.autograd.grad(loss, m)
    g = g / g.abs().flatten(1).max(1).values.view(-1, 1, 1, 1)
    return (m - lr * g).clamp(0, 1).detach()


@pytest.mark.parametrize(
    "game, low",
    [
        ("preservation", 0.99),
        ("generation", 0.0),
        ("deletion", 0.99),
        ("repression", 0.0),
    ],
)
def test_one_step_matches_hand_computation(game, low):
    model = linear_model()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    r = torch.full_like(x, 0.3)
    noise = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(7))
    init = low + 0.01 * noise.expand(2, -1, -1, -1)
    target = torch.tensor([0, 2])
    method = FGVis(
        model, game=game, filler=Constant(0.3), lambda_=1e-2, iterations=1, defense=False
    )
    got = method.attribute(x, target=target, seed=7, return_map=True)
    expected = hand_step(model, x, r, init, target, 1e-2, game)
    if game in ("deletion", "repression"):
        expected = 1 - expected
    torch.testing.assert_close(got, expected)


def test_output_contract_and_determinism(tiny_model, images):
    method = FGVis(tiny_model, iterations=3)
    attr = method.attribute(images, target=[0, 1, 2])
    assert attr.shape == images.shape and torch.equal(attr[:, 0], attr[:, 2])
    assert attr.min() >= 0 and attr.max() <= 1
    again = FGVis(tiny_model, iterations=3).attribute(images, target=[0, 1, 2])
    assert torch.equal(attr, again)
    other = method.attribute(images, target=[0, 1, 2], seed=3)
    assert not torch.equal(attr, other)
    with torch.no_grad():  # works inside no_grad (Lightning evaluation loops)
        assert method.attribute(images, target=0).shape == images.shape


def test_lambda_search_per_example_and_batch_independence():
    torch.manual_seed(0)
    model = TinyCNN(num_classes=3).eval()
    x = torch.randn(5, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    target = torch.tensor([1, 0, 2, 0, 1])  # class 0 is the reference's class: stops at once
    method = FGVis(model, game="generation", lambda_search=True, iterations=4)
    batch = method.attribute(x, target=target, return_map=True)
    chosen = method.chosen_lambda
    grid = torch.tensor(LAMBDA_SEARCH) * 224**2 / 16**2  # the paper's grid, scaled to 16 x 16
    assert all(torch.isclose(grid, c, rtol=1e-5, atol=0).any() for c in chosen)
    assert len(set(chosen.tolist())) > 1, "examples should stop at different lambdas"
    for i in range(5):  # every position, alone and in the batch
        alone = method.attribute(x[i : i + 1], target=target[i : i + 1], return_map=True)
        assert method.chosen_lambda[0] == chosen[i]
        torch.testing.assert_close(alone, batch[i : i + 1], atol=1e-5, rtol=0)
    subset = method.attribute(x[[3, 1]], target=target[[3, 1]], return_map=True)
    torch.testing.assert_close(subset, batch[[3, 1]], atol=1e-5, rtol=0)


def test_stopping_rule_matches_final_prediction():
    torch.manual_seed(0)
    model = TinyCNN(num_classes=3).eval()
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    target = model(x).argmax(1)
    method = FGVis(model, game="preservation", lambda_search=True, iterations=4, defense=False)
    mask = method.attribute(x, target=target, return_map=True)
    stopped = method.chosen_lambda > LAMBDA_SEARCH[-1] * 224**2 / 16**2
    with torch.no_grad():
        top1 = model(mask * x).argmax(1)
    assert torch.equal(top1[stopped], target[stopped])


def test_defence_blocks_hallucination_gradient():
    """Generation from a black image: the defended gradient is smaller than the plain one."""
    torch.manual_seed(0)
    model = TinyCNN(num_classes=3).eval()
    black = torch.full((1, 3, 16, 16), -2.0)
    results = {}
    for defense in (False, True):
        method = FGVis(model, game="generation", lambda_=0.0, iterations=20, defense=defense)
        results[defense] = method.attribute(black, target=1, return_map=True)
    assert not torch.allclose(results[False], results[True])


@pytest.mark.parametrize(
    "game, restore",
    [
        ("preservation", False),
        ("deletion", False),
        ("generation", True),
        ("repression", True),
    ],
)
def test_restoring_gate_only_for_games_starting_from_the_reference(
    monkeypatch, tiny_model, images, game, restore
):
    import captum_ext.attr.fgvis as fgvis_module

    seen = []

    class Spy(fgvis_module.ActivationGradientFilter):
        def __init__(self, modules, restore=False):
            seen.append(restore)
            super().__init__(modules, restore=restore)

    monkeypatch.setattr(fgvis_module, "ActivationGradientFilter", Spy)
    FGVis(tiny_model, game=game, iterations=2).attribute(images, target=0)
    assert seen == [restore]


def test_resnet_with_defence_restores_state():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=3).train()
    x = torch.rand(2, 3, 32, 32)
    FGVis(model, iterations=2).attribute(x, target=1)
    assert model.training
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


class FailsOnCall(nn.Module):
    def __init__(self, fail_at):
        super().__init__()
        self.net, self.calls, self.fail_at = TinyCNN(num_classes=3), 0, fail_at

    def forward(self, x):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("failure mid-optimisation")
        return self.net(x)


def test_exception_mid_optimisation_removes_hooks_and_restores_flags(images):
    model = FailsOnCall(fail_at=3).train()
    model.net.head[-1].weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    with pytest.raises(RuntimeError, match="mid-optimisation"):
        FGVis(model, iterations=5).attribute(images, target=0)
    assert model.calls == 3 and model.training
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_additional_forward_args_follow_the_stopped_examples():
    torch.manual_seed(0)
    base = TinyCNN(num_classes=3).eval()

    class Shifted(nn.Module):
        def __init__(self):
            super().__init__()
            self.base = base

        def forward(self, x, shift):
            return self.base(x) + shift

    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    shift = torch.randn(4, 3)
    method = FGVis(Shifted(), lambda_search=True, iterations=2)
    target = (base(x) + shift).argmax(1)
    got = method.attribute(x, target=target, additional_forward_args=(shift,), return_map=True)
    alone = method.attribute(
        x[:1], target=target[:1], additional_forward_args=(shift[:1],), return_map=True
    )
    torch.testing.assert_close(alone, got[:1], atol=1e-5, rtol=0)


def test_sigmoid_score_objective():
    method = FGVis(linear_model(), game="preservation", score="sigmoid", defense=False)
    logits = torch.tensor([[0.5, -1.0, 2.0]])
    mask = torch.ones(1, 1, 2, 2)
    loss = method._objective(logits, torch.tensor([1]), mask, 0.1, keep_game=True)
    torch.testing.assert_close(loss, 0.1 * 4 - F.logsigmoid(torch.tensor([-1.0])))


class WrongShape(Filler):
    def reference(self, inputs, holes=None, *, generator=None):
        return inputs[:, :, :-1]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"iterations": 0}, ValueError, "iterations"),
        ({"lambda_": -1.0}, ValueError, "lambda_"),
        ({"game": "hide-and-seek"}, ValueError, "game"),
        ({"filler": "zero"}, TypeError, "filler"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"score": "probit"}, ValueError, "score"),
    ],
)
def test_bad_constructor_arguments(tiny_model, kwargs, error, match):
    with pytest.raises(error, match=match):
        FGVis(tiny_model, **kwargs)


def test_bad_call_arguments(tiny_model, images):
    method = FGVis(tiny_model, iterations=1)
    with pytest.raises(ValueError, match="target"):
        method.attribute(images, target=4)
    with pytest.raises(ValueError, match="target"):
        method.attribute(images)
    with pytest.raises(ValueError, match="inputs"):
        method.attribute(images[0], target=0)
    with pytest.raises(TypeError, match="seed"):
        method.attribute(images, target=0, seed="0")
    with pytest.raises(TypeError, match="inputs"):
        method.attribute(images.double().long(), target=0)
    bad = images.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="inputs"):
        method.attribute(bad, target=0)
    with pytest.raises(ValueError, match="filler"):
        FGVis(tiny_model, filler=WrongShape(), iterations=1).attribute(images, target=0)
    with pytest.raises(ValueError, match="device"):
        FGVis(TinyCNN().to("meta"), iterations=1).attribute(images, target=0)
    no_relu = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 4))
    with pytest.raises(ValueError, match="nn.ReLU"):
        FGVis(no_relu, iterations=1).attribute(images, target=0)
    assert FGVis(no_relu, iterations=1, defense=False).attribute(images, target=0).shape == (
        images.shape
    )


def test_random_and_pixel_space_fillers(tiny_model, images):
    space = ImageSpace(0.5, 0.25)
    for filler in (UniformNoise(space), Constant(0.0, space)):
        attr = FGVis(tiny_model, filler=filler, iterations=2).attribute(images, target=1)
        assert attr.shape == images.shape and torch.isfinite(attr).all()


class BrightnessClassifier(nn.Module):
    """Class 0's logit is 80 x the image's mean: its softmax is exactly 1 in float32 for
    a bright image (mean ~0.95), about 0.96 for a dark one (mean ~0.05). No activation
    module, so the defence is off."""

    def forward(self, x):
        evidence = 80.0 * x.mean(dim=(1, 2, 3))
        zero = torch.zeros_like(evidence)
        return torch.stack([evidence, zero, zero], dim=1)


def test_deletion_warns_when_a_saturated_probability_freezes_the_mask():
    x = torch.cat([0.9 + 0.1 * torch.rand(1, 3, 8, 8), 0.1 * torch.rand(1, 3, 8, 8)])
    with pytest.warns(UserWarning, match=r"example\(s\) \[0\] never moved") as caught:
        maps = FGVis(BrightnessClassifier(), iterations=20, defense=False).attribute(
            x, target=0, return_map=True
        )
    assert len(caught) == 1 and caught[0].filename == __file__  # points at the caller
    assert "Their clean scores: [1.0]" in str(caught[0].message) and "score='logit'" in str(
        caught[0].message
    )
    assert bool(maps[0].eq(0).all()) and float(maps[1].amax()) > 0.5
    # the logit never saturates: the bright image's mask moves and nothing is said
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        maps = FGVis(BrightnessClassifier(), iterations=20, defense=False, score="logit").attribute(
            x[:1], target=0, return_map=True
        )
    assert float(maps.amax()) > 0.5
