"""Batched forward passes: channels-last on CPU, with a fallback for models that need contiguous inputs."""

import pytest
import torch
from torch import nn

from captum_ext._utils.forward import batched_outputs
from captum_ext.attr import SlidingPatch, SuperpixelLime


class ViewModel(nn.Module):
    """The PyTorch tutorial's pattern: ``x.view(N, -1)`` after a conv, which a
    channels-last feature map cannot take."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 3)
        self.layouts: list[bool] = []

    def forward(self, x):
        self.layouts.append(x.is_contiguous(memory_format=torch.channels_last))
        h = self.conv(x)
        return self.fc(h.view(h.shape[0], -1))


def _build(images):
    def build(start, stop):
        index = torch.arange(start, stop) % images.shape[0]
        return images[index], index

    return build


def test_channels_last_on_cpu_and_same_values():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    seen = []
    model.register_forward_pre_hook(
        lambda m, a: seen.append(a[0].is_contiguous(memory_format=torch.channels_last))
    )
    x = torch.randn(2, 3, 8, 8)
    out = batched_outputs(model, _build(x), 6, 2, 4)
    assert seen == [True, True]
    torch.testing.assert_close(out, model(x[torch.arange(6) % 2]), atol=1e-5, rtol=1e-5)


def test_model_that_needs_contiguous_inputs_falls_back():
    torch.manual_seed(0)
    model = ViewModel().eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = model(x[torch.arange(6) % 2].contiguous())
    model.layouts.clear()
    out = batched_outputs(model, _build(x), 6, 2, 4)
    # first chunk tried channels-last and failed, then contiguous for every chunk
    assert model.layouts == [True, False, False]
    torch.testing.assert_close(out, expected)
    # the methods run on such a model
    assert SlidingPatch(model).attribute(x, 3, target=1).shape == x.shape
    assert SuperpixelLime(model, n_segments=4).attribute(x, target=1, n_samples=20).shape == x.shape


def test_other_errors_still_raise():
    def broken(images):
        raise RuntimeError("broken model")

    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(RuntimeError, match="broken model"):
        batched_outputs(broken, _build(x), 4, 2, 4)
