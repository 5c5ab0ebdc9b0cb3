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

    def gated_reference(self, x, x0):
        """Same network with the gate written out: forward unchanged, gradient * 1[a <= a0]."""
        with torch.no_grad():
            a0_1 = torch.relu(self.l1(x0))
            a0_2 = torch.relu(self.l2(a0_1) + a0_1)
        a1 = torch.relu(self.l1(x))
        a1 = torch.where(a1 <= a0_1, a1, a1.detach())
        a2 = torch.relu(self.l2(a1) + a1)
        a2 = torch.where(a2 <= a0_2, a2, a2.detach())
        return self.out(a2)


def input_gradient(fn, x):
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x)[:, 1].sum(), x)
    return grad


def test_gradient_matches_hand_built_gate_per_call_and_per_example():
    net = ReusedInplaceReLU()
    clean = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    perturbed = clean + torch.randn(4, 5, generator=torch.Generator().manual_seed(2))
    with ReluGradientFilter([net]) as gate:
        gate.record(lambda: net(clean))
        got = input_gradient(lambda x: gate.forward(lambda: net(x)), perturbed)
    expected = input_gradient(lambda x: net.gated_reference(x, clean), perturbed)
    plain = input_gradient(net, perturbed)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, plain), "the perturbation must exceed some bounds"
    # per example: selecting rows uses those examples' bounds
    with ReluGradientFilter([net]) as gate:
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
