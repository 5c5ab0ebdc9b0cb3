"""The FGVis defence: gradient gating at every nn.ReLU call, checked against a hand-built gate."""

import pytest
import torch
import torchvision
from torch import nn

from captum_ext.attr._relu_gradient_filter import ReluGradientFilter, relu_modules


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
    with ReluGradientFilter([net], restore=restore) as gate:
        gate.record(lambda: net(clean))
        got = input_gradient(lambda x: gate.forward(lambda: net(x)), perturbed)
    expected = net.gated_input_gradient(perturbed, clean, k=1, restore=restore)
    plain = input_gradient(net, perturbed)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, plain), "the perturbation must exceed some bounds"
    other = net.gated_input_gradient(perturbed, clean, k=1, restore=not restore)
    assert not torch.allclose(got, other), "some out-of-bound unit must be pulled back"
    # per example: selecting rows uses those examples' bounds
    with ReluGradientFilter([net], restore=restore) as gate:
        gate.record(lambda: net(clean))
        gate.select(torch.tensor([3, 1]))
        got = input_gradient(lambda x: gate.forward(lambda: net(x)), perturbed[[3, 1]])
    torch.testing.assert_close(got, expected[[3, 1]])


def test_forward_unchanged_and_clean_input_not_filtered():
    net = ReusedInplaceReLU()
    x = torch.randn(3, 5)
    with ReluGradientFilter([net]) as gate:
        clean = gate.record(lambda: net(x))
        same = gate.forward(lambda: net(x.clone().requires_grad_()))
        torch.testing.assert_close(same, clean)
        got = input_gradient(lambda z: gate.forward(lambda: net(z)), x)
    torch.testing.assert_close(got, input_gradient(net, x))


@pytest.mark.parametrize("builder, calls", [
    (lambda: torchvision.models.resnet18(num_classes=3), 17),
    (lambda: torchvision.models.vgg11(num_classes=3), 10),
])
def test_torchvision_models(builder, calls):
    torch.manual_seed(0)
    model = builder().eval()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    x_adv = x + 0.5 * torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with ReluGradientFilter([model]) as gate:
        gate.record(lambda: model(x))
        assert len(gate._clean) == calls  # one bound per call, not per module
        assert all(a0.shape[0] == 2 for a0 in gate._clean)
        defended = input_gradient(lambda z: gate.forward(lambda: model(z)), x_adv)
        unchanged = input_gradient(lambda z: gate.forward(lambda: model(z)), x)
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    torch.testing.assert_close(unchanged, input_gradient(model, x))
    plain = input_gradient(model, x_adv)
    assert not torch.allclose(defended, plain)
    assert defended.abs().sum() < plain.abs().sum()


def test_no_relu_is_an_error():
    with pytest.raises(ValueError, match="defense"):
        ReluGradientFilter([nn.Sequential(nn.Linear(2, 2), nn.Tanh())])


def test_hooks_removed_on_exception_and_call_count_checked():
    net = ReusedInplaceReLU()
    x = torch.randn(2, 5)
    with pytest.raises(RuntimeError, match="boom"):
        with ReluGradientFilter([net]) as gate:
            gate.record(lambda: net(x))
            raise RuntimeError("boom")
    assert len(net.relu._forward_hooks) == 0
    with ReluGradientFilter([net]) as gate:
        gate.record(lambda: net(x))
        with pytest.raises(RuntimeError, match="ReLU 1 times"):
            gate.forward(lambda: net.relu(net.l1(x)))
    assert relu_modules([net]) == [net.relu]
