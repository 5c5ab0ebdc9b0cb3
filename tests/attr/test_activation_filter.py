"""The FGVis defence: gradient gating at every activation call, checked against hand-built gates."""

import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from captum_ext.attr._activation_filter import (
    ACTIVATIONS,
    ActivationGradientFilter,
    activation_modules,
)


class ReusedInplaceReLU(nn.Module):
    """One in-place ReLU called twice, with an in-place add after its first output."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2, self.out = nn.Linear(5, 6), nn.Linear(6, 6), nn.Linear(6, 3)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        h = self.relu(self.l1(x))
        h2 = self.l2(h)
        h2 += h
        return self.out(self.relu(h2))

    def gated_input_gradient(self, x, x0, k, restore):
        """Gradient of ``out(x)[:, k].sum()`` back-propagated by hand through the gate.

        At each ReLU output the incoming gradient g is kept where a <= a0; where a > a0
        it is dropped, or with ``restore`` kept if g > 0 (the step lowers a).
        """
        w1, b1 = self.l1.weight, self.l1.bias
        w2, b2 = self.l2.weight, self.l2.bias
        with torch.no_grad():
            a0_1 = torch.relu(x0 @ w1.T + b1)
            a0_2 = torch.relu(a0_1 @ w2.T + b2 + a0_1)
            z1 = x @ w1.T + b1
            a1 = torch.relu(z1)
            z2 = a1 @ w2.T + b2 + a1
            a2 = torch.relu(z2)

            def gate(g, a, a0):
                keep = (a <= a0) | ((g > 0) if restore else False)
                return torch.where(keep, g, torch.zeros_like(g))

            g_a2 = gate(self.out.weight[k].expand_as(a2), a2, a0_2)
            g_z2 = g_a2 * (z2 > 0)
            g_a1 = gate(g_z2 @ w2 + g_z2, a1, a0_1)
            return (g_a1 * (z1 > 0)) @ w1


def input_gradient(fn, x):
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x)[:, 1].sum(), x)
    return grad


@pytest.mark.parametrize("restore", [False, True])
def test_gradient_matches_hand_built_gate_per_call_and_per_example(restore):
    net = ReusedInplaceReLU()
    clean = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    perturbed = clean + torch.randn(4, 5, generator=torch.Generator().manual_seed(2))
    with ActivationGradientFilter([net], restore=restore) as gate:
        gate.record(lambda: net(clean))
        got = input_gradient(lambda x: gate.forward(lambda: net(x)), perturbed)
    expected = net.gated_input_gradient(perturbed, clean, k=1, restore=restore)
    plain = input_gradient(net, perturbed)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, plain), "the perturbation must exceed some bounds"
    other = net.gated_input_gradient(perturbed, clean, k=1, restore=not restore)
    assert not torch.allclose(got, other), "some out-of-bound unit must be pulled back"
    # per example: selecting rows uses those examples' bounds
    with ActivationGradientFilter([net], restore=restore) as gate:
        gate.record(lambda: net(clean))
        gate.select(torch.tensor([3, 1]))
        got = input_gradient(lambda x: gate.forward(lambda: net(x)), perturbed[[3, 1]])
    torch.testing.assert_close(got, expected[[3, 1]])


def derivative(act, z):
    """Elementwise derivative of ``act`` at ``z``."""
    z = z.detach().requires_grad_(True)
    (dz,) = torch.autograd.grad(act(z).sum(), z)
    return dz


class TwoCalls(nn.Module):
    """One activation module called twice, with a residual add, and its gate by hand."""

    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2, self.out = nn.Linear(5, 6), nn.Linear(6, 6), nn.Linear(6, 3)
        self.act = act

    def forward(self, x):
        h = self.act(self.l1(x))
        return self.out(self.act(self.l2(h) + h))

    def gated_input_gradient(self, x, x0, k, restore):
        """Gradient of ``out(x)[:, k].sum()`` with the bound applied by hand.

        At each activation output the gradient g is kept where
        min(0, a0) <= a <= max(0, a0); elsewhere it is dropped, or with ``restore`` kept
        when the descent step a - lr * g moves a towards 0 (g and a of the same sign).
        """
        act = self.act
        with torch.no_grad():
            a0_1 = act(self.l1(x0))
            a0_2 = act(self.l2(a0_1) + a0_1)
            z1 = self.l1(x)
            a1 = act(z1)
            z2 = self.l2(a1) + a1
            a2 = act(z2)

        def gate(g, a, a0):
            inside = (torch.minimum(a0, torch.zeros_like(a0)) <= a) & (
                a <= torch.maximum(a0, torch.zeros_like(a0))
            )
            keep = inside | ((g * a > 0) if restore else False)
            return torch.where(keep, g, torch.zeros_like(g))

        g_a2 = gate(self.out.weight[k].expand_as(a2), a2, a0_2)
        g_z2 = g_a2 * derivative(act, z2)
        g_a1 = gate(g_z2 @ self.l2.weight + g_z2, a1, a0_1)
        return (g_a1 * derivative(act, z1)) @ self.l1.weight


@pytest.mark.parametrize(
    "act",
    [nn.SiLU(), nn.GELU(), nn.Hardswish(), nn.Tanh(), nn.Sigmoid()],
    ids=lambda a: type(a).__name__,
)
@pytest.mark.parametrize("restore", [False, True])
def test_any_activation_matches_hand_built_bound(act, restore):
    """Activations with negative outputs are bounded from below too ([a0, 0] for a0 < 0)."""
    net = TwoCalls(act)
    clean = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
    perturbed = clean + 2 * torch.randn(8, 5, generator=torch.Generator().manual_seed(2))
    with ActivationGradientFilter([net], restore=restore) as gate:
        gate.record(lambda: net(clean))
        got = input_gradient(lambda x: gate.forward(lambda: net(x)), perturbed)
    expected = net.gated_input_gradient(perturbed, clean, k=1, restore=restore)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, input_gradient(net, perturbed))
    other = net.gated_input_gradient(perturbed, clean, k=1, restore=not restore)
    assert not torch.allclose(got, other), "some out-of-bound unit must be pulled back"
    if not isinstance(act, nn.Sigmoid):  # units below a negative a0 exist and are gated
        with torch.no_grad():
            a0, a = act(net.l1(clean)), act(net.l1(perturbed))
        assert ((a < a0) & (a0 < 0)).any()


def test_every_listed_activation_is_hooked_once_per_call():
    x = torch.randn(4, 3)
    for cls in ACTIVATIONS:
        net = nn.Sequential(nn.Linear(3, 3), cls(), nn.Linear(3, 2)).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the module's own function call is not "functional"
            with ActivationGradientFilter([net]) as gate:
                gate.record(lambda net=net: net(x))
                assert len(gate._clean) == 1, cls.__name__


def test_forward_unchanged_and_clean_input_not_filtered():
    net = ReusedInplaceReLU()
    x = torch.randn(3, 5)
    with ActivationGradientFilter([net]) as gate:
        clean = gate.record(lambda net=net: net(x))
        same = gate.forward(lambda: net(x.clone().requires_grad_()))
        torch.testing.assert_close(same, clean)
        got = input_gradient(lambda z: gate.forward(lambda: net(z)), x)
    torch.testing.assert_close(got, input_gradient(net, x))


@pytest.mark.parametrize(
    "builder, calls",
    [
        (lambda: torchvision.models.resnet18(num_classes=3), 17),
        (lambda: torchvision.models.vgg11(num_classes=3), 10),
        # SiLU and the Sigmoid gates of squeeze-and-excitation (the other architectures are
        # in tests/attr/test_model_zoo.py)
        (lambda: torchvision.models.efficientnet_b0(num_classes=3), 65),
    ],
)
def test_torchvision_models(builder, calls):
    torch.manual_seed(0)
    model = builder().eval()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    x_adv = x + 0.5 * torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every activation is a module: no warning
        with ActivationGradientFilter([model]) as gate:
            gate.record(lambda: model(x))
            assert len(gate._clean) == calls  # one bound per call, not per module
            assert gate.unfiltered == {}
            assert all(t.shape[0] == 2 for call in gate._clean for t in call)
            defended = input_gradient(lambda z: gate.forward(lambda: model(z)), x_adv)
            unchanged = input_gradient(lambda z: gate.forward(lambda: model(z)), x)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    torch.testing.assert_close(unchanged, input_gradient(model, x))
    plain = input_gradient(model, x_adv)
    assert not torch.allclose(defended, plain, atol=0)


def test_model_without_activation_modules_is_an_error():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1, self.l2 = nn.Linear(2, 2), nn.Linear(2, 2)

        def forward(self, x):
            return self.l2(F.relu(self.l1(x)))

    for model in (nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), Functional()):
        with pytest.raises(ValueError, match=r"activation modules.*defense=False"):
            ActivationGradientFilter([model])


class HalfFunctional(nn.Module):
    """Like DenseNet: activation modules, plus activations called as functions."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2, self.out = nn.Linear(5, 6), nn.Linear(6, 6), nn.Linear(6, 3)
        self.act = nn.SiLU()

    def forward(self, x):
        h = self.act(self.l1(x))
        h = F.relu(self.l2(h), inplace=True) * self.l2(h).sigmoid()
        return self.out(self.act(h))


def test_functional_activations_are_counted_and_warned_about():
    model = HalfFunctional()
    x = torch.randn(2, 5)
    with ActivationGradientFilter([model]) as gate:
        with pytest.warns(
            UserWarning, match=r"2 activation-module calls.*2 functional.*relu x1, sigmoid x1"
        ):
            gate.record(lambda: model(x))
        assert gate.unfiltered == {"relu": 1, "sigmoid": 1}
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no second warning from the perturbed passes
            gate.forward(lambda: model(x))


def test_hooks_removed_on_exception_and_call_count_checked():
    net = ReusedInplaceReLU()
    x = torch.randn(2, 5)
    with pytest.raises(RuntimeError, match="boom"):
        with ActivationGradientFilter([net]) as gate:
            gate.record(lambda net=net: net(x))
            raise RuntimeError("boom")
    assert len(net.relu._forward_hooks) == 0
    with ActivationGradientFilter([net]) as gate:
        gate.record(lambda net=net: net(x))
        with pytest.raises(RuntimeError, match="activation modules 1 times"):
            gate.forward(lambda: net.relu(net.l1(x)))
    assert activation_modules([net]) == [net.relu]
