"""Attribution from any loop state leaves the model, its gradients and the RNG untouched."""

import pytest
import torch
from captum.attr import NoiseTunnel, Saliency

from lightning_callbacks._attribution import AttributionSpec, attribution_context
from lightning_callbacks._batch import Samples
from tests.conftest import TinyCNN


def _train_model():
    torch.manual_seed(0)
    model = TinyCNN(num_classes=3).train()
    model.features[1].eval()  # a mixed train/eval state must survive as is
    model(torch.rand(2, 3, 8, 8)).sum().backward()  # populated .grad, as after backward
    return model


def test_explain_restores_flags_grads_hooks_and_rng():
    model = _train_model()
    flags = {name: m.training for name, m in model.named_modules()}
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    grad_ids = {name: id(p.grad) for name, p in model.named_parameters()}
    bn = model.features[1]
    running = bn.running_mean.clone()
    samples = Samples(torch.rand(2, 3, 8, 8), labels=torch.tensor([0, 2]))
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)

    seen_modes = []
    model.register_forward_pre_hook(lambda m, i: seen_modes.append(m.training))
    hooks_before = len(model._forward_pre_hooks)
    # NoiseTunnel draws from the global RNG and Saliency registers no hook of its own,
    # but both run a forward/backward through every module.
    spec = AttributionSpec(
        lambda m: NoiseTunnel(Saliency(m)), attribute_args={"nt_samples": 2, "stdevs": 0.1}
    )
    _, targets, maps, logits = spec.explain(model, samples, "label")

    assert targets.tolist() == [0, 2] and maps.shape == (2, 1, 8, 8) and logits.shape == (2, 3)
    assert seen_modes and not any(seen_modes)  # attribution ran in eval mode
    assert {name: m.training for name, m in model.named_modules()} == flags
    assert all(p.requires_grad for p in model.parameters())
    for name, p in model.named_parameters():
        assert id(p.grad) == grad_ids[name] and torch.equal(p.grad, grads[name])
    assert torch.equal(bn.running_mean, running)
    assert len(model._forward_pre_hooks) == hooks_before
    assert torch.equal(torch.rand(3), expected_draw)  # global RNG stream untouched


def test_explain_under_inference_mode_and_no_grad():
    model = TinyCNN(num_classes=3).eval()
    spec = AttributionSpec(Saliency)
    with torch.inference_mode():
        images = torch.rand(2, 3, 8, 8)  # an inference tensor, as in validate/test loops
        _, _, maps, _ = spec.explain(model, Samples(images), "predicted")
    with torch.no_grad():
        _, _, maps_no_grad, _ = spec.explain(model, Samples(images.clone()), "predicted")
    assert not maps.is_inference()
    expected = Saliency(model).attribute(images.clone(), target=model(images.clone()).argmax(1))
    assert torch.allclose(maps, expected.mean(1, keepdim=True))
    assert torch.allclose(maps_no_grad, maps)


def test_context_restores_on_error():
    model = _train_model()
    with pytest.raises(RuntimeError, match="boom"):  # the error goes through, unchanged
        with attribution_context([model], torch.device("cpu")):
            assert not model.training and not any(p.requires_grad for p in model.parameters())
            raise RuntimeError("boom")
    assert model.training and all(p.requires_grad for p in model.parameters())
