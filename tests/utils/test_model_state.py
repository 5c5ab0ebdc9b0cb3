import pytest
import torch
from torch import nn

from captum_ext._utils.model_state import modules_of, preserved_state
from tests.conftest import TinyCNN


def _snapshot(model):
    return (
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [p.grad for p in model.parameters()],
    )


def test_restores_everything_after_exception():
    model = TinyCNN().train()
    model.head[-1].weight.requires_grad_(False)
    model.features[0].weight.grad = torch.ones_like(model.features[0].weight)
    before = _snapshot(model)
    handle_kept = model.register_forward_hook(lambda *a: None)

    with pytest.raises(RuntimeError, match="boom"):
        with preserved_state([model], freeze=True, eval_mode=True):
            assert not any(m.training for m in model.modules())
            assert not any(p.requires_grad for p in model.parameters())
            model.features[2].register_forward_hook(lambda *a: None)
            model.register_full_backward_hook(lambda *a: None)
            model.features[0].weight.grad = None
            model.eval()
            raise RuntimeError("boom")

    after = _snapshot(model)
    assert after[0] == before[0] and after[1] == before[1]
    assert all(a is b for a, b in zip(after[2], before[2]))
    assert list(model._forward_hooks) == [handle_kept.id]
    assert not model.features[2]._forward_hooks and not model._backward_hooks


def test_modules_of():
    net = nn.Linear(1, 1)
    assert modules_of(net) == [net]
    assert modules_of(net.forward) == [net]
    assert modules_of(lambda x: x) == []
